// A room as the page keeps it (a channel, a private conversation, or the
// server's own messages), and the ordering of its messages.

import { fold } from "./irc.js";

export class Room {
  constructor(name, kind) {
    this.name = name; // as the server spells it: "#kitchen", "bob"; "" for the server's own
    this.kind = kind; // "channel" | "query" | "server"
    this.key = kind === "server" ? "" : fold(name);
    this.joined = false;
    this.members = new Map(); // fold(nick) -> {nick, prefix, away}
    this.namesBuffer = null; // 353s until 366
    this.messages = []; // oldest first; unconfirmed ones last
    this.msgids = new Set();
    this.unread = 0;
    this.mentions = 0;
    this.firstUnread = null; // where the "new messages" divider goes
    this.exhausted = false; // no older history to load
    this.loadingOlder = false;
    this.ready = false; // the join's replay is in: older history may be asked for
    this.gapFrom = null; // newest msgid seen before the connection dropped
    this.topic = "";
  }

  get label() {
    return this.kind === "server" ? "Server messages" : this.name;
  }

  get newestMsgid() {
    for (let i = this.messages.length - 1; i >= 0; i--) {
      if (this.messages[i].msgid) return this.messages[i].msgid;
    }
    return null;
  }

  get oldestMsgid() {
    const m = this.messages.find((x) => x.msgid);
    return m ? m.msgid : null;
  }
}

// Sorted by server time; a message with no time yet (unconfirmed) stays last,
// and one at the same millisecond goes after those already there.
export function insertSorted(list, m) {
  if (!m.time) {
    list.push(m);
    return;
  }
  let i = list.length;
  while (i > 0 && (!list[i - 1].time || list[i - 1].time > m.time)) i--;
  list.splice(i, 0, m);
}

// The time of the newest message the server has confirmed.
export function lastTime(room) {
  for (let i = room.messages.length - 1; i >= 0; i--) {
    if (room.messages[i].msgid && room.messages[i].time) return room.messages[i].time;
  }
  return new Date(0);
}

// Does the text name this nick as a word (so "bob:" does, "bobby" does not)?
export function mentions(text, nick) {
  if (!nick) return false;
  const escaped = nick.replace(/[-\\^$*+?.()|[\]{}]/g, "\\$&");
  return new RegExp(`(^|[^A-Za-z0-9_-])${escaped}($|[^A-Za-z0-9_-])`, "i").test(text);
}

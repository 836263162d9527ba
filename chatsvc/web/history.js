// History on top of the chat session (mixed into Chat): the replay on
// joining, CHATHISTORY BEFORE when scrolling up, AFTER to fill the gap a
// dropped connection left. Messages are merged by msgid, in time order.

import { insertSorted, lastTime, mentions } from "./room.js";

const PAGE = 50; // history messages asked for at a time

export const History = {

  historyDone(batch) {
    const room = this.roomNamed(batch.params[0]);
    if (!room) return;
    room.ready = true;
    const entry = batch.label ? this.labels.get(batch.label) : null;
    if (entry && entry.kind === "join") entry.replayed = true;
    const older = !!(entry && entry.kind === "history" && entry.dir === "before");
    const hadAny = room.messages.some((x) => x.msgid);
    const newestBefore = lastTime(room);
    const added = [];
    let lastNew = false;
    // A page of history goes just before (BEFORE) or after (AFTER) the message
    // it was asked from, in the server's order: by time alone, messages of
    // one millisecond (a paste, a burst from nc) would land after newer ones.
    let at = -1;
    if (entry && entry.kind === "history" && entry.ref) {
      const anchor = room.messages.findIndex((x) => x.msgid === entry.ref);
      if (anchor >= 0) at = entry.dir === "before" ? anchor : anchor + 1;
    }
    for (const line of batch.lines) {
      const m = this.toMessage(line);
      if (!m || m.fromServer) continue;
      lastNew = false;
      if (m.msgid && room.msgids.has(m.msgid)) {
        if (at >= 0) {
          const here = room.messages.findIndex((x) => x.msgid === m.msgid);
          if (here >= 0) at = here + 1; // what follows comes after what we already had
        }
        continue;
      }
      // Our own message that lost its echo with the connection: it was stored after all.
      const lost = m.self && room.messages.find((x) => x.unconfirmed && x.text === m.text);
      if (lost) {
        this.confirm(room, lost, m);
        if (at >= 0) at = room.messages.indexOf(lost) + 1;
        continue;
      }
      lastNew = true;
      if (m.msgid) room.msgids.add(m.msgid);
      if (at >= 0) room.messages.splice(at++, 0, m);
      else insertSorted(room.messages, m);
      added.push(m);
      // What was said while we were away counts as unread; a first replay does not.
      if (hadAny && !older && m.time > newestBefore && !m.self) {
        m.mention = mentions(m.text, this.nick);
        if (!this.isSeen(room)) {
          room.unread += 1;
          if (m.mention) room.mentions += 1;
          room.firstUnread = room.firstUnread || m;
        }
      }
    }
    if (older) {
      room.loadingOlder = false;
      if (batch.lines.length < entry.limit) room.exhausted = true;
    } else if (!hadAny && !batch.lines.length) {
      room.exhausted = true; // a new, empty room
    }
    this.view.messagesAdded(room, added, { older });
    this.view.roomChanged(room);
    this.view.historyState(room);

    // Filling the gap after a reconnect: page forwards until we meet what the replay brought.
    if (room.gapFrom && !older) {
      const ids = new Set(batch.lines.map((l) => l.tags.msgid));
      const full = entry && entry.kind === "history" && batch.lines.length >= entry.limit;
      if (ids.has(room.gapFrom) || (entry && entry.kind === "history" && !full)) {
        room.gapFrom = null;
      } else if (entry && entry.kind === "history" && full && lastNew) {
        this.history(room, "after", batch.lines[batch.lines.length - 1].tags.msgid);
      } else if (entry && entry.kind === "join") {
        this.history(room, "after", room.gapFrom);
      } else {
        room.gapFrom = null;
      }
    }
  },

  pageSize() {
    const max = Number(this.isupport.get("CHATHISTORY"));
    return max > 0 ? Math.min(PAGE, max) : 0;
  },

  canLoadHistory(room) {
    return room.kind === "channel" && room.joined && this.caps.has("draft/chathistory")
      && this.caps.has("batch") && this.pageSize() > 0;
  },

  history(room, dir, msgid) {
    if (!this.canLoadHistory(room)) return false;
    const limit = this.pageSize();
    const label = this.newLabel();
    this.labels.set(label, { kind: "history", key: room.key, dir, limit, ref: msgid || null });
    const ref = msgid ? `msgid=${msgid}` : "*";
    return this.send("CHATHISTORY", [dir.toUpperCase(), room.name, ref, String(limit)], { label });
  },

  loadOlder(room) {
    if (!room.ready || room.loadingOlder || room.exhausted || !this.canLoadHistory(room)) return;
    const oldest = room.oldestMsgid;
    const sent = oldest ? this.history(room, "before", oldest) : this.history(room, "latest", null);
    if (sent) {
      room.loadingOlder = true;
      this.view.historyState(room);
    }
  },
};

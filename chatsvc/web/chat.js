// The chat session: signing in over IRC (CAP, NICK, USER), the rooms and
// private conversations, their members and messages, history, and what the
// person sends. It keeps the state and tells the view (ui.js) what changed;
// it never touches the DOM. Accounts (SASL, REGISTER) are in account.js.

import * as irc from "./irc.js";
import { Account, isRegisteredName } from "./account.js";
import { Commands } from "./commands.js";
import { History } from "./history.js";
import { Room, insertSorted, mentions } from "./room.js";

export { Room };

const WANTED_CAPS = ["server-time", "message-tags", "echo-message", "batch",
  "labeled-response", "draft/chathistory", "away-notify", "multi-prefix", "account-notify"];
const MAX_TEXT_BYTES = 1900; // the server takes 2048-byte lines; leave room for the command
const LIST_EVERY_MS = 60_000; // the room list has no push updates: ask again now and then
const QUERY_KEEP = 200; // private messages kept in the tab (the server does not store them)

let lastLocalId = 0;


export class Chat {
  constructor(conn, view, saved = {}) {
    this.conn = conn;
    this.view = view;
    view.chat = this; // the view reads the state as rooms are added below
    this.wantedNick = saved.nick || "";
    this.nick = this.wantedNick;
    this.nickAttempts = 0;
    this.registered = false;
    this.account = null; // the account signed in to, if any
    this.caps = new Set();
    this.offered = new Map(); // cap -> its value (CAP LS 302)
    this.capsPending = 0; // CAP REQs not answered yet
    this.isupport = new Map();
    this.batches = new Map(); // id -> {type, params, label, parent, lines}
    this.labels = new Map(); // label -> what it answers
    this.lastLabel = 0;
    this.directory = new Map(); // fold(channel) -> {name, count} from LIST
    this.listBuffer = null;
    this.listTimer = null;
    this.rooms = new Map();
    this.server = this.addRoom(new Room("", "server"));
    this.current = "";
    this.wantedChannels = saved.channels || []; // joined again after each sign-in
    for (const q of saved.queries || []) this.restoreQuery(q);

    conn.addEventListener("open", () => this.onOpen());
    conn.addEventListener("close", () => this.onClose());
    conn.addEventListener("line", (ev) => this.onLine(ev.detail));
  }

  // -- Signing in ------------------------------------------------------

  // signin: null for a guest, or {mode: "signin" | "register", password}.
  start(nick, signin = null) {
    this.wantedNick = nick || guestNick();
    this.nick = this.wantedNick;
    this.setSignIn(signin);
    this.conn.start();
  }

  signOut() {
    clearInterval(this.listTimer);
    this.conn.stop("QUIT :Signed out");
  }

  onOpen() {
    this.registered = false;
    this.caps = new Set();
    this.offered = new Map();
    this.capsPending = 0;
    this.saslStarted = false;
    this.batches.clear();
    this.nickAttempts = 0;
    this.nick = this.wantedNick;
    if (!this.canSignIn()) return;
    // CAP LS first: the server holds registration until CAP END. Signing in
    // to an account, the name is claimed only once the password is accepted.
    this.send("CAP", ["LS", "302"]);
    if (this.signInMode !== "signin") this.sendNickAndUser();
  }

  sendNickAndUser() {
    this.send("NICK", [this.nick]);
    this.send("USER", ["web", "0", "*", "chatsvc web"]);
  }

  onClose() {
    this.registered = false;
    clearInterval(this.listTimer);
    for (const room of this.rooms.values()) {
      room.loadingOlder = false;
      if (room.kind === "channel" && room.joined) {
        // Keep the oldest gap if an earlier one was never filled.
        room.gapFrom = room.gapFrom || room.newestMsgid;
        room.joined = false;
        this.view.roomChanged(room);
      }
    }
    for (const entry of this.labels.values()) {
      if (entry.kind === "msg" && entry.msg.pending) {
        this.failMessage(entry.room, entry.msg, "Not confirmed: the connection was lost.", true);
      }
    }
    this.labels.clear();
    this.batches.clear();
  }

  afterSignIn() {
    this.registered = true;
    this.conn.succeeded();
    const registering = this.registerIfAsked(); // the page waits for its answer
    this.view.signedIn(this.nick, { show: !registering });
    this.save();
    for (const name of this.wantedChannels) this.join(name, false);
    this.refreshList();
    clearInterval(this.listTimer);
    this.listTimer = setInterval(() => this.refreshList(), LIST_EVERY_MS);
  }

  nextNick() {
    this.nickAttempts += 1;
    if (/^Guest\d+$/.test(this.wantedNick)) return guestNick();
    const n = String(this.nickAttempts + 1);
    const max = Number(this.isupport.get("NICKLEN")) || 20;
    return this.wantedNick.slice(0, max - n.length) + n;
  }

  // -- Reading ---------------------------------------------------------

  send(command, params = [], tags = null) {
    return this.conn.send(irc.format(command, params, tags));
  }

  newLabel() {
    this.lastLabel += 1;
    return `w${this.lastLabel}`;
  }

  withLabel() {
    return this.caps.has("labeled-response") ? this.newLabel() : null;
  }

  // A reply's label: its own tag, or that of the labeled-response batch it is in.
  labelOf(msg) {
    if (msg.tags.label) return msg.tags.label;
    let id = msg.tags.batch;
    for (let depth = 0; id && depth < 10; depth++) {
      const b = this.batches.get(id);
      if (!b) break;
      if (b.label) return b.label;
      id = b.parent;
    }
    return null;
  }

  historyBatchOf(id) {
    for (let depth = 0; id && depth < 10; depth++) {
      const b = this.batches.get(id);
      if (!b) return null;
      if (b.type === "chathistory") return b;
      id = b.parent;
    }
    return null;
  }

  onLine(line) {
    const msg = irc.parse(line);
    if (!msg.command) return;
    if (msg.command === "BATCH") return this.onBatch(msg);
    const history = msg.tags.batch ? this.historyBatchOf(msg.tags.batch) : null;
    if (history && (msg.command === "PRIVMSG" || msg.command === "NOTICE")) {
      history.lines.push(msg);
      return;
    }
    const label = this.labelOf(msg);
    const handler = this["on" + msg.command];
    try {
      if (handler) handler.call(this, msg, label);
      else if (/^\d{3}$/.test(msg.command)) this.onNumeric(msg, label);
      else this.serverText(msg.params.slice(1).join(" ") || msg.command);
    } finally {
      // A single labeled line is the whole answer; a batch ends with BATCH -.
      if (msg.tags.label) this.labelDone(msg.tags.label);
    }
  }

  onBatch(msg) {
    const ref = msg.params[0] || "";
    const id = ref.slice(1);
    if (ref.startsWith("+")) {
      this.batches.set(id, {
        type: msg.params[1], params: msg.params.slice(2), label: this.labelOf(msg),
        parent: msg.tags.batch || null, lines: [],
      });
    } else if (ref.startsWith("-")) {
      const b = this.batches.get(id);
      this.batches.delete(id);
      if (!b) return;
      if (b.type === "chathistory") this.historyDone(b);
      if (b.type === "labeled-response" && b.label) this.labelDone(b.label);
    }
  }

  labelDone(label) {
    const entry = this.labels.get(label);
    if (!entry) return;
    this.labels.delete(label);
    if (entry.kind === "msg" && entry.msg.pending) {
      this.failMessage(entry.room, entry.msg, "The server did not confirm this message.");
    } else if (entry.kind === "join") {
      this.joinDone(entry);
    } else if (entry.kind === "history") {
      const room = this.rooms.get(entry.key);
      if (room && room.loadingOlder && entry.dir === "before") {
        room.loadingOlder = false;
        this.view.historyState(room);
      }
    }
  }

  onCAP(msg) {
    const sub = (msg.params[1] || "").toUpperCase();
    if (sub === "LS") {
      const more = msg.params[2] === "*";
      const list = msg.params[more ? 3 : 2] || "";
      for (const token of list.split(" ").filter(Boolean)) {
        const eq = token.indexOf("=");
        if (eq < 0) this.offered.set(token, "");
        else this.offered.set(token.slice(0, eq), token.slice(eq + 1));
      }
      if (more || this.registered) return;
      const forAccount = this.accountCaps(this.offered);
      if (!forAccount) return; // the sign-in cannot happen here: given up
      const asked = WANTED_CAPS.filter((c) => this.offered.has(c));
      for (const req of [asked, forAccount]) {
        if (!req.length) continue;
        this.capsPending += 1;
        this.send("CAP", ["REQ", req.join(" ")]);
      }
      if (!this.capsPending) this.capsSettled();
    } else if (sub === "ACK" || sub === "NAK") {
      if (sub === "ACK") {
        for (const cap of (msg.params[2] || "").split(" ").filter(Boolean)) {
          if (cap.startsWith("-")) this.caps.delete(cap.slice(1));
          else this.caps.add(cap);
        }
      }
      this.capsPending = Math.max(0, this.capsPending - 1);
      if (!this.capsPending) this.capsSettled();
    } else if (sub === "DEL") {
      for (const cap of (msg.params[2] || "").split(" ")) this.caps.delete(cap);
    }
  }

  onPING(msg) {
    this.send("PONG", msg.params.length ? [msg.params[msg.params.length - 1]] : []);
  }

  onPONG() {}

  onERROR(msg) {
    const text = msg.params[0] || "The server closed the connection.";
    this.lastError = text;
    this.notice(this.server, text, "error");
    if (this.current !== "") this.notice(this.currentRoom, text, "error");
  }

  onJOIN(msg, label) {
    const channel = msg.params[0];
    const nick = irc.nickOf(msg.source);
    if (this.isMe(nick)) {
      const room = this.ensureRoom(channel, "channel");
      room.name = channel; // the server's spelling
      room.joined = true;
      room.ready = !this.caps.has("labeled-response"); // else once the join's answer is in
      const entry = label && this.labels.get(label);
      if (entry && entry.kind === "join") entry.joined = room;
      this.rememberChannel(channel);
      this.view.roomChanged(room);
      this.view.joined(room, !!(entry && entry.focus));
      this.refreshListSoon();
      return;
    }
    const room = this.rooms.get(irc.fold(channel));
    if (!room) return;
    room.members.set(irc.fold(nick), { nick, prefix: "", away: null });
    this.view.membersChanged(room);
    this.event(room, { type: "join", nick, text: `${nick} joined` }, msg);
  }

  onPART(msg) {
    this.left(msg, msg.params[0], irc.nickOf(msg.source), msg.params[1], "left");
  }

  onKICK(msg) {
    this.left(msg, msg.params[0], msg.params[1], msg.params[2], "was removed");
  }

  left(msg, channel, nick, reason, verb) {
    const room = this.rooms.get(irc.fold(channel));
    if (!room) return;
    if (this.isMe(nick)) {
      room.joined = false;
      this.forgetChannel(channel);
      this.removeRoom(room);
      this.refreshListSoon();
      return;
    }
    room.members.delete(irc.fold(nick));
    this.view.membersChanged(room);
    this.event(room, { type: "part", nick, text: `${nick} ${verb}${reason ? ` (${reason})` : ""}` }, msg);
  }

  onQUIT(msg) {
    const nick = irc.nickOf(msg.source);
    const key = irc.fold(nick);
    const reason = msg.params[0] ? ` (${msg.params[0]})` : "";
    for (const room of this.rooms.values()) {
      if (room.members.delete(key) || (room.kind === "query" && room.key === key)) {
        this.view.membersChanged(room);
        this.event(room, { type: "quit", nick, text: `${nick} went offline${reason}` }, msg);
      }
    }
  }

  onNICK(msg, label) {
    const old = irc.nickOf(msg.source);
    const now = msg.params[0];
    if (this.isMe(old)) {
      this.nick = now;
      this.wantedNick = now;
      this.view.signedIn(now);
      this.save();
    }
    const oldKey = irc.fold(old);
    for (const room of this.rooms.values()) {
      const member = room.members.get(oldKey);
      if (member) {
        room.members.delete(oldKey);
        room.members.set(irc.fold(now), { ...member, nick: now });
        this.view.membersChanged(room);
        this.event(room, { type: "nick", nick: now, text: `${old} is now known as ${now}` }, msg);
      }
    }
    const query = this.rooms.get(oldKey);
    if (query && query.kind === "query" && !this.rooms.has(irc.fold(now))) {
      this.rooms.delete(oldKey);
      query.name = now;
      query.key = irc.fold(now);
      this.rooms.set(query.key, query);
      if (this.current === oldKey) this.current = query.key;
      this.view.roomRenamed(query, oldKey);
      this.event(query, { type: "nick", nick: now, text: `${old} is now known as ${now}` }, msg);
      this.save();
    }
  }

  onAWAY(msg) {
    const key = irc.fold(irc.nickOf(msg.source));
    for (const room of this.rooms.values()) {
      const member = room.members.get(key);
      if (member) {
        member.away = msg.params[0] || null;
        this.view.membersChanged(room);
      }
    }
  }

  onMODE(msg) {
    const [target, modes = "", ...args] = msg.params;
    const room = this.rooms.get(irc.fold(target));
    if (!room || room.kind !== "channel") return;
    let on = true;
    for (const letter of modes) {
      if (letter === "+" || letter === "-") on = letter === "+";
      else if ("ov".includes(letter)) {
        const nick = args.shift();
        const member = nick && room.members.get(irc.fold(nick));
        const mark = letter === "o" ? "@" : "+";
        if (member) {
          const marks = new Set(member.prefix);
          if (on) marks.add(mark);
          else marks.delete(mark);
          member.prefix = ["@", "+"].filter((m) => marks.has(m)).join("");
        }
      }
    }
    this.view.membersChanged(room);
    const by = irc.nickOf(msg.source);
    this.event(room, { type: "mode", nick: by, text: `${by} set mode ${msg.params.slice(1).join(" ")}` }, msg);
  }

  onTAGMSG() {} // typing notifications and reactions: not shown

  onPRIVMSG(msg, label) {
    this.onMessage(msg, label);
  }

  onNOTICE(msg, label) {
    this.onMessage(msg, label);
  }

  onFAIL(msg, label) {
    const [command, code, ...rest] = msg.params;
    const text = rest.length ? rest[rest.length - 1] : code;
    const context = rest.slice(0, -1);
    if (command === "REGISTER") return this.registerFailed(code, context, text);
    const entry = label && this.labels.get(label);
    if (entry && entry.kind === "msg") {
      return this.failMessage(entry.room, entry.msg, text);
    }
    let room = null;
    if (entry && entry.key !== undefined) room = this.rooms.get(entry.key);
    room = room || this.roomNamed(context.find(irc.isChannel)) || this.currentRoom;
    if (entry && entry.kind === "history") room.loadingOlder = false;
    this.notice(room, `${text} (${command} ${code})`, "error");
  }

  onNumeric(msg, label) {
    const p = msg.params;
    const n = Number(msg.command);
    const entry = label && this.labels.get(label);
    if (n >= 900 && n <= 908) return this.onAccountNumeric(msg);
    switch (msg.command) {
      case "001":
        this.nick = p[0];
        this.serverText(p[1]);
        return this.afterSignIn();
      case "005":
        irc.parseIsupport(p.slice(1, -1), this.isupport);
        return;
      case "433": // nick in use, or registered to an account
        if (!this.registered) {
          if (this.nameRefused(p[1], p[2])) return;
          this.nick = this.nextNick();
          this.send("NICK", [this.nick]);
          return;
        }
        return this.notice(this.currentRoom, isRegisteredName(p[2])
          ? `${p[1]} is a registered name: only its owner can use it.` : `The name ${p[1]} is taken.`, "error");
      case "421": // unknown command
        if (this.unknownCommand(p[1])) return;
        break;
      case "432": // erroneous nick
        if (!this.registered) {
          this.conn.stop();
          return this.view.signInFailed(p[2] || "That name cannot be used.");
        }
        return this.notice(this.currentRoom, p[2] || "That name cannot be used.", "error");
      case "353": { // NAMES
        const room = this.roomNamed(p[2]);
        if (!room) return;
        room.namesBuffer = room.namesBuffer || new Map();
        const prefixes = this.prefixChars();
        for (const name of (p[3] || "").split(" ").filter(Boolean)) {
          const { prefix, nick } = irc.splitPrefix(name, prefixes);
          const old = room.members.get(irc.fold(nick));
          room.namesBuffer.set(irc.fold(nick), { nick, prefix, away: old ? old.away : null });
        }
        return;
      }
      case "366": { // end of NAMES
        const room = this.roomNamed(p[1]);
        if (room && room.namesBuffer) {
          room.members = room.namesBuffer;
          room.namesBuffer = null;
          this.view.membersChanged(room);
        }
        return;
      }
      case "352": { // WHO: H(ere) or G(one, away)
        const room = this.roomNamed(p[1]);
        const member = room && room.members.get(irc.fold(p[5]));
        if (member) {
          member.away = (p[6] || "").startsWith("G") ? member.away || "away" : null;
          this.view.membersChanged(room);
        }
        return;
      }
      case "315":
        return;
      case "321":
        this.listBuffer = new Map();
        return;
      case "322":
        (this.listBuffer || (this.listBuffer = new Map()))
          .set(irc.fold(p[1]), { name: p[1], count: Number(p[2]) || 0 });
        return;
      case "323":
        this.directory = this.listBuffer || new Map();
        this.listBuffer = null;
        this.listing = false;
        return this.view.directoryChanged();
      case "331":
      case "332": {
        const room = this.roomNamed(p[1]);
        if (room) {
          room.topic = n === 332 ? p[2] || "" : "";
          this.view.roomChanged(room);
        }
        return;
      }
      case "301": { // away, in answer to a private message
        const room = this.rooms.get(irc.fold(p[1])) || this.currentRoom;
        return this.notice(room, `${p[1]} is away: ${p[2]}`, "info");
      }
      case "305":
      case "306":
        return this.notice(this.currentRoom, p[1], "info");
      default:
        break;
    }
    if (n >= 400 && n < 600) {
      const text = p.slice(1).join(" ");
      if (entry && entry.kind === "msg") return this.failMessage(entry.room, entry.msg, p[p.length - 1]);
      if (n === 417) return this.failOldestPending(p[p.length - 1]); // sent without the label
      const about = this.roomNamed(p[1]) || (entry && this.rooms.get(entry.key));
      return this.notice(about || this.currentRoom, text, "error");
    }
    this.serverText(p.slice(1).join(" "));
  }

  // -- Messages ----------------------------------------------------------

  toMessage(msg) {
    const target = msg.params[0] || "";
    const sender = irc.nickOf(msg.source);
    const ctcp = irc.splitCtcp(msg.params[1] || "");
    if (ctcp.ctcp) return null; // VERSION, PING...: not chat
    const fromServer = !irc.isUserSource(msg.source);
    return {
      id: ++lastLocalId,
      msgid: msg.tags.msgid || null,
      time: msg.tags.time ? new Date(msg.tags.time) : new Date(),
      nick: sender,
      target,
      text: irc.stripFormatting(ctcp.text),
      type: msg.command === "NOTICE" ? "notice" : ctcp.action ? "action" : "privmsg",
      self: this.isMe(sender),
      fromServer,
      private: !irc.isChannel(target),
    };
  }

  // Which room a message belongs in: the channel, or the conversation with the other person.
  roomFor(m) {
    if (!m.private) return this.ensureRoom(m.target, "channel");
    if (m.fromServer) return null;
    return this.ensureRoom(m.self ? m.target : m.nick, "query");
  }

  onMessage(msg, label) {
    const m = this.toMessage(msg);
    if (!m) return;
    if (m.fromServer && m.private) {
      // The server's own notices: the flood warning and such.
      this.notice(this.server, m.text, "notice");
      if (this.registered && this.current !== "") this.notice(this.currentRoom, m.text, "notice");
      return;
    }
    const entry = label && this.labels.get(label);
    if (m.self && entry && entry.kind === "msg") return this.confirm(entry.room, entry.msg, m);
    const room = this.roomFor(m);
    if (m.self) {
      // An echo that lost its label (no labeled-response): match it by text.
      const pending = room.messages.find((x) => x.pending && x.text === m.text);
      if (pending) return this.confirm(room, pending, m);
    }
    if (m.msgid && room.msgids.has(m.msgid)) return;
    this.addMessage(room, m, true);
  }

  addMessage(room, m, live) {
    if (m.msgid) room.msgids.add(m.msgid);
    insertSorted(room.messages, m);
    if (live && !m.self && ["privmsg", "action", "notice"].includes(m.type)) {
      m.mention = mentions(m.text, this.nick);
      if (!this.isSeen(room)) {
        room.unread += 1;
        if (m.mention || room.kind === "query") room.mentions += 1;
        room.firstUnread = room.firstUnread || m;
        this.view.roomChanged(room);
      }
      this.view.notify(room, m);
    }
    this.view.messagesAdded(room, [m], { older: false });
    if (room.kind === "query") this.save();
  }

  // A line of our own (joins, errors, notices) in a room's log.
  notice(room, text, type = "info") {
    room = room || this.server;
    const m = { id: ++lastLocalId, time: new Date(), nick: "", text, type, self: false };
    room.messages.push(m);
    this.view.messagesAdded(room, [m], { older: false });
  }

  event(room, fields, msg) {
    const m = {
      id: ++lastLocalId, time: msg.tags.time ? new Date(msg.tags.time) : new Date(),
      self: false, ...fields,
    };
    insertSorted(room.messages, m);
    this.view.messagesAdded(room, [m], { older: false });
  }

  serverText(text) {
    if (text) this.notice(this.server, text, "server");
  }

  confirm(room, pending, echo) {
    const i = room.messages.indexOf(pending);
    if (i >= 0) room.messages.splice(i, 1);
    Object.assign(pending, {
      pending: false, failed: false, failReason: null, msgid: echo.msgid, time: echo.time,
      text: echo.text, target: echo.target,
    });
    if (pending.msgid) room.msgids.add(pending.msgid);
    insertSorted(room.messages, pending);
    this.view.messageChanged(room, pending);
    if (room.kind === "query") this.save();
  }

  failMessage(room, m, reason, unconfirmed = false) {
    m.pending = false;
    m.failed = true;
    m.unconfirmed = unconfirmed; // it may have been stored: history will tell
    m.failReason = reason;
    this.view.messageChanged(room, m);
  }

  failOldestPending(reason) {
    for (const entry of this.labels.values()) {
      if (entry.kind === "msg" && entry.msg.pending) {
        return this.failMessage(entry.room, entry.msg, reason);
      }
    }
  }

  // -- Rooms -----------------------------------------------------------------

  addRoom(room) {
    this.rooms.set(room.key, room);
    this.view.roomAdded(room);
    return room;
  }

  ensureRoom(name, kind) {
    return this.rooms.get(irc.fold(name)) || this.addRoom(new Room(name, kind));
  }

  removeRoom(room) {
    this.rooms.delete(room.key);
    this.view.roomRemoved(room);
    this.save();
  }

  roomNamed(name) {
    return name ? this.rooms.get(irc.fold(name)) || null : null;
  }

  get currentRoom() {
    return this.rooms.get(this.current) || this.server;
  }

  setCurrent(room) {
    this.current = room.key;
    this.markRead(room);
  }

  isSeen(room) {
    return room.key === this.current && !document.hidden;
  }

  markRead(room) {
    room.unread = 0;
    room.mentions = 0;
    room.firstUnread = null;
    this.view.roomChanged(room);
  }

  prefixChars() {
    const prefix = this.isupport.get("PREFIX") || "(ov)@+";
    return prefix.replace(/^\([^)]*\)/, "");
  }

  isMe(nick) {
    return !!nick && irc.fold(nick) === irc.fold(this.nick);
  }

  join(name, focus = true) {
    const channel = name.startsWith("#") ? name : `#${name}`;
    if (!irc.ROOM_RE.test(channel.slice(1))) {
      this.notice(this.currentRoom, `${channel} is not a room name: 1 to 32 letters, digits, dots, dashes or underscores.`, "error");
      return false;
    }
    const room = this.roomNamed(channel);
    if (room && room.joined) {
      if (focus) this.view.joined(room, true);
      return true;
    }
    const label = this.newLabel(); // a label even without the cap: it just goes unanswered
    this.labels.set(label, { kind: "join", channel, focus });
    return this.send("JOIN", [channel], this.caps.has("labeled-response") ? { label } : null);
  }

  joinDone(entry) {
    const room = entry.joined;
    if (!room) return;
    this.send("WHO", [room.name]); // who is away
    if (!entry.replayed) {
      // No replay on join (an empty room, or the server's --history-replay 0): ask.
      const asked = room.gapFrom ? this.history(room, "after", room.gapFrom)
        : this.history(room, "latest", null);
      if (!asked) room.ready = true;
    }
  }

  part(room) {
    if (room.kind === "query") return this.removeRoom(room);
    if (room.kind !== "channel") return;
    this.forgetChannel(room.name);
    if (room.joined) this.send("PART", [room.name]);
    else this.removeRoom(room);
  }

  openQuery(nick) {
    if (!irc.NICK_RE.test(nick)) return null;
    const room = this.ensureRoom(nick, "query");
    this.save();
    return room;
  }

  rememberChannel(name) {
    if (!this.wantedChannels.some((c) => irc.fold(c) === irc.fold(name))) {
      this.wantedChannels.push(name);
      this.save();
    }
  }

  forgetChannel(name) {
    this.wantedChannels = this.wantedChannels.filter((c) => irc.fold(c) !== irc.fold(name));
    this.save();
  }

  refreshList() {
    if (!this.registered || this.listing) return;
    this.listing = true;
    this.send("LIST");
  }

  refreshListSoon() {
    clearTimeout(this.listSoon);
    this.listSoon = setTimeout(() => this.refreshList(), 500);
  }

  // -- Sending -----------------------------------------------------------------

  // What the person typed into the message field, in room.
  input(room, text) {
    if (text.startsWith("/") && !text.startsWith("//")) return this.command(room, text);
    return this.say(room, text.startsWith("//") ? text.slice(1) : text, false);
  }

  say(room, text, asAction) {
    if (!text.trim()) return false;
    if (room.kind === "server") {
      this.notice(room, "Choose a room first, or create one.", "error");
      return false;
    }
    if (room.kind === "channel" && !room.joined) {
      this.notice(room, "You are not in this room right now.", "error");
      return false;
    }
    const wire = asAction ? irc.action(text) : text;
    if (irc.byteLength(wire) > MAX_TEXT_BYTES) {
      this.notice(room, "That message is too long; split it in parts.", "error");
      return false;
    }
    const m = {
      id: ++lastLocalId, msgid: null, time: null, nick: this.nick, target: room.name, text,
      type: asAction ? "action" : "privmsg", self: true, pending: true,
      private: room.kind === "query",
    };
    const label = this.withLabel();
    if (label) this.labels.set(label, { kind: "msg", room, msg: m });
    room.messages.push(m); // unconfirmed ones stay last
    this.view.messagesAdded(room, [m], { older: false });
    if (!this.registered || !this.send("PRIVMSG", [room.name, wire], label ? { label } : null)) {
      if (label) this.labels.delete(label);
      this.failMessage(room, m, "Not sent: not connected.");
    } else if (!this.caps.has("echo-message")) {
      this.confirm(room, m, { ...m, time: new Date() }); // no echo to wait for
    }
    return true;
  }

  retry(room, m) {
    const i = room.messages.indexOf(m);
    if (i >= 0) room.messages.splice(i, 1);
    this.view.messageRemoved(room, m);
    this.say(room, m.text, m.type === "action");
  }

  // -- Keeping it across reloads (per tab) ---------------------------------

  restoreQuery(q) {
    const room = this.addRoom(new Room(q.name, "query"));
    for (const s of q.messages || []) {
      const m = { ...s, id: ++lastLocalId, time: new Date(s.time) };
      if (m.msgid) room.msgids.add(m.msgid);
      room.messages.push(m);
    }
    room.exhausted = true;
    this.view.messagesAdded(room, room.messages, { older: false }); // shown, not only kept
  }

  save() {
    const queries = [...this.rooms.values()].filter((r) => r.kind === "query").map((r) => ({
      name: r.name,
      messages: r.messages
        .filter((m) => ["privmsg", "action", "notice"].includes(m.type) && m.time && !m.pending && !m.failed)
        .slice(-QUERY_KEEP)
        .map(({ msgid, time, nick, text, type, self }) => ({ msgid, time: time.toISOString(), nick, text, type, self })),
    }));
    this.view.save({ nick: this.wantedNick, account: this.account, channels: this.wantedChannels, queries });
  }
}

export function guestNick() {
  return `Guest${String(Math.floor(1000 + Math.random() * 9000))}`;
}

// (defineProperties, not assign: Account has a getter)
for (const mixin of [History, Commands, Account]) {
  Object.defineProperties(Chat.prototype, Object.getOwnPropertyDescriptors(mixin));
}

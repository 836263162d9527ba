// Rendering: the room list, one log per room, the people in it, the status
// line, and the composer. Every piece of text from the network goes in with
// textContent (or a text node): never innerHTML, so a message is only ever text.

import { el, text, clear, nickColour, shortTime, fullTime, appendLinked } from "./dom.js";

const BOTTOM_SLACK = 40; // px from the bottom that still counts as "at the bottom"
const LOAD_OLDER_AT = 120; // px from the top that asks for older history

export class View {
  constructor(doc = document) {
    this.doc = doc;
    this.$ = (id) => doc.getElementById(id);
    this.chat = null;
    this.conn = null;
    this.logs = new Map(); // room key -> {box, list, top, items, divider, stick}
    this.buttons = new Map(); // room key -> sidebar button
    this.desired = null; // the room named in the URL, shown once it exists
    this.form = null; // the sign-in form (signin.js)
    this.recall = []; // what was sent, for Up
    this.recallAt = -1;
    this.onSave = () => {};
    this.onSignOut = () => {};
  }

  attach(chat, conn) {
    this.chat = chat;
    this.conn = conn;
    this.bindControls();
    conn.addEventListener("state", () => this.renderStatus());
    conn.addEventListener("tick", () => this.renderStatus());
    this.renderStatus();
  }

  // -- Controls ------------------------------------------------------------

  bindControls() {
    const $ = this.$;
    $("composer").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.sendTyped();
    });
    $("message").addEventListener("keydown", (ev) => this.recallKeys(ev));
    $("create-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const name = $("new-room").value.trim().replace(/^#/, "");
      if (!name) return;
      if (this.chat.join(name, true)) $("new-room").value = "";
    });
    $("refresh-rooms").addEventListener("click", () => this.chat.refreshList());
    $("leave").addEventListener("click", () => this.chat.part(this.chat.currentRoom));
    $("menu").addEventListener("click", () => this.toggleDrawer("drawer-open"));
    $("people-toggle").addEventListener("click", () => this.toggleDrawer("people-open"));
    $("backdrop").addEventListener("click", () => this.closeDrawers());
    $("reconnect").addEventListener("click", () => this.conn.connectNow());
    $("sign-out").addEventListener("click", () => this.onSignOut());
    $("jump").addEventListener("click", () => {
      const log = this.logs.get(this.chat.current);
      if (log) this.scrollToBottom(log);
    });
    $("server-button").addEventListener("click", () => this.show(this.chat.server));
    this.doc.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") this.closeDrawers();
    });
    this.doc.addEventListener("visibilitychange", () => {
      if (!this.doc.hidden) this.arrive(this.chat.currentRoom);
    });
  }

  // On narrow screens the rooms (and the people) are drawers: focus goes in
  // when one opens, and back to its button when it closes.
  toggleDrawer(cls) {
    const body = this.doc.body;
    const open = !body.classList.contains(cls);
    this.closeDrawers(false);
    if (!open) return;
    body.classList.add(cls);
    const [button, panel] = cls === "drawer-open" ? ["menu", "sidebar"] : ["people-toggle", "members"];
    this.$(button).setAttribute("aria-expanded", "true");
    const first = this.$(panel).querySelector("button:not([disabled]), input");
    if (first) setTimeout(() => first.focus(), 50); // once it is visible
  }

  closeDrawers(refocus = true) {
    const body = this.doc.body;
    const was = body.classList.contains("drawer-open") ? "menu"
      : body.classList.contains("people-open") ? "people-toggle" : null;
    body.classList.remove("drawer-open", "people-open");
    this.$("menu").setAttribute("aria-expanded", "false");
    this.$("people-toggle").setAttribute("aria-expanded", "false");
    if (was && refocus && matchMedia("(max-width: 900px)").matches) this.$(was).focus();
  }

  sendTyped() {
    const input = this.$("message");
    const value = input.value;
    if (!value.trim()) return;
    const room = this.chat.currentRoom;
    this.chat.input(room, value);
    this.recall.push(value);
    if (this.recall.length > 50) this.recall.shift();
    this.recallAt = -1;
    input.value = "";
    const log = this.logs.get(room.key);
    if (log) this.scrollToBottom(log); // your own line: always show it
  }

  // Up brings back what you sent (most recent first), Down goes forward again.
  recallKeys(ev) {
    const input = ev.target;
    if (ev.key === "ArrowUp" && this.recall.length
        && (input.value === "" || this.recallAt >= 0)) {
      ev.preventDefault();
      this.recallAt = this.recallAt < 0 ? this.recall.length - 1 : Math.max(0, this.recallAt - 1);
      input.value = this.recall[this.recallAt];
    } else if (ev.key === "ArrowDown" && this.recallAt >= 0) {
      ev.preventDefault();
      this.recallAt += 1;
      if (this.recallAt >= this.recall.length) {
        this.recallAt = -1;
        input.value = "";
      } else {
        input.value = this.recall[this.recallAt];
      }
    } else if (ev.key.length === 1 || ev.key === "Backspace") {
      this.recallAt = -1; // editing a recalled line makes it a new one
    }
  }

  // -- Status ---------------------------------------------------------------

  renderStatus() {
    const conn = this.conn;
    const status = this.$("status-text");
    const again = this.$("reconnect");
    const states = {
      idle: "Not connected",
      connecting: "Connecting…",
      open: this.chat && this.chat.registered ? `Connected as ${this.chat.nick}` : "Signing in…",
      waiting: `Disconnected. Reconnecting in ${conn.secondsToRetry()} s…`,
      stopped: "Signed out",
    };
    text(status, states[conn.state] || conn.state);
    const said = conn.state === "waiting" ? "Disconnected. Reconnecting…" : status.textContent;
    const live = this.$("status-live");
    if (live.textContent !== said) text(live, said);
    this.doc.body.dataset.connection = conn.state === "open" && this.chat.registered ? "online" : conn.state;
    again.hidden = conn.state !== "waiting";
  }

  showApp() {
    this.$("signin").hidden = true;
    this.$("app").hidden = false;
    if (this.form) this.form.setBusy("");
  }

  // Connected as nick; the page shows the chat unless it still waits for an
  // answer (registering the name: the form says how that went).
  signedIn(nick, { show = true } = {}) {
    if (show) this.showApp();
    text(this.$("me"), nick);
    this.accountChanged(this.chat.account);
    this.renderStatus();
    this.updateComposer();
    if (this.onFirstSignIn) {
      const follow = this.onFirstSignIn;
      this.onFirstSignIn = null;
      follow();
    }
  }

  // The name was registered: on to the chat.
  accountReady() {
    this.showApp();
    this.updateComposer();
  }

  accountChanged(account) {
    const shown = this.$("account");
    shown.hidden = !account;
    text(shown, account ? `signed in as ${account}` : "");
  }

  // Back to the form, saying why (an error, or a note such as "type your
  // password again"), with the name and the choice filled in.
  signInFailed(reason, { name = null, mode = null, field = "nick", note = false } = {}) {
    this.$("app").hidden = true;
    this.$("signin").hidden = false;
    this.closeDrawers(false);
    if (this.form) {
      this.form.prompt({ error: note ? "" : reason, note: note ? reason : "", name, mode, field });
    } else {
      text(this.$("signin-error"), reason);
      this.$("nick").focus();
    }
  }

  // -- The room list ----------------------------------------------------------

  roomAdded(room) {
    if (room.kind === "server") return;
    const name = el("span", "room-name", room.name);
    const count = el("span", "room-count");
    const badge = el("span", "badge");
    const button = el("button", "room-button", null, { type: "button" });
    button.append(name, count, badge);
    button.addEventListener("click", () => {
      this.show(this.chat.rooms.get(room.key) || room);
      this.closeDrawers();
    });
    const li = el("li");
    li.append(button);
    this.buttons.set(room.key, button);
    this.logFor(room);
    this.roomChanged(room);
    if (this.desired === room.key) this.show(room);
  }

  roomRemoved(room) {
    const button = this.buttons.get(room.key);
    if (button) button.parentElement.remove();
    this.buttons.delete(room.key);
    const log = this.logs.get(room.key);
    if (log) log.box.remove();
    this.logs.delete(room.key);
    if (this.chat.current === room.key) {
      const next = [...this.chat.rooms.values()].find((r) => r.kind === "channel" && r.joined)
        || this.chat.server;
      this.show(next);
    }
    this.directoryChanged();
  }

  roomRenamed(room, oldKey) {
    for (const map of [this.buttons, this.logs]) {
      const v = map.get(oldKey);
      map.delete(oldKey);
      if (v) map.set(room.key, v);
    }
    this.roomChanged(room);
    if (this.chat.current === room.key) this.renderHeader(room);
  }

  roomChanged(room) {
    const button = this.buttons.get(room.key);
    if (button) {
      const [name, count, badge] = button.children;
      text(name, room.name);
      if (room.kind === "channel") {
        const n = room.members.size;
        text(count, room.joined && n ? String(n) : "");
        count.title = n === 1 ? "1 person" : `${n} people`;
      }
      text(badge, room.unread ? String(room.unread) : "");
      badge.classList.toggle("mention", room.mentions > 0);
      // The name first, then what a sighted person reads off the badges.
      const parts = [room.name];
      if (room.kind === "channel" && room.joined) parts.push(count.title);
      if (room.unread) parts.push(`${room.unread} unread`);
      if (room.kind === "channel" && !room.joined) parts.push("reconnecting");
      button.setAttribute("aria-label", parts.join(", "));
      button.classList.toggle("offline", room.kind === "channel" && !room.joined);
      const list = room.kind === "query" ? this.$("query-list") : this.$("my-rooms");
      const li = button.parentElement;
      if (li.parentElement !== list) this.insertByName(list, li, room.name);
    }
    if (this.chat && room.key === this.chat.current) this.renderHeader(room);
    this.updateTitle();
  }

  insertByName(list, li, name) {
    const after = [...list.children].find((x) => x.dataset.name > name.toLowerCase());
    li.dataset.name = name.toLowerCase();
    list.insertBefore(li, after || null);
  }

  // LIST: the rooms one is not in, with how many are there.
  directoryChanged() {
    const list = this.$("all-rooms");
    clear(list);
    const rooms = [...this.chat.directory.values()]
      .filter((r) => !(this.chat.roomNamed(r.name) || {}).joined)
      .sort((a, b) => b.count - a.count || a.name.localeCompare(b.name));
    for (const r of rooms) {
      const button = el("button", "room-button", null, { type: "button" });
      button.append(el("span", "room-name", r.name), el("span", "room-count", String(r.count)));
      button.setAttribute("aria-label", `${r.name}, ${r.count === 1 ? "1 person" : `${r.count} people`}, join`);
      button.addEventListener("click", () => {
        this.chat.join(r.name, true);
        this.closeDrawers();
      });
      const li = el("li");
      li.append(button);
      list.append(li);
    }
    this.$("no-other-rooms").hidden = rooms.length > 0;
  }

  // -- Showing a room -----------------------------------------------------------

  joined(room, focus) {
    const nowhere = this.chat.current === "" && this.desired == null;
    if (focus || nowhere || this.desired === room.key || this.chat.current === room.key) {
      this.show(room);
    }
    this.directoryChanged();
  }

  show(room, { keepUrl = false } = {}) {
    const chat = this.chat;
    const prev = this.logs.get(chat.current);
    if (prev && chat.current !== room.key) prev.box.hidden = true;
    chat.current = room.key;
    if (!keepUrl || this.desired === room.key) this.desired = null;
    const log = this.logFor(room);
    log.box.hidden = false;
    this.$("jump").hidden = true;
    for (const [key, button] of this.buttons) {
      if (key === room.key) button.setAttribute("aria-current", "true");
      else button.removeAttribute("aria-current");
    }
    const server = this.$("server-button");
    if (room.kind === "server") server.setAttribute("aria-current", "true");
    else server.removeAttribute("aria-current");
    // The room in the URL: "#kitchen" (the channel's own #), "#@bob" for a person.
    const hash = room.kind === "channel" ? room.name : room.kind === "query" ? `#@${room.name}` : "";
    if (!keepUrl && location.hash !== hash) {
      history.replaceState(null, "", hash || location.pathname + location.search);
    }
    this.renderHeader(room);
    this.renderMembers(room);
    this.updateComposer();
    this.arrive(room);
    if (!matchMedia("(max-width: 600px)").matches) this.$("message").focus({ preventScroll: true });
  }

  // Entering a room (or coming back to the tab): the divider goes where the
  // unread begins, and the view starts there, or at the bottom.
  arrive(room) {
    const log = this.logs.get(room.key);
    if (!log || log.box.hidden) return;
    if (room.firstUnread && log.items.has(room.firstUnread.id)) {
      if (log.divider) log.divider.remove();
      log.divider = el("li", "divider", null, { role: "separator" });
      log.divider.append(el("span", null, "New messages"));
      log.list.insertBefore(log.divider, log.items.get(room.firstUnread.id));
      log.divider.scrollIntoView({ block: "center" });
      log.stick = this.atBottom(log);
    } else if (log.stick) {
      this.scrollToBottom(log);
    }
    this.chat.markRead(room);
    this.maybeFill(room, log);
  }

  renderHeader(room) {
    text(this.$("room-title"), room.label);
    let info;
    if (room.kind === "channel") {
      const n = room.members.size;
      info = room.joined ? (n === 1 ? "1 person here" : `${n} people here`) : "Not joined yet — reconnecting";
      if (room.topic) info += ` · ${room.topic}`;
    } else if (room.kind === "query") {
      info = "Private conversation. The server does not keep these; this tab does.";
    } else {
      info = "What the server said. Choose a room on the left, or create one.";
    }
    text(this.$("room-info"), info);
    const leave = this.$("leave");
    leave.hidden = room.kind === "server";
    text(leave, room.kind === "query" ? "Close" : "Leave");
    leave.setAttribute("aria-label", room.kind === "query" ? `Close conversation with ${room.name}` : `Leave ${room.name}`);
    this.$("people-toggle").hidden = room.kind !== "channel";
    this.updateTitle();
  }

  updateComposer() {
    const room = this.chat.currentRoom;
    const input = this.$("message");
    const label = room.kind === "server" ? "Message (choose a room first)" : `Message ${room.name}`;
    text(this.$("message-label"), label);
    input.placeholder = room.kind === "server" ? "Choose or create a room to talk" : `Message ${room.name}`;
    input.disabled = room.kind === "server";
    this.$("send").disabled = room.kind === "server";
  }

  updateTitle() {
    if (!this.chat) return;
    let unread = 0;
    for (const r of this.chat.rooms.values()) unread += r.unread;
    const here = this.chat.currentRoom;
    this.doc.title = `${unread ? `(${unread}) ` : ""}${here.kind === "server" ? "" : `${here.name} · `}chatsvc`;
    // On a phone the room list is hidden: its button tells of unread elsewhere.
    const elsewhere = unread - here.unread;
    text(this.$("menu-badge"), elsewhere ? String(elsewhere) : "");
    this.$("menu").setAttribute("aria-label", elsewhere ? `Rooms, ${elsewhere} unread` : "Rooms");
  }

  notify() {
    this.updateTitle();
  }

  // -- People ---------------------------------------------------------------------

  membersChanged(room) {
    this.roomChanged(room);
    if (room.key === this.chat.current) this.renderMembers(room);
  }

  renderMembers(room) {
    const list = this.$("member-list");
    clear(list);
    const panel = this.$("members");
    panel.setAttribute("aria-label", room.kind === "channel" ? `People in ${room.name}` : "People");
    text(this.$("people-count"), room.kind === "channel" ? String(room.members.size) : "");
    this.$("members-hint").hidden = room.kind === "channel";
    const members = [...room.members.values()].sort((a, b) =>
      rank(a) - rank(b) || a.nick.toLowerCase().localeCompare(b.nick.toLowerCase()));
    for (const m of members) {
      const li = el("li", m.away ? "member away" : "member");
      const me = this.chat.isMe(m.nick);
      const button = el("button", `member-button ${nickColour(m.nick)}`, null, { type: "button" });
      if (m.prefix) button.append(el("span", "prefix", m.prefix[0], { title: m.prefix.includes("@") ? "room operator" : "voice" }));
      button.append(el("span", "member-nick", m.nick));
      if (me) button.append(el("span", "you", " (you)"));
      if (m.away) button.append(el("span", "away-note", " away"));
      button.setAttribute("aria-label", `${m.nick}${me ? " (you)" : ""}${m.away ? ", away" : ""}${me ? "" : ": send a private message"}`);
      button.disabled = me;
      button.addEventListener("click", () => {
        const q = this.chat.openQuery(m.nick);
        if (q) this.show(q);
        this.closeDrawers();
      });
      li.append(button);
      list.append(li);
    }
  }

  // -- Logs ---------------------------------------------------------------------

  logFor(room) {
    let log = this.logs.get(room.key);
    if (log) return log;
    const box = el("div", room.kind === "query" ? "log query-log" : "log", null, { role: "log", "aria-label": `Messages in ${room.label}`, tabindex: "0" });
    box.hidden = true;
    const top = el("div", "log-top");
    const older = el("button", "older", "Load older messages", { type: "button" });
    const start = el("p", "start", room.kind === "channel" ? `This is the beginning of ${room.name}.` : "");
    start.hidden = true;
    top.append(older, start);
    const list = el("ol", "messages");
    box.append(top, list);
    this.$("logs").append(box);
    log = { box, list, top, older, start, items: new Map(), divider: null, stick: true, room };
    older.addEventListener("click", () => this.chat.loadOlder(this.chat.rooms.get(log.room.key) || log.room));
    box.addEventListener("scroll", () => {
      log.stick = this.atBottom(log);
      if (log.stick) this.$("jump").hidden = true;
      if (box.scrollTop < LOAD_OLDER_AT) this.chat.loadOlder(this.chat.rooms.get(log.room.key) || log.room);
    }, { passive: true });
    this.logs.set(room.key, log);
    this.historyState(room);
    return log;
  }

  atBottom(log) {
    const b = log.box;
    return b.scrollHeight - b.scrollTop - b.clientHeight < BOTTOM_SLACK;
  }

  scrollToBottom(log) {
    log.box.scrollTop = log.box.scrollHeight;
    log.stick = true;
    this.$("jump").hidden = true;
  }

  messagesAdded(room, messages, { older }) {
    const log = this.logFor(room);
    const visible = !log.box.hidden;
    const wasAtBottom = visible ? this.atBottom(log) : log.stick;
    const height = log.box.scrollHeight;
    const top = log.box.scrollTop;
    let fromOthers = false;
    for (const m of messages) {
      this.place(room, log, m);
      if (!m.self) fromOthers = true;
    }
    if (!visible) return;
    if (older) {
      // Keep what you were reading where it was, however much came in above it.
      log.box.scrollTop = top + (log.box.scrollHeight - height);
      this.maybeFill(room, log);
    } else if (wasAtBottom || messages.some((m) => m.self && m.pending)) {
      this.scrollToBottom(log);
    } else if (fromOthers && messages.length) {
      this.$("jump").hidden = false;
    }
  }

  // A short log cannot be scrolled up: ask for more until it can (or there is no more).
  maybeFill(room, log) {
    if (room.kind !== "channel" || room.exhausted || log.box.hidden) return;
    if (log.box.scrollHeight <= log.box.clientHeight + LOAD_OLDER_AT) this.chat.loadOlder(room);
  }

  messageChanged(room, m) {
    const log = this.logFor(room);
    const wasAtBottom = !log.box.hidden && this.atBottom(log);
    const old = log.items.get(m.id);
    if (old) old.remove();
    log.items.delete(m.id);
    this.place(room, log, m);
    if (wasAtBottom) this.scrollToBottom(log);
  }

  messageRemoved(room, m) {
    const log = this.logs.get(room.key);
    if (!log) return;
    const li = log.items.get(m.id);
    if (li) li.remove();
    log.items.delete(m.id);
  }

  // Put a message's element where it sits in room.messages (sorted by time).
  place(room, log, m) {
    const li = this.renderMessage(room, m);
    const old = log.items.get(m.id);
    if (old) old.remove();
    log.items.set(m.id, li);
    const i = room.messages.indexOf(m);
    let next = null;
    for (let j = i + 1; j > 0 && j < room.messages.length && !next; j++) {
      next = log.items.get(room.messages[j].id) || null;
    }
    log.list.insertBefore(li, next);
  }

  historyState(room) {
    const log = this.logs.get(room.key);
    if (!log) return;
    const canLoad = this.chat && room.kind === "channel" && !room.exhausted;
    log.older.hidden = !canLoad;
    log.older.disabled = !!room.loadingOlder;
    text(log.older, room.loadingOlder ? "Loading older messages…" : "Load older messages");
    log.start.hidden = !(room.kind === "channel" && room.exhausted);
    log.box.setAttribute("aria-busy", String(!!room.loadingOlder));
    if (room.ready) this.maybeFill(room, log);
  }

  renderMessage(room, m) {
    const classes = ["msg", `type-${m.type}`];
    if (m.self) classes.push("self");
    if (m.pending) classes.push("pending");
    if (m.failed) classes.push("failed");
    if (m.mention) classes.push("mention");
    if (m.private) classes.push("private");
    const li = el("li", classes.join(" "));
    if (m.msgid) li.dataset.msgid = m.msgid;
    if (m.time) {
      li.append(el("time", "when", shortTime(m.time), { datetime: m.time.toISOString(), title: fullTime(m.time) }));
    } else {
      li.append(el("span", "when", "", { "aria-hidden": "true" }));
    }
    const body = el("span", "body");
    if (m.type === "privmsg" || m.type === "notice") {
      // The hidden ": " makes it "alice: hi" to a screen reader and when copied.
      body.append(el("span", `nick ${nickColour(m.nick)}`, m.nick), el("span", "visually-hidden", ": "));
      if (m.type === "notice") body.append(el("span", "kind", "notice"));
      const t = el("span", "text");
      appendLinked(t, m.text);
      body.append(t);
    } else if (m.type === "action") {
      const t = el("span", "text");
      t.append(el("span", "star", "* "), el("span", `nick ${nickColour(m.nick)}`, m.nick), " ");
      appendLinked(t, m.text);
      body.append(t);
    } else {
      const t = el("span", "text");
      appendLinked(t, m.text);
      body.append(t);
    }
    li.append(body);
    if (m.pending) li.append(el("span", "state", "sending…"));
    if (m.failed) {
      const state = el("span", "state", m.failReason || "Not sent.");
      const retry = el("button", "retry", "Retry", { type: "button", "aria-label": `Send again: ${m.text}` });
      retry.addEventListener("click", () => this.chat.retry(room, m));
      li.append(state, retry);
    }
    return li;
  }

  // -- The rest ---------------------------------------------------------------------

  save(state) {
    this.onSave(state);
  }
}

function rank(member) {
  return member.prefix.includes("@") ? 0 : member.prefix.includes("+") ? 1 : 2;
}

// The WebSocket to the server: IRCv3's text.ircv3.net (one IRC line per text
// message, no CRLF), reconnecting with backoff, and noticing a dead link
// (a socket can stay "open" for minutes after Wi-Fi drops).

export const SUBPROTOCOL = "text.ircv3.net";
const BACKOFF = [1, 2, 4, 8, 16, 30]; // seconds before each new attempt
const QUIET_PING_MS = 45_000; // heard nothing this long: PING the server
const DEAD_MS = 75_000; // still nothing: the link is dead, reconnect
const CHECK_MS = 5_000;

export class Connection extends EventTarget {
  constructor(url = defaultUrl()) {
    super();
    this.url = url;
    this.ws = null;
    this.state = "idle"; // idle | connecting | open | waiting | stopped
    this.attempt = 0; // failed attempts since the last good session
    this.retryAt = 0;
    this.lastHeard = 0;
    this.pinged = false;
    this._retryTimer = null;
    this._tick = null;
    this._watch = null;
    window.addEventListener("online", () => {
      if (this.state === "waiting") this.connectNow();
    });
  }

  start() {
    if (this.state === "connecting" || this.state === "open") return;
    this.connectNow();
  }

  // Close for good (signing out): no reconnect.
  stop(quitMessage) {
    this._clearTimers();
    if (this.ws) {
      if (quitMessage && this.ws.readyState === WebSocket.OPEN) this.send(quitMessage);
      this.ws.close(1000);
    }
    this.ws = null;
    this._setState("stopped");
  }

  connectNow() {
    this._clearTimers();
    if (this.ws) this._drop(this.ws);
    this._setState("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url, SUBPROTOCOL);
    } catch (e) {
      this._scheduleRetry(String(e));
      return;
    }
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (ws !== this.ws) return;
      this.lastHeard = Date.now();
      this.pinged = false;
      this._setState("open");
      this._watch = setInterval(() => this._checkAlive(), CHECK_MS);
      this.dispatchEvent(new Event("open"));
    });
    ws.addEventListener("message", (ev) => {
      if (ws !== this.ws) return;
      this.lastHeard = Date.now();
      this.pinged = false;
      if (typeof ev.data !== "string") return; // text.ircv3.net: text only
      // One line per message, but be lenient with a server that sends several.
      for (const line of ev.data.split(/\r?\n/)) {
        if (line) this.dispatchEvent(new CustomEvent("line", { detail: line }));
      }
    });
    ws.addEventListener("close", (ev) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this._clearTimers();
      this.dispatchEvent(new CustomEvent("close", { detail: { code: ev.code } }));
      if (this.state !== "stopped") this._scheduleRetry();
    });
  }

  // The session got as far as signing in: start the backoff again from 1 s.
  succeeded() {
    this.attempt = 0;
  }

  // A secret line (a password in it) is sent, but "sent" tells only its command.
  send(line, { secret = false } = {}) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(line);
    this.dispatchEvent(new CustomEvent("sent", { detail: secret ? `${line.split(" ")[0]} (hidden)` : line }));
    return true;
  }

  get isOpen() {
    return this.state === "open";
  }

  secondsToRetry() {
    return Math.max(0, Math.ceil((this.retryAt - Date.now()) / 1000));
  }

  _checkAlive() {
    const quiet = Date.now() - this.lastHeard;
    if (quiet > DEAD_MS) {
      const ws = this.ws;
      this.ws = null;
      this._clearTimers();
      if (ws) this._drop(ws);
      this.dispatchEvent(new CustomEvent("close", { detail: { code: 4000 } }));
      this._scheduleRetry();
    } else if (quiet > QUIET_PING_MS && !this.pinged) {
      this.pinged = true;
      this.send(`PING :alive-${Date.now()}`);
    }
  }

  _drop(ws) {
    try {
      ws.close();
    } catch (e) {
      /* already closed */
    }
  }

  _scheduleRetry() {
    const base = BACKOFF[Math.min(this.attempt, BACKOFF.length - 1)];
    this.attempt += 1;
    // Some jitter, so that many pages cut off together do not come back together.
    const delay = Math.round(base * 1000 * (0.85 + Math.random() * 0.3));
    this.retryAt = Date.now() + delay;
    this._setState("waiting");
    this._retryTimer = setTimeout(() => this.connectNow(), delay);
    // Once a second, so the status can count down.
    this._tick = setInterval(() => this.dispatchEvent(new Event("tick")), 1000);
  }

  _clearTimers() {
    clearTimeout(this._retryTimer);
    clearInterval(this._tick);
    clearInterval(this._watch);
    this._retryTimer = this._tick = this._watch = null;
  }

  _setState(state) {
    this.state = state;
    this.dispatchEvent(new Event("state"));
  }
}

function defaultUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

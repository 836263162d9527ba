// Accounts on top of the chat session (mixed into Chat): signing in to a
// registered name with IRCv3 SASL PLAIN before CAP END, registering the name
// one has with draft/account-registration's REGISTER after connecting, and
// who the session is signed in as. The server's refusals become plain words
// beside the sign-in form.
//
// The password is held here, in a WeakMap the rest of the page cannot see,
// from the form's submit until it has gone out on the socket once; then it is
// forgotten. It is never logged, stored or put in the "sent" event.

import { format, nickOf } from "./irc.js";

const CHUNK = 400; // AUTHENTICATE's payload comes in pieces of at most 400 bytes

// chat -> {mode: "signin" | "register", password: string | null}
const secrets = new WeakMap();

// base64(authzid NUL authcid NUL password) as AUTHENTICATE arguments: chunks
// of 400, and a "+" after a last chunk of exactly 400 (or for nothing at all).
export function saslPlain(account, password) {
  const bytes = new TextEncoder().encode(`${account}\0${account}\0${password}`);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  const payload = btoa(binary);
  const chunks = [];
  for (let i = 0; i < payload.length; i += CHUNK) chunks.push(payload.slice(i, i + CHUNK));
  if (payload.length % CHUNK === 0) chunks.push("+");
  return chunks;
}

const SIGN_IN_AGAIN = "choose “Sign in” and type its password";

// What a refused sign-in (904 and friends) says, in plain words.
export function signInWords(numeric, text, name) {
  // "SASL authentication failed: <the reason>": the reason is what a person needs.
  text = (text || "").trim().replace(/^SASL authentication failed:\s*/i, "");
  if (numeric === "906") return "Signing in was stopped. Try again.";
  if (numeric === "905") return "That password is too long.";
  if (/too many/i.test(text)) return text;
  if (/not the password/i.test(text)) {
    return `That is not the password of ${name}. Check it (capital letters count) and try again.`;
  }
  if (/no account|not registered|unknown account/i.test(text)) {
    return `${name} is not registered yet. To make it yours, choose “Register” and pick a password.`;
  }
  if (text && !/\bsasl\b|authentication failed/i.test(text)) return text;
  return `That name and password do not match. Check them and try again.`;
}

// What FAIL REGISTER <code> <account> :text says, in plain words.
export function registerWords(code, text, name) {
  text = (text || "").trim();
  switch (code) {
    case "ACCOUNT_EXISTS":
      return `${name} is registered already. If it is yours, ${SIGN_IN_AGAIN}.`;
    case "WEAK_PASSWORD":
    case "UNACCEPTABLE_PASSWORD":
      return text || "That password is too easy to guess. Choose a longer one.";
    case "TEMPORARILY_UNAVAILABLE":
      return text || "Names cannot be registered right now. Try again later.";
    default:
      return text || `${name} could not be registered (${code}).`;
  }
}

// A 433 that says the name is registered (not merely in use).
export function isRegisteredName(text) {
  return /regist/i.test(text || "");
}

export const Account = {

  // The form's choice: null for a guest, or {mode, password}.
  setSignIn(signin) {
    this.account = null;
    this.awaitingRegister = false;
    if (signin && signin.password) secrets.set(this, { mode: signin.mode, password: signin.password });
    else secrets.delete(this);
  },

  get signInMode() {
    const s = secrets.get(this);
    return s ? s.mode : null;
  },

  forgetPassword() {
    const s = secrets.get(this);
    if (s) s.password = null;
  },

  // The capabilities this sign-in needs, asked for in a REQ of their own
  // (so that a refusal of another cap cannot take them down with it).
  accountCaps(offered) {
    const mode = this.signInMode;
    if (mode === "signin") {
      const mechanisms = offered.get("sasl");
      if (!offered.has("sasl") || (mechanisms && !mechanisms.split(",").includes("PLAIN"))) {
        this.abandon("This server has no accounts to sign in to. Leave the password empty to chat as a guest.");
        return null;
      }
      return ["sasl"];
    }
    if (mode === "register") {
      // REGISTER after connecting needs no cap; a server without it says so (421, FAIL).
      return offered.has("draft/account-registration") ? ["draft/account-registration"] : [];
    }
    return [];
  },

  // On connecting: false when a password is needed and there is none (the
  // session was signed in, then the connection dropped): back to the form.
  canSignIn() {
    const s = secrets.get(this);
    if ((this.account || s) && !(s && s.password)) {
      const name = this.account || this.wantedNick;
      this.abandon(`You were signed out when the connection dropped. Type your password to sign in again as ${name}.`,
        { name, mode: "signin", note: true });
      return false;
    }
    return true;
  },

  // Every CAP REQ answered: SASL first if signing in, then CAP END.
  capsSettled() {
    if (this.registered) return;
    if (this.signInMode === "signin") {
      if (!this.caps.has("sasl")) {
        return this.abandon("This server would not let you sign in. Try again, or leave the password empty to chat as a guest.");
      }
      if (!this.saslStarted) {
        this.saslStarted = true;
        this.send("AUTHENTICATE", ["PLAIN"]);
      }
      return;
    }
    this.send("CAP", ["END"]);
  },

  onAUTHENTICATE(msg) {
    const s = secrets.get(this);
    if (msg.params[0] !== "+" || !s || !s.password) return;
    for (const chunk of saslPlain(this.wantedNick, s.password)) {
      this.conn.send(format("AUTHENTICATE", [chunk]), { secret: true });
    }
    this.forgetPassword();
  },

  // 900-908: the answers to AUTHENTICATE.
  onAccountNumeric(msg) {
    const p = msg.params;
    switch (msg.command) {
      case "900": // RPL_LOGGEDIN nick nick!user@host account :text
        this.setAccount(p[2] || this.wantedNick);
        return;
      case "901": // RPL_LOGGEDOUT
        this.setAccount(null);
        return;
      case "903": // RPL_SASLSUCCESS: the name is ours; now the rest of the sign-in
        secrets.delete(this);
        this.sendNickAndUser();
        this.send("CAP", ["END"]);
        return;
      case "907": // already signed in
        if (!this.registered) this.send("CAP", ["END"]);
        return;
      case "908": // the mechanisms there are
        return;
      case "902": // ERR_NICKLOCKED
      case "904": // ERR_SASLFAIL
      case "905": // ERR_SASLTOOLONG
      case "906": // ERR_SASLABORTED
        if (this.registered) return this.notice(this.currentRoom, p[p.length - 1], "error");
        return this.abandon(signInWords(msg.command, p[p.length - 1], this.wantedNick),
          { name: this.wantedNick, mode: "signin", field: "password" });
      default:
        return;
    }
  },

  // After 001: register the name now, if that is what the form asked.
  registerIfAsked() {
    const s = secrets.get(this);
    if (!s || s.mode !== "register" || !s.password) return false;
    this.awaitingRegister = true;
    this.conn.send(format("REGISTER", ["*", "*", s.password]), { secret: true });
    this.forgetPassword();
    return true;
  },

  // REGISTER SUCCESS <account> :text (VERIFICATION_REQUIRED needs an e-mail: not asked for)
  onREGISTER(msg) {
    const [status, account] = msg.params;
    if (status !== "SUCCESS") return;
    secrets.delete(this);
    this.awaitingRegister = false;
    this.setAccount(account || this.nick);
    this.view.accountReady();
    const done = `The name ${this.account} is yours now. Next time, type your password and choose “Sign in”.`;
    this.notice(this.server, done, "info");
    if (this.current !== "") this.notice(this.currentRoom, done, "info");
  },

  registerFailed(code, context, text) {
    const name = context[0] && context[0] !== "*" ? context[0] : this.nick;
    const words = registerWords(code, text, name);
    if (!this.awaitingRegister) return this.notice(this.currentRoom, words, "error");
    this.awaitingRegister = false;
    return this.abandon(words, { name, mode: code === "ACCOUNT_EXISTS" ? "signin" : "register" });
  },

  onACCOUNT(msg) {
    if (!this.isMe(nickOf(msg.source))) return;
    this.setAccount(msg.params[0] === "*" ? null : msg.params[0]);
  },

  setAccount(account) {
    this.account = account || null;
    this.save();
    this.view.accountChanged(this.account);
  },

  // A 433 before we are in: true when it ends the sign-in (the name is
  // registered to someone else, or the name to register is in use).
  nameRefused(name, text) {
    if (isRegisteredName(text) && !this.account) {
      return this.abandon(`${name} is a registered name. If it is yours, ${SIGN_IN_AGAIN}. `
        + "If not, choose another name.", { name, mode: "signin" });
    }
    if (this.signInMode === "register") {
      return this.abandon(`Someone is using the name ${name} right now, so it cannot be registered. `
        + "Choose another name, or try again later.", { name, mode: "register", field: "nick" });
    }
    return false;
  },

  // 421 Unknown command REGISTER: the server does not know it after all.
  unknownCommand(command) {
    if (command !== "REGISTER" || !this.awaitingRegister) return false;
    this.awaitingRegister = false;
    return this.abandon("This server does not let names be registered. Leave the password empty to chat as a guest.");
  },

  // Give up this sign-in: close the connection (no reconnecting), forget the
  // password, and show why beside the form. True: the line was dealt with.
  abandon(reason, { name = this.wantedNick, mode = this.signInMode || "signin", field = "password", note = false } = {}) {
    const wasIn = this.registered;
    secrets.delete(this);
    this.awaitingRegister = false;
    this.saslStarted = false;
    this.conn.stop(wasIn ? "QUIT :Signing in again" : undefined);
    this.onClose();
    this.view.signInFailed(reason, { name, mode, field, note });
    return true;
  },
};

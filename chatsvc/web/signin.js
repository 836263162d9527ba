// The sign-in form: a screen name and, if the name is (or is to be) one's
// own, a password to sign in with or to register it with. The password goes
// from the field to the chat session on submit and the fields are emptied
// at once: the form keeps nothing.

import { NICK_RE } from "./irc.js";

export class SignInForm {
  constructor(doc = document) {
    const $ = (id) => doc.getElementById(id);
    this.form = $("signin-form");
    this.nick = $("nick");
    this.password = $("password");
    this.again = $("password-again");
    this.againRow = $("password-again-row");
    this.hint = $("password-hint");
    this.error = $("signin-error");
    this.note = $("signin-note");
    this.button = $("signin-button");
    this.radios = [...this.form.querySelectorAll('input[name="mode"]')];
    this.busy = "";
    this.onSubmit = () => {};
    this.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.submit();
    });
    for (const radio of this.radios) radio.addEventListener("change", () => this.render());
    this.password.addEventListener("input", () => this.render());
    this.render();
  }

  get mode() {
    const checked = this.radios.find((r) => r.checked);
    return checked ? checked.value : "signin";
  }

  set mode(value) {
    for (const r of this.radios) r.checked = r.value === value;
  }

  // The labels, hints and autocomplete follow the choice.
  render() {
    const register = this.mode === "register";
    this.password.autocomplete = register ? "new-password" : "current-password";
    this.againRow.hidden = !register;
    this.hint.textContent = register
      ? "Choose a password of at least 8 characters that you use nowhere else. You will need it each time you sign in."
      : "Leave it empty to chat as a guest: then anyone may use the name after you.";
    let label = "Start chatting";
    if (register) label = "Register and start chatting";
    else if (this.password.value) label = "Sign in";
    this.button.textContent = this.busy || label;
    this.button.disabled = !!this.busy;
  }

  submit() {
    if (this.busy) return;
    const nick = this.nick.value.trim();
    const password = this.password.value;
    const register = this.mode === "register";
    const problem = (text, field) => {
      this.say(text);
      field.focus();
    };
    if (nick && !NICK_RE.test(nick)) {
      return problem("A screen name is 1 to 20 letters, digits, _ or -.", this.nick);
    }
    if ((password || register) && !nick) {
      return problem(register ? "Type the screen name you want to make yours."
        : "Type the screen name this password is for.", this.nick);
    }
    if (register && !password) {
      return problem("Type the password you want for this name.", this.password);
    }
    if (register && password !== this.again.value) {
      this.clearPasswords();
      return problem("The two passwords are not the same. Type them again.", this.password);
    }
    this.clearPasswords();
    this.say("");
    this.setBusy(password ? (register ? "Registering…" : "Signing in…") : "");
    this.onSubmit({ nick, signin: password ? { mode: register ? "register" : "signin", password } : null });
  }

  clearPasswords() {
    this.password.value = "";
    this.again.value = "";
  }

  say(error, note = "") {
    this.error.textContent = error;
    this.note.textContent = note;
  }

  setBusy(text) {
    this.busy = text;
    this.render();
  }

  // Back to the form: why, with the name and choice filled in, the right field focused.
  prompt({ error = "", note = "", name = null, mode = null, field = "password" } = {}) {
    this.clearPasswords();
    if (name) this.nick.value = name;
    if (mode) this.mode = mode;
    this.busy = "";
    this.say(error, note);
    this.render();
    (field === "nick" ? this.nick : this.password).focus();
  }
}

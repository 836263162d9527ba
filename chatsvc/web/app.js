// Start-up: the sign-in form, what this tab remembers across a reload, and
// the room named in the URL (#kitchen).

import { Connection } from "./connection.js";
import { Chat, guestNick } from "./chat.js";
import { fold } from "./irc.js";
import { SignInForm } from "./signin.js";
import { View } from "./ui.js";

const SESSION_KEY = "chatsvc.session"; // this tab: name, account (never a password), rooms, private messages
const NAME_KEY = "chatsvc.name"; // the name last used, to fill the form in

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY)) || null;
  } catch (e) {
    return null;
  }
}

function store(state) {
  try {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(state));
    if (state.nick && !/^Guest\d+$/.test(state.nick)) localStorage.setItem(NAME_KEY, state.nick);
  } catch (e) {
    /* private mode or full: the page works, it just forgets */
  }
}

// "#kitchen" -> channel #kitchen, "#@bob" -> the conversation with bob.
function hashTarget() {
  let h = location.hash.slice(1);
  try {
    h = decodeURIComponent(h);
  } catch (e) {
    return null;
  }
  if (!h) return null;
  if (h.startsWith("@")) return { kind: "query", name: h.slice(1) };
  return { kind: "channel", name: h.startsWith("#") ? h : `#${h}` };
}

function hashKey() {
  const target = hashTarget();
  return target ? fold(target.name) : null;
}

const saved = load();
const conn = new Connection();
const view = new View(document);
view.onSave = store;
view.desired = hashKey();
const chat = new Chat(conn, view, saved || {});
view.attach(chat, conn);

view.onSignOut = () => {
  chat.signOut();
  sessionStorage.removeItem(SESSION_KEY);
  history.replaceState(null, "", location.pathname);
  location.reload();
};

// The room in the URL: shown if it is here, else joined (or, for a person, opened).
function followHash() {
  const target = hashTarget();
  if (!target) return;
  const key = fold(target.name);
  const room = chat.rooms.get(key);
  if (room && (room.kind === "query" || room.joined)) return view.show(room);
  view.desired = key;
  if (target.kind === "query") {
    const q = chat.openQuery(target.name);
    if (q) view.show(q);
  } else if (chat.registered && !chat.wantedChannels.some((c) => fold(c) === key)) {
    chat.join(target.name, true); // the rooms this tab was in are joined again anyway
  }
}

window.addEventListener("hashchange", followHash);
view.onFirstSignIn = followHash;

// Leaving the page: say so, so that the name is free at once for the reload.
window.addEventListener("pagehide", () => conn.send("QUIT :Page closed"));

const form = new SignInForm(document);
view.form = form;
form.nick.value = (saved && saved.nick) || localStorage.getItem(NAME_KEY) || "";
form.onSubmit = ({ nick, signin }) => {
  if (!signin) view.showApp(); // with a password, the form waits for the answer
  chat.start(nick || guestNick(), signin);
};

view.show(chat.rooms.get(view.desired) || chat.server, { keepUrl: true });
if (saved && saved.account) {
  // A reload of a signed-in tab: the password is not kept, so it is asked again.
  form.prompt({ note: `Type your password to sign in again as ${saved.account}.`,
    name: saved.account, mode: "signin" });
} else if (saved && saved.nick) {
  view.showApp(); // a reload: sign in again as before, straight away
  chat.start(saved.nick);
} else {
  form.nick.focus();
}

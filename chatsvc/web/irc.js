// IRC lines: reading one into its parts and writing one, with IRCv3 tags.
// Pure functions, no DOM, so they can be tested on their own.

const UNESCAPE = { ":": ";", s: " ", "\\": "\\", r: "\r", n: "\n" };
const ESCAPE = { ";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n" };

export function unescapeTag(value) {
  return value.replace(/\\(.?)/g, (_, c) => (c in UNESCAPE ? UNESCAPE[c] : c));
}

export function escapeTag(value) {
  return String(value).replace(/[; \\\r\n]/g, (c) => ESCAPE[c]);
}

// One line (no CRLF) -> {tags, source, command, params}. Runs of spaces
// separate parameters; one starting with ':' takes the rest of the line.
export function parse(line) {
  const msg = { tags: {}, source: null, command: "", params: [] };
  let rest = line.replace(/^ +/, "");
  if (rest.startsWith("@")) {
    const sp = rest.indexOf(" ");
    const raw = sp < 0 ? rest.slice(1) : rest.slice(1, sp);
    rest = sp < 0 ? "" : rest.slice(sp + 1).replace(/^ +/, "");
    for (const item of raw.split(";")) {
      if (!item) continue;
      const eq = item.indexOf("=");
      if (eq < 0) msg.tags[item] = "";
      else msg.tags[item.slice(0, eq)] = unescapeTag(item.slice(eq + 1));
    }
  }
  if (rest.startsWith(":")) {
    const sp = rest.indexOf(" ");
    msg.source = sp < 0 ? rest.slice(1) : rest.slice(1, sp);
    rest = sp < 0 ? "" : rest.slice(sp + 1).replace(/^ +/, "");
  }
  while (rest) {
    if (rest.startsWith(":")) {
      msg.params.push(rest.slice(1));
      break;
    }
    const sp = rest.indexOf(" ");
    if (sp < 0) {
      msg.params.push(rest);
      break;
    }
    msg.params.push(rest.slice(0, sp));
    rest = rest.slice(sp + 1).replace(/^ +/, "");
  }
  msg.command = (msg.params.shift() || "").toUpperCase();
  return msg;
}

// format("PRIVMSG", ["#a", "hi there"], {label: "x"}) -> "@label=x PRIVMSG #a :hi there".
// The last parameter is made trailing when it has to be; no parameter may
// contain CR, LF or NUL (they would end the line early), so they become spaces.
export function format(command, params = [], tags = null) {
  const parts = [];
  if (tags && Object.keys(tags).length) {
    parts.push("@" + Object.entries(tags)
      .map(([k, v]) => (v === "" || v == null ? k : `${k}=${escapeTag(v)}`)).join(";"));
  }
  parts.push(command);
  params = params.map((p) => String(p).replace(/[\r\n\0]/g, " "));
  params.forEach((p, i) => {
    const last = i === params.length - 1;
    parts.push(last && (p === "" || p.includes(" ") || p.startsWith(":")) ? ":" + p : p);
  });
  return parts.join(" ");
}

// "nick!ident@host" -> "nick"; a server name stays as it is.
export function nickOf(source) {
  if (!source) return "";
  const bang = source.indexOf("!");
  return bang < 0 ? source : source.slice(0, bang);
}

export function isUserSource(source) {
  return !!source && source.includes("!");
}

export function isChannel(name) {
  return typeof name === "string" && name.startsWith("#");
}

// CASEMAPPING=ascii: names and channels compare by their ASCII lower case.
export function fold(name) {
  return String(name).replace(/[A-Z]/g, (c) => c.toLowerCase());
}

// A CTCP ACTION (/me) is \x01ACTION text\x01; other CTCP is not chat.
export function splitCtcp(text) {
  if (!text.startsWith("\x01")) return { action: false, ctcp: false, text };
  const body = text.slice(1).replace(/\x01$/, "");
  if (body.startsWith("ACTION ")) return { action: true, ctcp: false, text: body.slice(7) };
  if (body === "ACTION") return { action: true, ctcp: false, text: "" };
  return { action: false, ctcp: true, text: body };
}

export function action(text) {
  return `\x01ACTION ${text}\x01`;
}

// Formatting codes (bold, colour, ...) are not shown; the server strips most.
export function stripFormatting(text) {
  return text
    .replace(/\x03(\d{1,2}(,\d{1,2})?)?/g, "")
    .replace(/\x04([0-9a-fA-F]{6}(,[0-9a-fA-F]{6})?)?/g, "")
    .replace(/[\x00-\x08\x0a-\x1f\x7f]/g, "");
}

// The server's rules for names and rooms (README: 1-20 / 1-32 characters).
export const NICK_RE = /^[A-Za-z0-9_-]{1,20}$/;
export const ROOM_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;

// ISUPPORT tokens "KEY=VALUE" / "KEY" / "-KEY" into a map.
export function parseIsupport(tokens, into = new Map()) {
  for (const token of tokens) {
    if (token.startsWith("-")) {
      into.delete(token.slice(1));
      continue;
    }
    const eq = token.indexOf("=");
    if (eq < 0) into.set(token, "");
    else into.set(token.slice(0, eq), token.slice(eq + 1));
  }
  return into;
}

// "@+alice" with PREFIX=(ov)@+ -> {prefix: "@+", nick: "alice"}
export function splitPrefix(name, prefixes = "@+") {
  let i = 0;
  while (i < name.length && prefixes.includes(name[i])) i++;
  return { prefix: name.slice(0, i), nick: name.slice(i) };
}

// UTF-8 length, for the server's line limit.
export function byteLength(text) {
  return new TextEncoder().encode(text).length;
}

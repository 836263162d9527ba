// Small DOM helpers. Text always goes in as text (textContent, text nodes),
// never as markup.

export function el(tag, className, content, attrs) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (content != null) node.textContent = content;
  if (attrs) for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

export function text(node, content) {
  node.textContent = content;
  return node;
}

export function clear(node) {
  node.replaceChildren();
}

// One of 10 colours per nick, always the same one (a class: the page's CSP
// allows no inline styles). FNV-1a spreads short similar names apart.
export function nickColour(nick) {
  let h = 0x811c9dc5;
  for (const c of String(nick).toLowerCase()) h = Math.imul(h ^ c.codePointAt(0), 0x01000193) >>> 0;
  return `nc${h % 10}`;
}

// "14:05" today, "3 Mar 14:05" on another day: the local time zone.
export function shortTime(date) {
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const now = new Date();
  if (date.toDateString() === now.toDateString()) return time;
  const sameYear = date.getFullYear() === now.getFullYear();
  const day = date.toLocaleDateString([], sameYear ? { day: "numeric", month: "short" }
    : { day: "numeric", month: "short", year: "numeric" });
  return `${day} ${time}`;
}

export function fullTime(date) {
  return date.toLocaleString([], { dateStyle: "full", timeStyle: "medium" });
}

const URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]}]/g;

// Text with its http(s) links made links; everything else stays text nodes.
export function appendLinked(parent, content) {
  let last = 0;
  for (const match of content.matchAll(URL_RE)) {
    let url;
    try {
      url = new URL(match[0]);
    } catch (e) {
      continue;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") continue;
    parent.append(content.slice(last, match.index));
    const a = el("a", null, match[0], { href: url.href, target: "_blank", rel: "noopener noreferrer" });
    parent.append(a);
    last = match.index + match[0].length;
  }
  parent.append(content.slice(last));
}

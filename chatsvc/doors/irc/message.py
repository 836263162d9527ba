"""IRC lines: reading one into its parts, and writing one (with IRCv3 tags)."""

from dataclasses import dataclass, field

_UNESCAPE = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_ESCAPE = str.maketrans({";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"})


@dataclass
class Message:
    command: str  # upper-cased
    params: list
    tags: dict = field(default_factory=dict)
    source: str = None


def unescapeTag(value: str) -> str:
    out, chars = [], iter(value)
    for c in chars:
        if c == "\\":
            c = next(chars, "")
            out.append(_UNESCAPE.get(c, c))
        else:
            out.append(c)
    return "".join(out)


def escapeTag(value: str) -> str:
    return value.translate(_ESCAPE)


def parse(line: str) -> Message:
    """
    Read one line (without its line ending). Runs of spaces separate
    parameters; a parameter starting with ':' takes the rest of the line.
    An empty line gives a Message whose command is ''.
    """
    tags = {}
    rest = line.lstrip(" ")
    if rest.startswith("@"):
        raw, _, rest = rest[1:].partition(" ")
        for item in raw.split(";"):
            if item:
                key, _, value = item.partition("=")
                tags[key] = unescapeTag(value)
        rest = rest.lstrip(" ")
    source = None
    if rest.startswith(":"):
        source, _, rest = rest[1:].partition(" ")
        rest = rest.lstrip(" ")
    params = []
    while rest:
        if rest.startswith(":"):
            params.append(rest[1:])
            break
        word, _, rest = rest.partition(" ")
        params.append(word)
        rest = rest.lstrip(" ")
    command = params.pop(0).upper() if params else ""
    return Message(command, params, tags, source)


def format(command, *params, source=None, tags=None) -> str:
    """One line, without its line ending; the last parameter is made trailing when it must be."""
    parts = []
    if tags:
        parts.append("@" + ";".join(
            k if v is None or v == "" else f"{k}={escapeTag(v)}" for k, v in tags.items()))
    if source:
        parts.append(":" + source)
    parts.append(command)
    if params:
        *middle, last = (str(p) for p in params)
        parts.extend(middle)
        if not last or " " in last or last.startswith(":"):
            last = ":" + last
        parts.append(last)
    return " ".join(parts)


LINE = 510  # bytes of an IRC line without its tags and CR LF (RFC 1459)
_ACTION = "\x01ACTION "


def said(command, target, text, source, tags=None) -> str:
    """
    A PRIVMSG or NOTICE as the line (or lines, CR LF between them) an IRC
    client takes: a text too long for one 512-byte line once the sender's
    prefix is added (the other doors take 2048) goes out in several, split
    at a space where one is near, the msgid on the first only; nothing is cut.
    """
    line = format(command, target, text, source=source, tags=tags)
    if len(text) < 200 or len(format(command, target, text, source=source)
                              .encode("utf-8")) <= LINE:  # (the first: it fits whatever the prefix)
        return line
    room = LINE - len(f":{source} {command} {target} :".encode("utf-8"))
    action = text.startswith(_ACTION) and text.endswith("\x01")
    body = text[len(_ACTION):-1] if action else text
    if action:
        room -= len(_ACTION) + 1
    if len(body.encode("utf-8")) <= room or room < 64:
        return line
    parts = []
    while body:
        piece = body.encode("utf-8")[:room].decode("utf-8", "ignore")
        if len(piece) < len(body):
            space = piece.rfind(" ")
            if space > len(piece) // 2:
                piece = piece[:space + 1]
        parts.append(piece)
        body = body[len(piece):]
    later = {k: v for k, v in (tags or {}).items() if k != "msgid"} or None
    return "\r\n".join(
        format(command, target, _ACTION + p + "\x01" if action else p, source=source,
               tags=tags if i == 0 else later)
        for i, p in enumerate(parts))

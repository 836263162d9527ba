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

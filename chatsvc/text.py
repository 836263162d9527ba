"""Cleaning text that came off the wire before anyone else sees it."""

import re

SCREEN_NAME = re.compile(r"[A-Za-z0-9_-]+")  # a user's name, and so an account's

# ANSI escape sequences first (CSI like ``ESC[31m``, OSC like ``ESC]0;title BEL``,
# and two-byte ``ESC x``), so their printable tails go with them; then every C0
# control but tab, DEL and the C1 controls.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"  # CSI
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC, ended by BEL or ST
    r"|\x1b[@-Z\\-_]"  # other two-byte escapes
    r"|\x9b[0-?]*[ -/]*[@-~]?"  # eight-bit CSI
)
# U+2028/U+2029 count as line breaks to str.splitlines and to many clients.
# The bidirectional embeddings, overrides and isolates (U+202A-U+202E,
# U+2066-U+2069) reorder what follows them on others' screens ("Trojan
# Source"); U+200D, which emoji sequences need, stays.
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """
    Return C{text} without control characters (other than tab), without
    terminal escape sequences and without bidirectional overrides, so it
    cannot move another user's cursor, recolour their screen, ring their
    bell, forge a line of its own or show text in another order than sent.
    """
    if text.isprintable():  # the common case: nothing to strip
        return text
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


# An action ("/me waves") is kept as IRC frames it: the frame cannot be typed,
# since clean() strips \x01 from what anyone sends, so no line is mistaken for one.
ACTION = "\x01ACTION "


def asAction(text: str) -> str:
    return ACTION + text + "\x01"


def shown(text: str) -> str:
    """A stored text as the native door shows it: an action as "/me ..."."""
    if text.startswith(ACTION):
        return "/me " + text[len(ACTION):-1]
    return text


def plural(count: int, noun: str) -> str:
    """C{plural(1, "user")} is "1 user", C{plural(3, "user")} "3 users"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"

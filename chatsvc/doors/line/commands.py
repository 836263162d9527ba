"""
Telling commands from chat: a line is a command when it starts with ``/``, or
when it is exactly a command word with arguments of the right shape. Pure
functions over one table; the front door decides what each command does.
"""

import re
from dataclasses import dataclass
from typing import Callable, Optional, Union

from chatsvc.errors import BadArguments, UnknownCommand


def _none(rest: str) -> Optional[tuple]:
    return () if not rest else None


def _word(rest: str) -> Optional[tuple]:
    return (rest,) if rest and len(rest.split()) == 1 else None


def _optionalNumber(rest: str) -> Optional[tuple]:
    if not rest:
        return (None,)
    if re.fullmatch(r"[0-9]{1,9}", rest):
        return (int(rest),)
    return None


def _optionalWord(rest: str) -> Optional[tuple]:
    if not rest:
        return (None,)
    return _word(rest)


def _wordAndText(rest: str) -> Optional[tuple]:
    parts = rest.split(None, 1)
    return (parts[0], parts[1]) if len(parts) == 2 else None


def _text(rest: str) -> Optional[tuple]:
    return (rest,) if rest else None


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    summary: str
    bind: Callable[[str], Optional[tuple]]  # arguments, or None if they don't fit
    aliases: tuple = ()
    slashOnly: bool = False  # only with a leading / ("me too" is chat)


COMMANDS = (
    Command("commands", "commands", "list the commands", _none, ("help",)),
    Command("create", "create ROOM", "create ROOM and move into it", _word),
    Command("list", "list [WORD]",
            "list the rooms, busiest first, and how many are in each"
            " (with WORD: those whose names contain it)",
            _optionalWord),
    Command("join", "join ROOM", "join ROOM, leaving the room you are in", _word),
    Command("leave", "leave", "leave your room, back to the Lobby", _none),
    Command("who", "who", "list the users in your room", _none),
    Command("online", "online", "list everyone online, wherever they are", _none),
    Command(
        "history",
        "history [N]",
        "show the N messages before the oldest you have seen here",
        _optionalNumber,
    ),
    Command("msg", "msg NAME TEXT", "send TEXT privately to NAME", _wordAndText),
    Command("say", "say TEXT", "send TEXT to your room, even if it looks like a command", _text),
    Command("me", "/me TEXT", "an action: others see * you TEXT on IRC, /me TEXT here",
            _text, slashOnly=True),
    Command("quit", "quit", "leave the chat", _none),
)

_BY_WORD = {word: c for c in COMMANDS for word in (c.name, *c.aliases)}


@dataclass(frozen=True)
class Invocation:
    """A line that is a command: its name and its bound arguments."""

    name: str
    args: tuple


@dataclass(frozen=True)
class Chat:
    """A line that is something said."""

    text: str


def _split(line: str) -> tuple:
    """The command word (lowercased) and the rest, trimmed."""
    parts = line.split(None, 1)
    if not parts:
        return "", ""
    return parts[0].lower(), parts[1].strip() if len(parts) == 2 else ""


def parse(line: str) -> Union[Invocation, Chat]:
    """
    Read one line (already decoded, without its line ending).

    @raise UnknownCommand: for ``/word`` when no command is called word.
    @raise BadArguments: for ``/command`` with arguments that don't fit it.
    """
    if line.startswith("/"):
        word, rest = _split(line[1:])
        command = _BY_WORD.get(word)
        if command is None:
            raise UnknownCommand(word)
        args = command.bind(rest)
        if args is None:
            raise BadArguments(command.usage, command.summary)
        return Invocation(command.name, args)
    word, rest = _split(line)
    command = _BY_WORD.get(word)
    if command is not None and not command.slashOnly:
        args = command.bind(rest)
        if args is not None:
            return Invocation(command.name, args)
        if not rest:
            # A command word alone, missing what it needs: nobody means that as chat.
            raise BadArguments(command.usage, command.summary)
    return Chat(line)


def helpLines() -> list:
    """One line of help per command, for ``commands`` and ``help``."""
    width = max(len(c.usage) for c in COMMANDS)
    lines = []
    for c in COMMANDS:
        also = f" (also {', '.join(c.aliases)})" if c.aliases else ""
        lines.append(f"{c.usage.ljust(width)}  {c.summary}{also}")
    lines.append("Anything else you type is said to your room. Commands may start with /.")
    return lines

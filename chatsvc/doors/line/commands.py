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


def _optionalText(rest: str) -> Optional[tuple]:
    return (rest or None,)


def _wordAndOptionalWord(rest: str) -> Optional[tuple]:
    parts = rest.split()
    if len(parts) == 1:
        return (parts[0],)
    if len(parts) == 2:
        return (parts[0], parts[1])
    return None


def _wordAndOptionalText(rest: str) -> Optional[tuple]:
    parts = rest.split(None, 1)
    if not parts:
        return None
    return (parts[0], parts[1] if len(parts) == 2 else "")


def _secrets(count):
    """One or C{count} words that are (or end with) passwords: never chat."""
    def bind(rest: str) -> Optional[tuple]:
        parts = rest.split()
        if len(parts) == count:
            return tuple(parts)
        return None
    return bind


def _identify(rest: str) -> Optional[tuple]:
    parts = rest.split()
    if len(parts) == 1:
        return (None, parts[0])
    if len(parts) == 2:
        return (parts[0], parts[1])
    return None


_MODES = re.compile(r"[+-][+A-Za-z-]*")


def _modes(rest: str) -> Optional[tuple]:
    """Nothing (show them), or changes such as +i, -m, +k KEY, +l 10, +o-v ann bob."""
    if not rest:
        return (None, ())
    parts = rest.split()
    if not _MODES.fullmatch(parts[0]):
        return None
    return (parts[0], tuple(parts[1:]))


def _room(rest: str) -> Optional[tuple]:
    parts = rest.split()
    if len(parts) == 1:
        return (parts[0], False)
    if len(parts) == 2 and parts[1].lower() == "forget":
        return (parts[0], True)
    return None


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    summary: str
    bind: Callable[[str], Optional[tuple]]  # arguments, or None if they don't fit
    aliases: tuple = ()
    slashOnly: bool = False  # only with a leading / ("me too" is chat)
    # Arguments only a leading / gives it ("join the party" is chat, "/join vault KEY" is not)
    slashBind: Optional[Callable[[str], Optional[tuple]]] = None
    # Its word, with arguments that do not fit, is still this command and
    # never chat: its arguments are passwords, which must not be said.
    secret: bool = False
    # Only server operators may use it: for anyone else its bare word is chat.
    operatorOnly: bool = False


COMMANDS = (
    Command("commands", "commands", "list the commands", _none, ("help",)),
    Command("create", "create ROOM", "create ROOM and move into it", _word),
    Command("list", "list [WORD]",
            "list the rooms, busiest first, and how many are in each"
            " (with WORD: those whose names contain it)",
            _optionalWord),
    Command("join", "join ROOM", "join ROOM, leaving the room you are in;"
            " join ROOM KEY if it has a key",
            _word, slashBind=_wordAndOptionalWord),
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
    # Accounts
    Command("register", "register PASSWORD",
            "register your name, so that only you can use it from now on", _secrets(1),
            secret=True),
    Command("identify", "identify [NAME] PASSWORD",
            "sign in to your registered name (NAME, or the one you have or just tried)",
            _identify, secret=True),
    Command("password", "password OLD NEW", "change your account's password", _secrets(2),
            secret=True),
    # Running a room
    Command("topic", "topic [TEXT]", "show your room's topic, or set it to TEXT",
            _optionalText),
    Command("kick", "kick NAME [REASON]", "put NAME out of your room (operators)",
            _wordAndOptionalText),
    Command("ban", "ban [MASK|NAME]",
            "ban NAME (or a nick!ident@host mask, or $a:ACCOUNT) from your room;"
            " alone, list the bans (operators)", _optionalWord),
    Command("unban", "unban MASK|NAME", "lift a ban in your room (operators)", _word),
    Command("invite", "invite NAME", "let NAME into your room, even if it is invite only",
            _word),
    Command("op", "op NAME", "make NAME an operator of your room (operators)", _word),
    Command("deop", "deop NAME", "NAME is no longer an operator of your room (operators)",
            _word),
    Command("voice", "voice NAME", "let NAME speak in your moderated room (operators)", _word),
    Command("devoice", "devoice NAME", "take NAME's voice in your room (operators)", _word),
    Command("mode", "mode [CHANGES [ARGS]]",
            "show your room's modes, or change them: +i invite only, +k KEY, +l N most"
            " members, +m moderated, +n no messages from outside, +s secret, +t topic"
            " set by operators (- turns one off)", _modes),
    # Running the server
    Command("kill", "kill NAME [REASON]", "disconnect NAME (server operators)",
            _wordAndOptionalText, operatorOnly=True),
    Command("banaddress", "banaddress MASK [REASON]",
            "ban an address, network or host glob from the server (server operators)",
            _wordAndOptionalText, operatorOnly=True),
    Command("unbanaddress", "unbanaddress MASK", "lift an address ban (server operators)",
            _word, operatorOnly=True),
    Command("remove", "remove ROOM [forget]",
            "remove ROOM, keeping its history unless forget (server operators)", _room,
            operatorOnly=True),
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


def parse(line: str, operator: bool = False) -> Union[Invocation, Chat]:
    """
    Read one line (already decoded, without its line ending); C{operator}:
    the user is a server operator, whose commands are theirs alone.

    @raise UnknownCommand: for ``/word`` when no command is called word.
    @raise BadArguments: for ``/command`` with arguments that don't fit it.
    """
    if line.startswith("/"):
        word, rest = _split(line[1:])
        command = _BY_WORD.get(word)
        if command is None:
            raise UnknownCommand(word)
        args = (command.slashBind or command.bind)(rest)
        if args is None:
            raise BadArguments(command.usage, command.summary)
        return Invocation(command.name, args)
    word, rest = _split(line)
    command = _BY_WORD.get(word)
    if command is not None and not command.slashOnly and (operator or not command.operatorOnly):
        args = command.bind(rest)
        if args is not None:
            return Invocation(command.name, args)
        if not rest or command.secret:
            # A command word alone, missing what it needs: nobody means that
            # as chat. Nor a password command: its line must never be said.
            raise BadArguments(command.usage, command.summary)
    return Chat(line)


def helpLines(operator=False) -> list:
    """One line of help per command, for ``commands`` and ``help`` (C{operator}: theirs too)."""
    shown = [c for c in COMMANDS if operator or not c.operatorOnly]
    width = max(len(c.usage) for c in shown)
    lines = []
    for c in shown:
        also = f" (also {', '.join(c.aliases)})" if c.aliases else ""
        lines.append(f"{c.usage.ljust(width)}  {c.summary}{also}")
    lines.append("Anything else you type is said to your room. Commands may start with /.")
    return lines

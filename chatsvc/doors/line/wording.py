"""
What the native front door says: the text of every line built from the
Lobby's answers and events, with its marker (see protocol.md). Pure functions;
the protocol decides when and how fast they are sent.
"""

import time

from chatsvc.doors.line.commands import helpLines
from chatsvc.events import (AccountChanged, Away, Invited, Joined, Kicked, Killed, Left,
                            MadeWay, ModeChanged, Noticed, Quit, Renamed, Signalled, Stopping,
                            TopicChanged, Whispered)
from chatsvc.text import plural, shown

NAME_PROMPT = "Enter your screen name:"
NAME_HELP = ("Type the screen name you want (1 to {limit} letters, digits, _ or -) and"
             " press Enter, or press Enter alone to be a guest. Type quit to leave.")
_WHY = {"quit": " (quit)", "lost": " (disconnected)", "killed": " (disconnected)"}
ONLINE_LINE = 400  # characters of names on one `online` line


def slowed(rate, burst) -> str:
    """Told once to a sender that flood control is pacing."""
    return (f"* You are sending more than {rate:g} lines a second ({burst} at once)"
            " from your address, so the server now reads your lines more slowly."
            " Nothing you sent is lost.")


def replayed(message) -> str:
    """A stored message, with its time (UTC)."""
    return f"[{stamp(message.timestamp)}] <{message.sender}> {shown(message.text)}"


def said(messages) -> bytes:
    """Messages said live, as the bytes every member of the room is sent."""
    return "".join(f"<{m.sender}> {shown(m.text)}\n" for m in messages).encode("utf-8")


def _because(text):
    return f": {text}" if text else ""


def stamp(at) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(at))


# What each room mode change does, in words: (turned on, turned off); {room}
# is the room's name, {arg} the user, mask or limit it names.
_MODE_WORDS = {
    "o": ("gave {arg} operator in {room}", "took operator in {room} from {arg}"),
    "v": ("gave {arg} voice in {room}", "took voice in {room} from {arg}"),
    "b": ("banned {arg} from {room}", "lifted the ban on {arg} in {room}"),
    "e": ("exempted {arg} from the bans of {room}",
          "removed the exception for {arg} from the bans of {room}"),
    "I": ("let {arg} into {room} without an invitation",
          "removed {arg} from those let into {room} without an invitation"),
    "i": ("made {room} invite only", "made {room} open to everyone, not only the invited"),
    "k": ("set a key on {room}: newcomers need it to join", "removed the key of {room}"),
    "l": ("limited {room} to {arg} members", "removed the limit on the members of {room}"),
    "m": ("made {room} moderated: only its operators and voiced members speak",
          "made {room} unmoderated: everyone there speaks"),
    "n": ("closed {room} to messages from outside it",
          "let people outside {room} send messages to it"),
    "s": ("made {room} secret: only its members see it in list",
          "made {room} public: everyone sees it in list"),
    "t": ("let only the operators of {room} set its topic",
          "let everyone in {room} set its topic"),
}
# The modes as `mode` shows them, each in a few words.
MODE_NAMES = {"i": "invite only", "k": "needs a key", "l": "limited to {limit} members",
              "m": "moderated", "n": "no messages from outside", "s": "secret",
              "t": "topic set by operators"}


def modeChange(change, arg, room) -> str:
    on, off = _MODE_WORDS.get(change[1:], (f"set {change} on {{room}}",) * 2)
    return (on if change[0] == "+" else off).format(room=room, arg=arg)


def modes(room, operator=False) -> list:
    """A room's modes for `mode`: as letters (+nt) and in words; its key only to operators."""
    letters = "".join(sorted(room.modes, key=lambda m: (m in "kl", m)))
    args = [a for m, a in (("k", room.password if operator else None),
                           ("l", room.limit)) if m in room.modes and a is not None]
    shown_ = " ".join(["+" + letters] + [str(a) for a in args]) if letters else "none"
    words = [MODE_NAMES[m].format(limit=room.limit) for m in sorted(room.modes)
             if m in MODE_NAMES]
    described = f" ({', '.join(words)})" if words else ""
    return [f"* Modes of {room.name}: {shown_}{described}.",
            "* An operator changes them with mode +LETTER or -LETTER: i invite only, k KEY,"
            " l NUMBER most members, m moderated, n no messages from outside, s secret,"
            " t topic set by operators."]


def topic(room) -> str:
    if room.topic is None:
        return f"* {room.name} has no topic. Type topic TEXT to set one."
    return (f"* The topic of {room.name}: {room.topic.text} (set by {room.topic.by},"
            f" {stamp(room.topic.at)})")


def masks(room, entries, what="banned") -> list:
    """A room's list of bans: (mask, who set it, when) each, oldest first."""
    if not entries:
        return [f"* No one is {what} in {room}."]
    return ([f"* {plural(len(entries), 'mask')} {what} in {room}:"]
            + [f"*   {mask} (by {by}, {stamp(at)})" for mask, by, at in entries])


def event(happened, room=None, me=None):
    """
    A join, a leave, a private message or a closing, as one line; None for
    what this door does not show (someone going away). C{room} is the name
    of the room the user is in, for what happens wherever it happens; C{me}
    the user's name, for what happens to them.
    """
    if type(happened) is Joined:
        return f"* {happened.name} joined {happened.room}"
    if type(happened) is Left:
        return (f"* {happened.name} left {happened.room}{_WHY.get(happened.why, '')}"
                f"{_because(happened.text)}")
    if type(happened) is Quit:
        return (f"* {happened.name} left {room}{_WHY.get(happened.why, '')}"
                f"{_because(happened.text)}")
    if type(happened) is Renamed:
        return f"* {happened.old} is now known as {happened.new}"
    if type(happened) is Whispered:
        marker = "<- (notice) " if happened.notice else "<- "
        return f"{marker}{happened.sender}: {shown(happened.text)}"
    if type(happened) is Noticed:
        return f"* Notice from {happened.sender}: {happened.text}"
    if type(happened) is ModeChanged:
        by = happened.by or "The server"
        return f"* {by} " + "; ".join(modeChange(change, arg, happened.room)
                                      for change, arg in happened.changes)
    if type(happened) is TopicChanged:
        if not happened.text:
            return f"* {happened.by} cleared the topic of {happened.room}"
        return f"* {happened.by} set the topic of {happened.room}: {happened.text}"
    if type(happened) is Kicked:
        by = happened.by or "the server"
        if me is not None and happened.name.casefold() == me.casefold():
            return (f"* You were kicked from {happened.room} by {by}"
                    f"{_because(happened.reason)}. You are in the Lobby.")
        return f"* {by} kicked {happened.name} from {happened.room}{_because(happened.reason)}"
    if type(happened) is Invited:
        return (f"* {happened.by} invited you to {happened.room}:"
                f" type join {happened.room} to go there.")
    if type(happened) is AccountChanged:
        if me is not None and happened.name.casefold() == me.casefold():
            return None  # the command that signed them in says so
        if happened.account is None:
            return f"* {happened.name} signed out of their account"
        if happened.account.casefold() == happened.name.casefold():
            return f"* {happened.name} signed in to their registered name"
        return f"* {happened.name} signed in as {happened.account}"
    if type(happened) is Killed:
        if happened.by is None:
            return f"! {happened.reason or 'You were disconnected'}. Goodbye."
        return (f"! You were disconnected by {happened.by}, a server operator"
                f"{_because(happened.reason)}. Goodbye.")
    if type(happened) in (Away, Signalled):
        return None
    if type(happened) is MadeWay:
        return ("! You did not choose a screen name, and a newer connection needed"
                " your place. Goodbye.")
    if type(happened) is Stopping:
        return "* The server is stopping. Goodbye."
    raise TypeError(f"no wording for {happened!r}")


def welcome(name, signedIn=False, mustRegister=False, operator=False) -> list:
    lines = [f"* Welcome, {name}. You are in the Lobby. Commands:"]
    if signedIn:
        lines = [f"* You are signed in to {name}."] + lines
    lines += [f"*   {line}" for line in helpLines(operator)]
    if mustRegister:
        lines.append("* This server is for registered users: type register PASSWORD to"
                     " register your name before you join or create a room.")
    return lines


def commands(operator=False) -> list:
    return ["* Commands:"] + [f"*   {line}" for line in helpLines(operator)]


def roomList(rooms, total, here=None, pattern=None):
    """
    The lines of C{list}, lazily: C{rooms} yields (name, users online), or
    None for a room that does not match (passed on, so the sender can bound
    each turn's work); C{here} is the room of the asker.
    """
    if pattern is None:
        if not total:
            yield "* There are no rooms yet. Type create ROOM to make one."
            return
        yield f"* Rooms ({total}), busiest first:"
    else:
        yield f"* Rooms matching {pattern}, busiest first:"
    shown = 0
    for room in rooms:
        if room is None:
            yield None
            continue
        name, count = room
        shown += 1
        mark = " <- you are here" if name == here else ""
        yield f"*   {name} ({plural(count, 'user')}){mark}"
    if pattern is not None:
        yield (f"* {plural(shown, 'room')} matching {pattern}." if shown else
               f"* No room matches {pattern}. Type list to see them all.")


def online(names) -> list:
    """Everyone online, a few hundred characters of names a line."""
    lines, line, width = [f"* Online ({len(names)}):"], [], 0
    for name in names:
        line.append(name)
        width += len(name) + 2
        if width >= ONLINE_LINE:
            lines.append("*   " + ", ".join(line))
            line, width = [], 0
    if line:
        lines.append("*   " + ", ".join(line))
    return lines


def arrival(arrived) -> list:
    """Joining a room: who is there, how much older history, the replay."""
    others = ", ".join(arrived.members) if arrived.members else "no one else"
    lines = [f"* You joined {arrived.room}. Here: {others}."]
    if arrived.topic is not None:
        lines.append(f"* Topic: {arrived.topic.text} (set by {arrived.topic.by},"
                     f" {stamp(arrived.topic.at)})")
    if arrived.older:
        lines.append(f"* {plural(arrived.older, 'older message')}: type history to see them.")
    lines.extend(replayed(m) for m in arrived.replay)
    return lines


def page(paged) -> list:
    """One `history` page, oldest first, and how to go further back."""
    start = f"* That is the beginning of {paged.room}'s history."
    if not paged.messages:
        return [start]
    lines = [f"* {plural(len(paged.messages), 'earlier message')} in {paged.room}:"]
    lines.extend(replayed(m) for m in paged.messages)
    if paged.older:
        lines.append(f"* {plural(paged.older, 'older message')}: type history to see more.")
    else:
        lines.append(start)
    return lines

"""
What the native front door says: the text of every line built from the
Lobby's answers and events, with its marker (see protocol.md). Pure functions;
the protocol decides when and how fast they are sent.
"""

import time

from chatsvc.doors.line.commands import helpLines
from chatsvc.events import (Away, Joined, Left, MadeWay, ModeChanged, Noticed, Quit, Renamed,
                            Signalled, Stopping, Whispered)
from chatsvc.text import plural, shown

NAME_PROMPT = "Enter your screen name:"
NAME_HELP = ("Type the screen name you want (1 to {limit} letters, digits, _ or -) and"
             " press Enter, or press Enter alone to be a guest. Type quit to leave.")
_WHY = {"quit": " (quit)", "lost": " (disconnected)"}
ONLINE_LINE = 400  # characters of names on one `online` line


def slowed(rate, burst) -> str:
    """Told once to a sender that flood control is pacing."""
    return (f"* You are sending more than {rate:g} lines a second ({burst} at once)"
            " from your address, so the server now reads your lines more slowly."
            " Nothing you sent is lost.")


def replayed(message) -> str:
    """A stored message, with its time (UTC)."""
    stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(message.timestamp))
    return f"[{stamp}] <{message.sender}> {shown(message.text)}"


def said(messages) -> bytes:
    """Messages said live, as the bytes every member of the room is sent."""
    return "".join(f"<{m.sender}> {shown(m.text)}\n" for m in messages).encode("utf-8")


def _because(text):
    return f": {text}" if text else ""


def event(happened, room=None):
    """
    A join, a leave, a private message or a closing, as one line; None for
    what this door does not show (someone going away). C{room} is the name
    of the room the user is in, for what happens wherever it happens.
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
    if type(happened) is ModeChanged and happened.name is None:
        return (f"* {happened.by} made {happened.room} secret: only its members see it in list"
                if happened.change == "+s" else
                f"* {happened.by} made {happened.room} public: everyone sees it in list")
    if type(happened) is ModeChanged:
        what = {"o": "operator", "v": "voice"}[happened.change[1]]
        if happened.change[0] == "+":
            return f"* {happened.by} gave {happened.name} {what} in {happened.room}"
        return f"* {happened.by} took {what} in {happened.room} from {happened.name}"
    if type(happened) in (Away, Signalled):
        return None
    if type(happened) is MadeWay:
        return ("! You did not choose a screen name, and a newer connection needed"
                " your place. Goodbye.")
    if type(happened) is Stopping:
        return "* The server is stopping. Goodbye."
    raise TypeError(f"no wording for {happened!r}")


def welcome(name) -> list:
    return ([f"* Welcome, {name}. You are in the Lobby. Commands:"]
            + [f"*   {line}" for line in helpLines()])


def commands() -> list:
    return ["* Commands:"] + [f"*   {line}" for line in helpLines()]


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

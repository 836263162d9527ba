"""
What the native front door says: the text of every line built from the
Lobby's answers and events, with its marker (see protocol.md). Pure functions;
the protocol decides when and how fast they are sent.
"""

import time

from chatsvc.doors.line.commands import helpLines
from chatsvc.events import Joined, Left, MadeWay, Whispered
from chatsvc.text import plural

NAME_PROMPT = "Enter your screen name:"


def replayed(message) -> str:
    """A stored message, with its time (UTC)."""
    stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(message.timestamp))
    return f"[{stamp}] <{message.sender}> {message.text}"


def said(messages) -> bytes:
    """Messages said live, as the bytes every member of the room is sent."""
    return "".join(f"<{m.sender}> {m.text}\n" for m in messages).encode("utf-8")


def event(happened) -> str:
    """A join, a leave, a private message or a closing, as one line."""
    if type(happened) is Joined:
        return f"* {happened.name} joined {happened.room}"
    if type(happened) is Left:
        gone = " (disconnected)" if happened.why == "quit" else ""
        return f"* {happened.name} left {happened.room}{gone}"
    if type(happened) is Whispered:
        return f"<- {happened.sender}: {happened.text}"
    if type(happened) is MadeWay:
        return ("! You did not choose a screen name, and a newer connection needed"
                " your place. Goodbye.")
    raise TypeError(f"no wording for {happened!r}")


def welcome(name) -> list:
    return ([f"* Welcome, {name}. You are in the Lobby. Commands:"]
            + [f"*   {line}" for line in helpLines()])


def commands() -> list:
    return ["* Commands:"] + [f"*   {line}" for line in helpLines()]


def roomList(rooms, here=None) -> list:
    """C{rooms} as (name, users online); C{here} is the room of the asker."""
    if not rooms:
        return ["* There are no rooms yet. Type create ROOM to make one."]
    lines = [f"* Rooms ({len(rooms)}):"]
    for name, count in rooms:
        mark = " <- you are here" if name == here else ""
        lines.append(f"*   {name} ({plural(count, 'user')}){mark}")
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

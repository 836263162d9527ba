"""
What the Lobby tells a user's front door. Every front door is fed the same
events through one method, L{IChatClient.deliver}, and renders them its own way.
"""

from dataclasses import dataclass, field

from zope.interface import Interface



class IChatClient(Interface):
    """A user's side of a connection, as the Lobby sees it."""

    def deliver(event):
        """Show C{event} to the user. Must not block; may raise if the client is broken."""

    def disconnect(reason):
        """Close the connection, e.g. after a failed delivery."""


@dataclass(eq=False)
class Said:
    """
    Messages said in a room, stored before this event exists: all those
    stored in one turn of the reactor, oldest first, so each member gets one
    write for them.
    """

    room: str
    messages: tuple
    # Filled in by the first front door that renders this event, so lines sent
    # to a hundred members are encoded once.
    rendered: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Joined:
    room: str
    name: str


@dataclass(frozen=True)
class Left:
    room: str
    name: str
    # "left", "moved" (joined another room), "quit" (left the chat) or "lost"
    # (the connection was)
    why: str = "left"


@dataclass(frozen=True)
class MadeWay:
    """
    A connection that had not chosen a name yet was the longest waiting when
    a new one arrived with every such place taken: it is closed.
    """


@dataclass(frozen=True)
class Stopping:
    """The server is stopping: what was said has been stored and sent."""


@dataclass(frozen=True)
class Whispered:
    sender: str
    recipient: str
    text: str


@dataclass(frozen=True)
class Arrival:
    """What a user is told on joining a room: who is there and its recent history."""

    room: str
    members: tuple  # the names of the others in the room
    replay: tuple  # recent messages, oldest first
    older: int  # how many messages come before the replay


@dataclass(frozen=True)
class Page:
    """One page of a room's history, answering a `history` request."""

    room: str
    messages: list
    older: int  # how many messages are still older than this page

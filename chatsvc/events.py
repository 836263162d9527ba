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
    # uid -> the client-only tags (IRCv3 "+name": value) a message came with:
    # relayed live to doors that show them, never kept in the history.
    tags: dict = field(default_factory=dict)
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
    why: str = "left"  # "left", or "moved" (joined another room)
    text: str = ""  # the reason they gave, if any


@dataclass(frozen=True)
class Quit:
    """Someone who shared a room with you left the chat: told once, whatever the rooms."""

    name: str
    why: str = "quit"  # "quit" (they said so) or "lost" (the connection was)
    text: str = ""  # the reason they gave, if any


@dataclass(frozen=True)
class Renamed:
    """Someone you share a room with (or you) took a new name."""

    old: str
    new: str


@dataclass(frozen=True)
class Away:
    """Someone you share a room with went away (C{text}) or came back (None)."""

    name: str
    text: object = None


@dataclass(frozen=True)
class ModeChanged:
    """
    An operator of a room (C{by}; None: the server) changed it at once:
    C{changes} is ((change, argument), ...), a change such as "+o" or "-v"
    with the user's name, "+s" or "-i" with None, "+k" with the key, "+l"
    with the limit, "+b", "-e", "+I" with the mask.
    """

    room: str
    by: object
    changes: tuple


@dataclass(frozen=True)
class Signalled:
    """A message with nothing to keep (IRCv3 TAGMSG), to a room or to one user."""

    room: object  # the room's name, or None for a private one
    sender: str
    recipient: object  # the user's name, or None for a room
    timestamp: float
    uid: str
    tags: dict = field(default_factory=dict)  # client-only tags


@dataclass(frozen=True)
class Noticed:
    """A notice to a room: shown to those there now, not kept in its history."""

    room: str
    sender: str
    text: str
    timestamp: float
    uid: str
    tags: dict = field(default_factory=dict)  # client-only tags, relayed, not kept


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
    """A private message (or, with C{notice}, a private notice). Not stored."""

    sender: str
    recipient: str
    text: str
    notice: bool = False
    timestamp: float = 0.0
    uid: str = ""
    tags: dict = field(default_factory=dict)  # client-only tags, relayed, not kept


@dataclass(frozen=True)
class Arrival:
    """What a user is told on joining a room: who is there and its recent history."""

    room: str
    members: tuple  # the names of the others in the room
    replay: tuple  # recent messages, oldest first
    older: int  # how many messages come before the replay
    topic: object = None  # the room's Topic, if it has one


@dataclass(frozen=True)
class TopicChanged:
    """An operator (or, in a room that is not +t, anyone there) set the topic; stored first."""

    room: str
    by: str
    text: str  # "" once cleared
    at: float


@dataclass(frozen=True)
class Kicked:
    """C{name} was put out of the room by C{by} (an operator, or the server when removed)."""

    room: str
    name: str
    by: str
    reason: str = ""


@dataclass(frozen=True)
class Invited:
    """Told to the invitee (and the room's operators): C{name} may join C{room} past +i."""

    room: str
    name: str
    by: str


@dataclass(frozen=True)
class AccountChanged:
    """C{name} signed in to an account (C{account}) or out of it (None)."""

    name: str
    account: object


@dataclass(frozen=True)
class Killed:
    """
    You were disconnected by a server operator (C{by}) or because the owner
    of your name signed in elsewhere (C{by} None): the connection closes.
    """

    by: object
    reason: str


@dataclass(frozen=True)
class Page:
    """One page of a room's history, answering a `history` request."""

    room: str
    messages: list
    older: int  # how many messages are still older than this page

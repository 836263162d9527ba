"""
Where rooms and their history are kept. L{IHistoryStore} is what the Lobby
needs of a store; L{chatsvc.store.sqlite.SQLiteStore} is the embedded
default. A store knows nothing of users or protocols.
"""

from dataclasses import dataclass

from zope.interface import Interface


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message as stored: its place in the room and who said what, when."""

    room_id: int
    seq: int  # 1, 2, 3, ... within the room: paging is built on it
    uid: str  # unique across rooms and servers
    sender: str
    text: str
    timestamp: float  # server time, seconds since the epoch (UTC)


@dataclass(frozen=True, slots=True)
class RoomRecord:
    """A stored room, as the Lobby loads it at start-up (one per room: keep it small)."""

    id: int
    name: str
    created: float
    last_seq: int = 0
    recent: tuple = ()  # the room's newest messages, oldest first
    removed: bool = False  # a server operator removed it; its history is kept


class DatabaseLost(Exception):
    """
    The database file the store writes to is no longer the one at its path
    (removed, or replaced by another file): a write "stored" now would be
    gone after a restart, so none is acknowledged any more.
    """

    def __init__(self, path: str):
        super().__init__(
            f"The database file at {path} was removed or replaced while the server"
            " was running, so nothing can be stored any more. Put the file back if"
            " you can, then restart the server: it opens whatever is at that path"
            " (an empty history if nothing is).")


class DatabaseInUse(Exception):
    """Another process has the database open: one server per database."""

    def __init__(self, path: str):
        super().__init__(
            f"The database {path} is in use by another process (another server?)."
            " Only one server can use a database at a time: stop the other one,"
            " or give this one a database of its own.")


class AccountTaken(Exception):
    """An account of that name exists already (another server may have just registered it)."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(f"An account named {name} exists already.")


class RoomTaken(Exception):
    """A room of that name exists already (another server may have just created it)."""


class IHistoryStore(Interface):
    def open(recent):
        """
        Make the store ready (synchronously: it runs before anything listens).

        @param recent: how many of each room's newest messages to load (0: none,
            which is what start-up with many rooms wants).
        @return: a list of L{RoomRecord}s, each with its last seq.
        """

    def addRoom(room, settings=None):
        """
        Store a new L{RoomRecord} (with C{settings} for its scope, in the same
        transaction). Its C{id} is None: the store gives it one, unique for
        good (a removed room's id is never given again). The Deferred fires
        with the record as stored, once durable, or fails with L{RoomTaken}
        if a room of that name (casefolded) exists, whoever created it.
        """

    def addMessage(message):
        """
        Store a L{Message} whose C{seq} is None: the store numbers it, at
        commit, one more than the room's last, so that a room's seqs have no
        gaps and become visible in order, however many servers write to it.
        The Deferred fires with the message as stored (its seq filled in),
        once durable.
        """

    def page(room_id, low, high):
        """The messages of a room with C{low <= seq < high}, oldest first (Deferred)."""

    def seqOf(room_id, uid):
        """The seq of the message of a room with C{uid}, or None (Deferred)."""

    def seqAt(room_id, timestamp):
        """The seq of a room's first message stamped at or after C{timestamp}, or None."""

    def roomSettings(room_id):
        """The settings last saved for "room/ID", or None (Deferred)."""

    def lastSeqs(room_ids):
        """room id -> its last seq, for each of C{room_ids} (Deferred): the position check."""

    def roomsAfter(room_id):
        """L{RoomRecord}s (with last_seq and removed) of the rooms with ids above C{room_id}."""

    def loadAccounts():
        """Every account as (name, password hash, created), synchronously after open()."""

    def loadSettings():
        """scope -> the JSON-able dict last saved for it, synchronously after open()."""

    def addAccount(name, hashed, created):
        """Store a new account; the Deferred fires once it is durable."""

    def setPassword(name, hashed):
        """Replace an account's password hash (Deferred)."""

    def saveSettings(scope, settings):
        """
        Keep C{settings} (a JSON-able dict) for C{scope}: "room/ID" for how a
        room is run, "server" for the server-wide ones (Deferred).
        """

    def removeRoom(room_id, forget):
        """
        Remove a room, freeing its name: with C{forget}, its history and
        settings too; else they are kept, out of sight (Deferred).
        """

    def close():
        """Finish every pending write, then release the store (Deferred)."""

"""
Where rooms and their history are kept. L{IHistoryStore} is what the Lobby
needs of a store; L{SQLiteStore} is the embedded default. The store knows
nothing of users or protocols.
"""

import sqlite3
from dataclasses import dataclass

from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface, implementer


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


class IHistoryStore(Interface):
    def open(recent):
        """
        Make the store ready (synchronously: it runs before anything listens).

        @param recent: how many of each room's newest messages to load (0: none,
            which is what start-up with many rooms wants).
        @return: a list of L{RoomRecord}s, each with its last seq.
        """

    def addRoom(room):
        """Store a new L{RoomRecord}; the Deferred fires once it is durable."""

    def addMessage(message):
        """Store a L{Message}; the Deferred fires once it is durable."""

    def page(room_id, low, high):
        """The messages of a room with C{low <= seq < high}, oldest first (Deferred)."""

    def close():
        """Finish every pending write, then release the store (Deferred)."""


SCHEMA = """
CREATE TABLE IF NOT EXISTS rooms (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    key TEXT NOT NULL UNIQUE,  -- the name casefolded: names are unique regardless of case
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    room_id INTEGER NOT NULL REFERENCES rooms (id),
    seq INTEGER NOT NULL,
    uid TEXT NOT NULL,
    sender TEXT NOT NULL,
    text TEXT NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (room_id, seq)  -- every read is a range of one room's seqs
) WITHOUT ROWID;
"""
_COLUMNS = "room_id, seq, uid, sender, text, ts"


# How hard a commit waits for the disk, by --durability:
#   full:  fsync each commit, so an acknowledged message survives a power loss
#          or an OS crash as well (batching keeps that to one fsync per burst);
#   crash: the commit reaches the operating system, not the platters: it
#          survives the server being killed (kill -9) but not the machine
#          losing power; commits cost a tenth as much.
SYNCHRONOUS = {"full": "FULL", "crash": "NORMAL"}


def _prepare(connection, durability="full"):
    # WAL lets readers (history pages) run beside the writer.
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute(f"PRAGMA synchronous = {SYNCHRONOUS[durability]}")
    connection.execute("PRAGMA busy_timeout = 5000")


@implementer(IHistoryStore)
class SQLiteStore:
    """
    History in one SQLite file. All SQL after start-up runs on adbapi's
    threads, never the reactor's. Writes are group-committed: one transaction
    is in flight at a time, and everything that arrives meanwhile goes into the
    next one, so a burst from many users costs a few transactions, not one each.
    """

    log = Logger()
    BATCH_MAX = 5000

    def __init__(self, path: str, reactor=None, durability: str = "full"):
        if reactor is None:
            from twisted.internet import reactor
        self.path = path
        self.durability = durability
        self._reactor = reactor
        self._pool = None
        self._queue = []  # (insert statement, row, Deferred), in order
        self._writing = False
        self._idleWaiters = []
        self._closing = False
        self.transactions = 0  # committed write transactions, for tests and benchmarks

    def open(self, recent: int) -> list:
        connection = sqlite3.connect(self.path)
        try:
            _prepare(connection, self.durability)
            connection.executescript(SCHEMA)
            # One statement: each room's last seq is one seek in the primary key.
            rows = connection.execute(
                "SELECT id, name, created,"
                " (SELECT MAX(seq) FROM messages WHERE room_id = rooms.id)"
                " FROM rooms ORDER BY id")
            rooms = [RoomRecord(room_id, name, created, last or 0)
                     for room_id, name, created, last in rows]
            if recent > 0:
                rooms = [self._withRecent(connection, room, recent) for room in rooms]
        finally:
            connection.close()
        self._pool = adbapi.ConnectionPool(
            "sqlite3", self.path, check_same_thread=False,
            cp_min=1, cp_max=2, cp_reactor=self._reactor,
            cp_openfun=lambda connection: _prepare(connection, self.durability))
        return rooms

    @staticmethod
    def _withRecent(connection, room, recent):
        newest = connection.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE room_id = ?"
            " ORDER BY seq DESC LIMIT ?", (room.id, recent)).fetchall()
        return RoomRecord(room.id, room.name, room.created, room.last_seq,
                          tuple(Message(*r) for r in reversed(newest)))

    def addRoom(self, room: RoomRecord) -> Deferred:
        return self._enqueue(
            "INSERT INTO rooms (id, name, key, created) VALUES (?, ?, ?, ?)",
            (room.id, room.name, room.name.casefold(), room.created))

    def addMessage(self, m: Message) -> Deferred:
        return self._enqueue(
            f"INSERT INTO messages ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            (m.room_id, m.seq, m.uid, m.sender, m.text, m.timestamp))

    def page(self, room_id: int, low: int, high: int) -> Deferred:
        d = self._pool.runQuery(
            f"SELECT {_COLUMNS} FROM messages WHERE room_id = ? AND seq >= ? AND seq < ?"
            " ORDER BY seq", (room_id, low, high))
        return d.addCallback(lambda rows: [Message(*r) for r in rows])

    def close(self) -> Deferred:
        if self._pool is None or self._closing:
            return succeed(None)
        self._closing = True  # refuse new writes, finish the queued ones
        return self._whenIdle().addCallback(lambda _: self._pool.close())

    def _enqueue(self, statement, row) -> Deferred:
        if self._closing:
            return fail(RuntimeError("the store is closed"))
        d = Deferred()
        self._queue.append((statement, row, d))
        if not self._writing:
            # Start at the end of this reactor turn, so that everything read
            # in it (a burst from many users) shares one transaction.
            self._writing = True
            self._reactor.callLater(0, self._writeBatch)
        return d

    def _writeBatch(self):
        batch = self._queue[:self.BATCH_MAX]
        del self._queue[:self.BATCH_MAX]
        self._writing = True
        self._pool.runInteraction(self._insert, batch).addBoth(self._written, batch)

    @staticmethod
    def _insert(cursor, batch):
        # Consecutive rows for the same statement go in one executemany.
        start = 0
        while start < len(batch):
            statement = batch[start][0]
            end = start
            while end < len(batch) and batch[end][0] == statement:
                end += 1
            cursor.executemany(statement, [row for _, row, _ in batch[start:end]])
            start = end

    def _written(self, result, batch):
        self._writing = False
        if self._queue:  # keep the writer busy before telling anyone
            self._writeBatch()
        if isinstance(result, Failure):
            self.log.failure("Could not store {count} records", result, count=len(batch))
            for _, _, d in batch:
                d.errback(result)
        else:
            self.transactions += 1
            for _, _, d in batch:
                d.callback(None)
        if not self._writing:
            waiters, self._idleWaiters = self._idleWaiters, []
            for waiter in waiters:
                waiter.callback(None)

    def _whenIdle(self) -> Deferred:
        if not self._writing:
            return succeed(None)
        d = Deferred()
        self._idleWaiters.append(d)
        return d

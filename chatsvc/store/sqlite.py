"""The embedded default store: rooms, history, accounts and settings in one SQLite file."""

import json
import os
import sqlite3
import time
from dataclasses import replace
from urllib.parse import quote

from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from chatsvc.store import (DatabaseInUse, DatabaseLost, IHistoryStore, Message, RoomRecord,
                           RoomTaken)
from chatsvc.store.batching import GroupCommit


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
-- CHATHISTORY finds a message by its id or its time
CREATE INDEX IF NOT EXISTS messages_by_uid ON messages (uid);
CREATE INDEX IF NOT EXISTS messages_by_time ON messages (room_id, ts);
CREATE TABLE IF NOT EXISTS accounts (
    key TEXT PRIMARY KEY,  -- the name casefolded
    name TEXT NOT NULL,
    hash TEXT NOT NULL,  -- scrypt$N$r$p$salt$hash: never the password
    created REAL NOT NULL
);
-- How each room is run (owner, topic, modes, bans, roles) and the server-wide
-- bans: one JSON document per scope, rewritten whole when it changes.
CREATE TABLE IF NOT EXISTS settings (
    scope TEXT PRIMARY KEY,  -- "room/ID" or "server"
    value TEXT NOT NULL
);
"""
FORGOTTEN = "\x00forgotten/"  # ... and of one whose history went with it: only its id stays
REMOVED = "\x00removed/"  # the key of a removed room whose history is kept: its name is free
_COLUMNS = "room_id, seq, uid, sender, text, ts"
_INSERT_MESSAGE = f"INSERT INTO messages ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
_SAVE_SETTINGS = "INSERT OR REPLACE INTO settings (scope, value) VALUES (?, ?)"


# How hard a commit waits for the disk, by --durability:
#   full:  fsync each commit, so an acknowledged message survives a power loss
#          or an OS crash as well (batching keeps that to one fsync per burst);
#   crash: the commit reaches the operating system, not the platters: it
#          survives the server being killed (kill -9) but not the machine
#          losing power; commits cost a tenth as much.
SYNCHRONOUS = {"full": "FULL", "crash": "NORMAL"}


BUSY_TIMEOUT_MS = 5000  # how long a statement waits for a lock before it fails


def _prepare(connection, durability="full"):
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    # WAL lets readers (history pages) run beside the writer.
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute(f"PRAGMA synchronous = {SYNCHRONOUS[durability]}")


def _uri(path, mode=""):
    """
    How every connection of the store opens its file: with SQLite's unix-excl
    VFS, which locks the database for this process alone and keeps the WAL
    index on the heap, not in a shared -shm file mapped into memory (a -shm
    truncated or made immutable under the server killed it with SIGBUS). The
    store's own connections still run side by side; other processes (a second
    server, the sqlite3 shell) are kept out while it runs.
    """
    return f"file:{quote(path)}?vfs=unix-excl{mode}"


@implementer(IHistoryStore)
class SQLiteStore(GroupCommit):
    """
    History in one SQLite file. All SQL after start-up runs on adbapi's
    threads, never the reactor's. Writes are group-committed: one transaction
    is in flight at a time, and everything that arrives meanwhile goes into the
    next one, so a burst from many users costs a few transactions, not one each.
    """

    log = Logger()
    LOST_LOG_INTERVAL = 60.0  # seconds between reminders that writes are refused

    def __init__(self, path: str, reactor=None, durability: str = "full",
                 monotonic=time.monotonic):
        if reactor is None:
            from twisted.internet import reactor
        self.path = os.path.abspath(path)  # what an operator is told of, whatever the cwd
        self.durability = durability
        self._reactor = reactor
        self._monotonic = monotonic  # spaces the reminders: a clock step never silences them
        self._pool = None
        self._holder = None  # the connection open() made
        self._startQueue()  # of (statement, row, Deferred)
        self._identity = None  # (st_dev, st_ino) of the database file opened
        self._walIdentity = None  # ... and of its -wal, once the writer has it open
        self._lost = None  # the DatabaseLost once seen: every later write is refused
        self._refused = 0  # writes refused since the last log line about it
        self._lostLogged = None  # when that line was logged (monotonic seconds)

    def _lock(self):
        """A connection holding the lock that keeps other processes out."""
        connection = sqlite3.connect(_uri(self.path), uri=True)
        try:
            _prepare(connection, self.durability)
        except sqlite3.OperationalError as e:
            connection.close()
            if "locked" in str(e):
                raise DatabaseInUse(self.path) from e
            raise
        except BaseException:
            connection.close()
            raise
        return connection

    def probe(self):
        """
        Check that the database can be opened and no other process has it,
        then let it go: before twistd daemonizes, so that a refusal reaches
        the terminal (L{chatsvc.startup.Server}).
        """
        self._lock().close()

    def open(self, recent: int) -> list:
        # This connection is held until close(), and with it the lock that
        # keeps other processes out (the pool's threads connect only when used).
        connection = self._holder = self._lock()
        try:
            connection.executescript(SCHEMA)
            self._identity = _identity(self.path)
            # One statement: each room's last seq is one seek in the primary key.
            rows = connection.execute(
                "SELECT id, name, created,"
                " (SELECT MAX(seq) FROM messages WHERE room_id = rooms.id), key"
                " FROM rooms ORDER BY id")
            rows = rows.fetchall()
            self._nextRoomId = max((row[0] for row in rows), default=0) + 1
            rooms = [RoomRecord(room_id, name, created, last or 0,
                                removed=key.startswith(REMOVED))
                     for room_id, name, created, last, key in rows
                     if not key.startswith(FORGOTTEN)]
            # This process is the only writer (the lock): ids and seqs are
            # counted here and given out in the writer, at commit.
            self._lastSeq = {room.id: room.last_seq for room in rooms}
            self._keys = {room.name.casefold(): room.id for room in rooms if not room.removed}

            if recent > 0:
                rooms = [self._withRecent(connection, room, recent) for room in rooms]
        except BaseException:
            connection.close()
            raise
        # Each of the pool's threads connects when first used, maybe after the
        # file was removed (mode=rw: fail rather than create an empty database
        # there) or replaced (_connected leaves the replacement alone).
        self._pool = adbapi.ConnectionPool(
            "sqlite3", _uri(self.path, "&mode=rw"), uri=True,
            check_same_thread=False,
            cp_min=1, cp_max=2, cp_reactor=self._reactor, cp_openfun=self._connected)
        return rooms

    def _connected(self, connection):
        if self._filesChanged():
            connection.close()
            raise DatabaseLost(self.path)
        _prepare(connection, self.durability)

    @staticmethod
    def _withRecent(connection, room, recent):
        newest = connection.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE room_id = ?"
            " ORDER BY seq DESC LIMIT ?", (room.id, recent)).fetchall()
        return RoomRecord(room.id, room.name, room.created, room.last_seq,
                          tuple(Message(*r) for r in reversed(newest)), room.removed)

    def roomSettings(self, room_id) -> Deferred:
        return self._pool.runQuery("SELECT value FROM settings WHERE scope = ?",
                                   (f"room/{room_id}",)).addCallback(
            lambda rows: json.loads(rows[0][0]) if rows else None)

    def lastSeqs(self, room_ids) -> Deferred:
        # The only writer knows: what it has committed is all there is.
        return succeed({room_id: self._lastSeq.get(room_id, 0) for room_id in room_ids})

    def roomsAfter(self, room_id) -> Deferred:
        d = self._pool.runQuery(
            "SELECT id, name, created, key FROM rooms WHERE id > ? ORDER BY id", (room_id,))
        return d.addCallback(lambda rows: [
            RoomRecord(i, name, created, self._lastSeq.get(i, 0), removed=key.startswith(REMOVED))
            for i, name, created, key in rows if not key.startswith(FORGOTTEN)])

    def loadAccounts(self) -> list:
        return self._holder.execute("SELECT name, hash, created FROM accounts").fetchall()

    def loadSettings(self) -> dict:
        return {scope: json.loads(value) for scope, value in
                self._holder.execute("SELECT scope, value FROM settings")}

    def addAccount(self, name, hashed, created) -> Deferred:
        return self._enqueue(
            "INSERT INTO accounts (key, name, hash, created) VALUES (?, ?, ?, ?)",
            (name.casefold(), name, hashed, created))

    def setPassword(self, name, hashed) -> Deferred:
        return self._enqueue("UPDATE accounts SET hash = ? WHERE key = ?",
                             (hashed, name.casefold()))

    def saveSettings(self, scope, settings) -> Deferred:
        return self._enqueue(_SAVE_SETTINGS, (scope, json.dumps(settings, sort_keys=True)))

    def removeRoom(self, room_id, forget) -> Deferred:
        # Its row stays, under a key that frees its name: so that its id,
        # the highest maybe, is never given to another room.
        forgetting = [("DELETE FROM messages WHERE room_id = ?", (room_id,)),
                      ("DELETE FROM settings WHERE scope = ?", (f"room/{room_id}",))]
        d = self._enqueue("UPDATE rooms SET key = ? WHERE id = ?",
                          (f"{FORGOTTEN if forget else REMOVED}{room_id}", room_id),
                          forgetting if forget else ())

        def removed(_):  # its name is free now
            self._keys = {k: i for k, i in self._keys.items() if i != room_id}
        return d.addCallback(removed)

    def addRoom(self, room: RoomRecord, settings=None) -> Deferred:
        key = room.name.casefold()
        if key in self._keys:
            return fail(RoomTaken(room.name))
        if room.id is None:
            room = replace(room, id=self._nextRoomId)
        self._nextRoomId = max(self._nextRoomId, room.id + 1)
        self._keys[key] = room.id
        self._lastSeq.setdefault(room.id, 0)
        companions = []
        if settings is not None:  # in the same transaction
            companions.append((_SAVE_SETTINGS, (f"room/{room.id}",
                                                json.dumps(settings, sort_keys=True))))
        d = self._enqueue("INSERT INTO rooms (id, name, key, created) VALUES (?, ?, ?, ?)",
                          (room.id, room.name, key, room.created), companions)

        def refused(failure):
            self._keys.pop(key, None)
            return failure
        return d.addCallbacks(lambda _: room, refused)

    def addMessage(self, m: Message) -> Deferred:
        # A seq of None is given in the writer, at commit (see _insert).
        return self._enqueue(_INSERT_MESSAGE,
                             (m.room_id, m.seq, m.uid, m.sender, m.text, m.timestamp))

    def page(self, room_id: int, low: int, high: int) -> Deferred:
        d = self._pool.runQuery(
            f"SELECT {_COLUMNS} FROM messages WHERE room_id = ? AND seq >= ? AND seq < ?"
            " ORDER BY seq", (room_id, low, high))
        return d.addCallback(lambda rows: [Message(*r) for r in rows])

    def seqOf(self, room_id: int, uid: str) -> Deferred:
        return self._pool.runQuery(
            "SELECT seq FROM messages WHERE uid = ? AND room_id = ?", (uid, room_id)
        ).addCallback(lambda rows: rows[0][0] if rows else None)

    def seqAt(self, room_id: int, timestamp: float) -> Deferred:
        return self._pool.runQuery(
            "SELECT MIN(seq) FROM messages WHERE room_id = ? AND ts >= ?",
            (room_id, timestamp)).addCallback(lambda rows: rows[0][0])

    def _release(self):
        self._pool.close()
        self._holder.close()

    def _enqueue(self, statement, row, companions=()) -> Deferred:
        """
        Queue one write; C{companions}, (statement, row) each, go in the same
        transaction right after it, answered by its Deferred.
        """
        if self._lost is not None and not self._closing:
            self._refuse(1)
            return fail(self._lost)
        return self._queueWrite(statement, row, companions)

    def _transaction(self, batch):
        return self._pool.runInteraction(self._insert, batch)

    def _insert(self, cursor, batch):
        """
        Write C{batch} in one transaction (in the writer thread), numbering
        the messages that have no seq yet. Returns their seqs by place in the
        batch, and each room's last seq after it.
        """
        rows, seqs, last = [], {}, {}
        for i, (statement, row, _) in enumerate(batch):
            if statement is _INSERT_MESSAGE:
                room = row[0]
                seq = row[1]
                if seq is None:
                    seq = seqs[i] = last.get(room, self._lastSeq.get(room, 0)) + 1
                    row = (room, seq) + row[2:]
                last[room] = max(seq, last.get(room, self._lastSeq.get(room, 0)))
            rows.append(row)
        # Consecutive rows for the same statement go in one executemany.
        start = 0
        while start < len(batch):
            statement = batch[start][0]
            end = start
            while end < len(batch) and batch[end][0] == statement:
                end += 1
            cursor.executemany(statement, rows[start:end])
            start = end
        self._checkFiles()  # raising rolls the batch back: nothing is acknowledged
        return seqs, last

    def _checkFiles(self):
        """
        In the writer thread, before each commit: are the files SQLite writes
        still the ones at our path? If the database (or its folder) was removed
        or replaced, SQLite would go on writing to a file nobody will ever open
        again. One stat or two per batch, not per message.
        """
        if self._walIdentity is None:  # the -wal is open now: this transaction writes to it
            self._walIdentity = _identity(self.path + "-wal")
        if self._filesChanged():
            raise DatabaseLost(self.path)

    def _filesChanged(self):
        # The -wal holds every commit since the last checkpoint: losing it loses those.
        return (_identity(self.path) != self._identity
                or self._walIdentity is not None
                and _identity(self.path + "-wal") != self._walIdentity)

    def _beforeNext(self, result):
        seqs, last = result
        self._lastSeq.update(last)  # before the next batch numbers any

    def _failedBatch(self, result, batch):
        if not result.check(DatabaseLost) and self._filesChanged():
            # The file went before the check could run (say a new
            # connection could not open it): the same loss, the same answer.
            result = Failure(DatabaseLost(self.path))
        if result.check(DatabaseLost):
            self._databaseLost(result.value, len(batch))
        else:
            self.log.failure("Could not store {count} records", result, count=len(batch))
        GroupCommit._failedBatch(self, result, batch)

    def _committedBatch(self, result, batch):
        seqs, _ = result
        for i, (statement, row, d) in enumerate(batch):
            if d is None:
                continue
            if statement is _INSERT_MESSAGE:  # the message as stored
                d.callback(Message(row[0], seqs.get(i, row[1]), *row[2:]))
            else:
                d.callback(None)

    def _databaseLost(self, error, count):
        if self._lost is None:
            self._lost = error
            self._lostLogged = self._monotonic()
            self.log.critical(
                "{error} Refusing every write from now on, so that nothing is"
                " acknowledged that a restart would lose ({count} refused so far).",
                error=error, count=count)
        else:
            self._refuse(count)

    def _refuse(self, count):
        # Loud, but bounded: one reminder per interval, never a line per message.
        self._refused += count
        now = self._monotonic()
        if now - self._lostLogged >= self.LOST_LOG_INTERVAL:
            self.log.critical(
                "{error} Still refusing writes: {count} refused since the last report.",
                error=self._lost, count=self._refused)
            self._refused = 0
            self._lostLogged = now


def _identity(path):
    """Which file is at C{path} now (device and inode), or None if none is."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return (status.st_dev, status.st_ino)

"""The SQLite history store, on real files and real threads."""

import os
import shutil
import sqlite3
import sys

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.internet.utils import getProcessOutputAndValue
from twisted.logger import Logger, LogLevel
from twisted.trial.unittest import TestCase

from chatsvc.store import DatabaseLost, Message, RoomRecord
from chatsvc.store.sqlite import SQLiteStore, _prepare
from tests.e2e import PROJECT_ROOT


class SQLiteStoreTests(TestCase):
    def setUp(self):
        self.path = os.path.abspath(self.mktemp() + ".sqlite3")

    def openStore(self, recent=50, **options):
        store = SQLiteStore(self.path, **options)
        rooms = store.open(recent)
        self.addCleanup(store.close)
        return store, rooms

    def message(self, seq, room_id=1, text=None):
        return Message(room_id, seq, f"uid-{room_id}-{seq}", "alice",
                       text or f"message {seq}", 1795000000.0 + seq)

    @defer.inlineCallbacks
    def test_roomsAndMessagesSurviveReopening(self):
        store, rooms = self.openStore()
        self.assertEqual(rooms, [])
        yield store.addRoom(RoomRecord(1, "Kitchen", 1.5))
        yield defer.gatherResults([store.addMessage(self.message(n)) for n in range(1, 6)])
        yield store.close()
        again, rooms = self.openStore(recent=3)
        self.assertEqual(rooms, [RoomRecord(1, "Kitchen", 1.5, 5,
                                            tuple(self.message(n) for n in (3, 4, 5)))])

    @defer.inlineCallbacks
    def test_openWithoutRecentGivesLastSeqsOnly(self):
        """open(0), what start-up with many rooms uses: every room and its last seq, no messages."""
        store, _ = self.openStore()
        for room_id, name in [(1, "Kitchen"), (2, "Garden"), (3, "Empty")]:
            yield store.addRoom(RoomRecord(room_id, name, float(room_id)))
        yield defer.gatherResults(
            [store.addMessage(self.message(n, room)) for room, count in [(1, 4), (2, 9)]
             for n in range(1, count + 1)])
        yield store.close()
        _, rooms = self.openStore(recent=0)
        self.assertEqual(rooms, [RoomRecord(1, "Kitchen", 1.0, 4), RoomRecord(2, "Garden", 2.0, 9),
                                 RoomRecord(3, "Empty", 3.0, 0)])

    def test_durability(self):
        """full fsyncs every commit (synchronous=FULL); crash leaves that to the OS."""
        for durability, expected in [("full", 2), ("crash", 1)]:
            connection = sqlite3.connect(self.path)
            _prepare(connection, durability)
            (synchronous,) = connection.execute("PRAGMA synchronous").fetchone()
            (journal,) = connection.execute("PRAGMA journal_mode").fetchone()
            connection.close()
            self.assertEqual((synchronous, journal), (expected, "wal"))

    @defer.inlineCallbacks
    def test_burstIsBatched(self):
        """A burst of messages costs a few transactions, not one each."""
        store, _ = self.openStore()
        yield store.addRoom(RoomRecord(1, "kitchen", 0.0))
        before = store.transactions
        order = []
        ds = []
        for n in range(1, 1001):
            d = store.addMessage(self.message(n))
            d.addCallback(lambda _, n=n: order.append(n))
            ds.append(d)
        yield defer.gatherResults(ds)
        self.assertEqual(order, list(range(1, 1001)))
        self.assertLessEqual(store.transactions - before, 2)
        page = yield store.page(1, 1, 1001)
        self.assertEqual(len(page), 1000)

    @defer.inlineCallbacks
    def test_pageIsARangeOfOneRoom(self):
        store, _ = self.openStore()
        yield store.addRoom(RoomRecord(1, "one", 0.0))
        yield store.addRoom(RoomRecord(2, "two", 0.0))
        yield defer.gatherResults(
            [store.addMessage(self.message(n, room)) for room in (1, 2) for n in range(1, 21)])
        page = yield store.page(2, 5, 9)
        self.assertEqual(page, [self.message(n, 2) for n in range(5, 9)])

    @defer.inlineCallbacks
    def test_failedWriteFailsOnlyItsBatch(self):
        store, _ = self.openStore()
        yield store.addRoom(RoomRecord(1, "kitchen", 0.0))
        yield store.addMessage(self.message(1))
        duplicate = store.addMessage(self.message(1, text="same seq again"))
        yield self.assertFailure(duplicate, Exception)
        yield store.addMessage(self.message(2))
        page = yield store.page(1, 1, 10)
        self.assertEqual([m.text for m in page], ["message 1", "message 2"])
        self.flushLoggedErrors()

    @defer.inlineCallbacks
    def test_closeFinishesPendingWrites(self):
        store, _ = self.openStore()
        yield store.addRoom(RoomRecord(1, "kitchen", 0.0))
        for n in range(1, 101):
            store.addMessage(self.message(n))
        yield store.close()
        _, rooms = self.openStore(recent=1)
        self.assertEqual(rooms[0].last_seq, 100)


class OneProcessTests(TestCase):
    """
    The store keeps its database to itself: the WAL index lives on its heap,
    not in a -shm file that someone could truncate under it (SIGBUS), and
    other processes are kept out while it runs.
    """

    timeout = 30

    def setUp(self):
        self.path = os.path.abspath(self.mktemp() + ".sqlite3")

    def message(self, seq):
        return Message(1, seq, f"uid-{seq}", "alice", f"message {seq}", 1795000000.0)

    def inAnotherProcess(self, code):
        """Run C{code} (with C{path} set) in a child Python; its output and exit code."""
        return getProcessOutputAndValue(
            sys.executable, ["-c", f"path = {self.path!r}\n{code}"],
            env=dict(os.environ, PYTHONPATH=PROJECT_ROOT))

    @defer.inlineCallbacks
    def test_noSharedMemoryFile(self):
        """A stale -shm, even truncated to nothing, is never mapped: none is made or used."""
        with open(self.path + "-shm", "wb"):
            pass
        store = SQLiteStore(self.path)
        store.open(0)
        self.addCleanup(store.close)
        yield store.addRoom(RoomRecord(1, "kitchen", 0.0))
        yield defer.gatherResults([store.addMessage(self.message(n)) for n in range(1, 101)])
        self.assertEqual(os.path.getsize(self.path + "-shm"), 0)
        os.remove(self.path + "-shm")
        yield store.addMessage(self.message(101))
        page = yield store.page(1, 99, 200)
        self.assertEqual([m.seq for m in page], [99, 100, 101])
        self.assertFalse(os.path.exists(self.path + "-shm"))

    @defer.inlineCallbacks
    def test_otherProcessesAreKeptOut(self):
        store = SQLiteStore(self.path)
        store.open(0)
        self.addCleanup(store.close)
        yield store.addRoom(RoomRecord(1, "kitchen", 0.0))
        out, err, code = yield self.inAnotherProcess(
            "import sqlite3\n"
            "sqlite3.connect(path, timeout=0).execute('SELECT COUNT(*) FROM rooms')")
        self.assertIn(b"database is locked", err)
        # A second server on the same database is refused, with the path and
        # what to do (at once here: it would wait for SQLite's busy timeout).
        out, err, code = yield self.inAnotherProcess(
            "from chatsvc.store import sqlite as store\n"
            "store.BUSY_TIMEOUT_MS = 0\n"
            "store.SQLiteStore(path).open(0)")
        self.assertIn(f"chatsvc.store.DatabaseInUse: The database {self.path} is in use"
                      " by another process".encode(), err)
        yield store.close()
        out, err, code = yield self.inAnotherProcess(
            "import sqlite3\n"
            "print(sqlite3.connect(path).execute('SELECT name FROM rooms').fetchall())")
        self.assertEqual((out, code), (b"[('kitchen',)]\n", 0))


class DatabaseLostTests(TestCase):
    """
    The database file removed or replaced under a running store: SQLite would
    go on writing to a file no restart opens, so the store refuses instead.
    """

    def setUp(self):
        self.folder = os.path.abspath(self.mktemp())
        os.makedirs(self.folder)
        self.path = os.path.join(self.folder, "chat.sqlite3")
        self.clock = Clock()
        self.store = SQLiteStore(self.path, monotonic=self.clock.seconds)
        self.logged = []
        self.store.log = Logger(observer=self.logged.append)
        self.store.open(0)
        self.addCleanup(self.store.close)
        self.seq = 0

    def say(self, text="hello"):
        self.seq += 1
        return self.store.addMessage(
            Message(1, self.seq, f"uid-{self.seq}", "alice", text, 1795000000.0))

    def critical(self):
        return [e for e in self.logged if e["log_level"] == LogLevel.critical]

    @defer.inlineCallbacks
    def assertLost(self, d):
        failure = yield self.assertFailure(d, DatabaseLost)
        self.assertIn(f"The database file at {self.path} was removed or replaced", str(failure))

    @defer.inlineCallbacks
    def test_removedFileRefusesEveryWrite(self):
        yield self.store.addRoom(RoomRecord(1, "kitchen", 0.0))
        yield self.say()
        os.remove(self.path)
        yield self.assertLost(self.say("after the removal"))
        yield self.assertLost(self.say("and again"))
        yield self.assertLost(self.store.addRoom(RoomRecord(2, "garden", 0.0)))
        self.assertEqual(len(self.critical()), 1)

    @defer.inlineCallbacks
    def test_removedFolder(self):
        yield self.store.addRoom(RoomRecord(1, "kitchen", 0.0))
        shutil.rmtree(self.folder)
        yield defer.gatherResults([self.assertLost(self.say()) for _ in range(10)])

    @defer.inlineCallbacks
    def test_replacedFileRefusesAndTheReplacementIsUntouched(self):
        yield self.store.addRoom(RoomRecord(1, "kitchen", 0.0))
        yield self.say("before")
        other = os.path.join(self.folder, "other.sqlite3")
        sqlite3.connect(other).close()
        os.replace(other, self.path)
        yield self.assertLost(self.say("after"))
        self.assertEqual(os.path.getsize(self.path), 0)

    @defer.inlineCallbacks
    def test_removedWalRefuses(self):
        """The -wal holds the commits since the last checkpoint: losing it loses them."""
        yield self.store.addRoom(RoomRecord(1, "kitchen", 0.0))
        yield self.say("before")
        os.remove(self.path + "-wal")
        yield self.assertLost(self.say("after"))

    @defer.inlineCallbacks
    def test_refusedBatchIsRolledBack(self):
        """Moved away and back: what was refused meanwhile is not in the file."""
        yield self.store.addRoom(RoomRecord(1, "kitchen", 0.0))
        yield self.say("kept")
        moved = self.folder + ".moved"
        os.rename(self.folder, moved)
        yield defer.gatherResults([self.assertLost(self.say(f"refused {n}")) for n in range(5)])
        os.rename(moved, self.folder)
        yield self.assertLost(self.say("still refused"))
        yield self.store.close()
        again = SQLiteStore(self.path)
        self.assertEqual(again.open(0), [RoomRecord(1, "kitchen", 0.0, 1)])
        self.addCleanup(again.close)
        page = yield again.page(1, 1, 100)
        self.assertEqual([m.text for m in page], ["kept"])

    @defer.inlineCallbacks
    def test_refusalsAreLoggedAtABoundedRate(self):
        """Once when first seen, then one reminder per interval with a count: never a line each."""
        yield self.store.addRoom(RoomRecord(1, "kitchen", 0.0))
        os.remove(self.path)
        yield self.assertLost(self.say())
        for _ in range(100):
            yield self.assertLost(self.say())
        self.assertEqual(len(self.critical()), 1)
        self.clock.advance(SQLiteStore.LOST_LOG_INTERVAL)
        for _ in range(50):
            yield self.assertLost(self.say())
        lines = self.critical()
        self.assertEqual(len(lines), 2)
        self.assertEqual(lines[1]["count"], 101)
        self.assertIn(self.path, str(lines[1]["error"]))

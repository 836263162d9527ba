"""
One suite for every history store (L{chatsvc.store.IHistoryStore}): the
SQLite store on a file in a temporary folder, the PostgreSQL store on a
database of its own per test on the server at $CHATSVC_TEST_POSTGRES
(default postgresql://postgres@127.0.0.1:5432/postgres). Without that server
the PostgreSQL tests are skipped, with the reason, except under CI=true,
where they fail.
"""

import os
import secrets
from dataclasses import replace

from twisted.internet import defer, reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import SkipTest, TestCase

from chatsvc.store import Message, RoomRecord, RoomTaken
from chatsvc.store.sqlite import SQLiteStore

try:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
except ImportError:  # the postgres extra is not installed
    psycopg = None

POSTGRES_URL = os.environ.get("CHATSVC_TEST_POSTGRES",
                              "postgresql://postgres@127.0.0.1:5432/postgres")


def turn():
    """Let the reactor go round once: what is queued before and after goes in separate batches."""
    return deferLater(reactor, 0, lambda: None)


class StoreContract:
    """
    What every store does. A TestCase using it defines C{makeStore()}: a new,
    unopened store on the test's database (the same one each call).
    """

    concurrentStores = 1  # how many stores may write to one database at once

    def openStore(self, recent=50):
        store = self.makeStore()
        rooms = store.open(recent)
        self.addCleanup(store.close)
        return store, rooms

    def reopen(self, store, recent=50):
        """Close C{store}; a new store on the same database, and what it opened."""
        return store.close().addCallback(lambda _: self.openStore(recent))

    _uids = 0

    def message(self, room_id, text="hello", sender="alice", timestamp=None):
        self._uids += 1
        return Message(room_id, None, f"uid-{self._uids}", sender, text,
                       1795000000.0 + self._uids if timestamp is None else timestamp)

    @defer.inlineCallbacks
    def say(self, store, room_id, count, **kw):
        """C{count} messages to a room, in one burst; the messages as stored."""
        stored = yield defer.gatherResults(
            [store.addMessage(self.message(room_id, **kw)) for _ in range(count)])
        return stored

    # rooms and their ids

    @defer.inlineCallbacks
    def test_roomsGetIdsFromTheStore(self):
        store, rooms = self.openStore()
        self.assertEqual(rooms, [])
        kitchen = yield store.addRoom(RoomRecord(None, "Kitchen", 1.5))
        garden = yield store.addRoom(RoomRecord(None, "Garden", 2.5))
        self.assertIsInstance(kitchen.id, int)
        self.assertNotEqual(kitchen.id, garden.id)
        self.assertEqual(kitchen, RoomRecord(kitchen.id, "Kitchen", 1.5))
        _, rooms = yield self.reopen(store)
        self.assertEqual(sorted(rooms, key=lambda r: r.id),
                         sorted([kitchen, garden], key=lambda r: r.id))

    @defer.inlineCallbacks
    def test_positionsForTheCheck(self):
        """lastSeqs and roomsAfter: what a server reads each second to catch up."""
        store, _ = self.openStore()
        kitchen = yield store.addRoom(RoomRecord(None, "kitchen", 1.0))
        garden = yield store.addRoom(RoomRecord(None, "garden", 2.0))
        yield self.say(store, kitchen.id, 3)
        lasts = yield store.lastSeqs([kitchen.id, garden.id])
        self.assertEqual(lasts, {kitchen.id: 3, garden.id: 0})
        after = yield store.roomsAfter(kitchen.id)
        self.assertEqual([(r.id, r.name, r.last_seq) for r in after], [(garden.id, "garden", 0)])
        self.assertEqual((yield store.roomsAfter(garden.id)), [])

    @defer.inlineCallbacks
    def test_roomTakenWhateverTheCase(self):
        store, _ = self.openStore()
        yield store.addRoom(RoomRecord(None, "Kitchen", 1.0))
        yield self.assertFailure(store.addRoom(RoomRecord(None, "kITCHEN", 2.0)), RoomTaken)
        _, rooms = yield self.reopen(store)
        self.assertEqual([r.name for r in rooms], ["Kitchen"])

    @defer.inlineCallbacks
    def test_roomTakenInOneBatchFailsOnlyItself(self):
        """Two creations of one name in one transaction: one wins, the rest stands."""
        store, _ = self.openStore()
        room = yield store.addRoom(RoomRecord(None, "Kitchen", 1.0))
        first = store.addRoom(RoomRecord(None, "Garden", 1.0), {"topic": "first"})
        said = store.addMessage(self.message(room.id))
        second = store.addRoom(RoomRecord(None, "garden", 2.0), {"topic": "second"})
        garden = yield first
        yield self.assertFailure(second, RoomTaken)
        stored = yield said
        self.assertEqual(stored.seq, 1)
        store, rooms = yield self.reopen(store)
        self.assertEqual(sorted(r.name for r in rooms), ["Garden", "Kitchen"])
        self.assertEqual(store.loadSettings(), {f"room/{garden.id}": {"topic": "first"}})

    @defer.inlineCallbacks
    def test_roomSettingsStoredWithTheRoom(self):
        store, _ = self.openStore()
        room = yield store.addRoom(RoomRecord(None, "Kitchen", 1.0),
                                   {"owner": "alice", "topic": "Soup", "modes": ["n", "t"]})
        store, _ = yield self.reopen(store)
        self.assertEqual(store.loadSettings(), {
            f"room/{room.id}": {"owner": "alice", "topic": "Soup", "modes": ["n", "t"]}})

    @defer.inlineCallbacks
    def test_removedRoomsIdsAreNeverGivenAgain(self):
        store, _ = self.openStore()
        kept = yield store.addRoom(RoomRecord(None, "Kitchen", 1.0))
        yield store.removeRoom(kept.id, forget=False)
        forgotten = yield store.addRoom(RoomRecord(None, "Kitchen", 2.0))  # the name is free
        self.assertNotEqual(forgotten.id, kept.id)
        yield store.removeRoom(forgotten.id, forget=True)
        store, _ = yield self.reopen(store)
        again = yield store.addRoom(RoomRecord(None, "kitchen", 3.0))
        self.assertNotIn(again.id, (kept.id, forgotten.id))

    # messages, numbered at commit

    @defer.inlineCallbacks
    def test_messagesNumberedAtCommit(self):
        store, _ = self.openStore()
        one = yield store.addRoom(RoomRecord(None, "one", 0.0))
        two = yield store.addRoom(RoomRecord(None, "two", 0.0))
        sent = [self.message(room.id, text=f"{room.name} {n}")
                for n in range(5) for room in (one, two)]  # interleaved
        stored = yield defer.gatherResults([store.addMessage(m) for m in sent])
        later = yield store.addMessage(self.message(one.id, text="later"))
        self.assertEqual([m.seq for m in stored], [1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
        self.assertEqual(stored, [replace(m, seq=s.seq) for m, s in zip(sent, stored)])
        self.assertEqual(later.seq, 6)
        page = yield store.page(two.id, 1, 100)
        self.assertEqual(page, [m for m in stored if m.room_id == two.id])

    @defer.inlineCallbacks
    def test_noGapsUnderConcurrency(self):
        """
        Several bursts over several reactor turns, from every store that may
        share the database at once, interleaved into one room: every seq from
        1 to N exactly once, and each store's messages in the order it sent them.
        """
        stores = [self.openStore()[0] for _ in range(self.concurrentStores)]
        room = yield stores[0].addRoom(RoomRecord(None, "busy", 0.0))
        sent = {index: [] for index in range(len(stores))}
        acknowledged = []
        for burst in range(20):
            for n in range(15):
                for index, store in enumerate(stores):
                    m = self.message(room.id, sender=f"store{index}", text=f"{burst}/{n}")
                    sent[index].append(m.uid)
                    acknowledged.append(store.addMessage(m))
            if burst % 3:
                yield turn()
        acknowledged = yield defer.gatherResults(acknowledged)
        total = 20 * 15 * len(stores)
        page = yield stores[-1].page(room.id, 1, total + 10)
        self.assertEqual([m.seq for m in page], list(range(1, total + 1)))
        self.assertEqual(sorted(acknowledged, key=lambda m: m.seq), page)
        for index in sent:
            self.assertEqual([m.uid for m in page if m.sender == f"store{index}"], sent[index])
        _, rooms = self.openStore(recent=0)
        self.assertEqual(rooms[0].last_seq, total)

    @defer.inlineCallbacks
    def test_closeFinishesPendingWrites(self):
        store, _ = self.openStore()
        room = yield store.addRoom(RoomRecord(None, "kitchen", 0.0))
        pending = [store.addMessage(self.message(room.id)) for _ in range(100)]
        yield store.close()
        stored = yield defer.gatherResults(pending)
        self.assertEqual(stored[-1].seq, 100)
        _, rooms = self.openStore(recent=1)
        self.assertEqual(rooms[0].last_seq, 100)

    # reading history

    @defer.inlineCallbacks
    def test_pageSeqOfSeqAt(self):
        store, _ = self.openStore()
        one = yield store.addRoom(RoomRecord(None, "one", 0.0))
        two = yield store.addRoom(RoomRecord(None, "two", 0.0))
        ones = []
        for n in range(1, 21):
            ones.append((yield store.addMessage(self.message(one.id, timestamp=1000.0 + n))))
        twos = yield self.say(store, two.id, 3, timestamp=5000.0)
        page = yield store.page(one.id, 5, 9)
        self.assertEqual(page, ones[4:8])
        self.assertEqual((yield store.page(one.id, 21, 30)), [])
        self.assertEqual((yield store.seqOf(one.id, ones[6].uid)), 7)
        self.assertIsNone((yield store.seqOf(two.id, ones[6].uid)))  # another room's
        self.assertIsNone((yield store.seqOf(one.id, "no such uid")))
        self.assertEqual((yield store.seqAt(one.id, 1010.0)), 10)
        self.assertEqual((yield store.seqAt(one.id, 1010.5)), 11)
        self.assertEqual((yield store.seqAt(one.id, 0.0)), 1)
        self.assertIsNone((yield store.seqAt(one.id, 1021.0)))
        self.assertEqual((yield store.seqAt(two.id, 4000.0)), 1)
        self.assertEqual([m.seq for m in twos], [1, 2, 3])

    @defer.inlineCallbacks
    def test_reopeningSeesEverything(self):
        store, _ = self.openStore()
        kitchen = yield store.addRoom(RoomRecord(None, "Kitchen", 1.5))
        garden = yield store.addRoom(RoomRecord(None, "Garden", 2.5))
        empty = yield store.addRoom(RoomRecord(None, "Empty", 3.5))
        said = yield self.say(store, kitchen.id, 5)
        yield self.say(store, garden.id, 9)
        store, rooms = yield self.reopen(store, recent=3)
        byId = {r.id: r for r in rooms}
        self.assertEqual(byId[kitchen.id], replace(kitchen, last_seq=5, recent=tuple(said[2:])))
        self.assertEqual([m.seq for m in byId[garden.id].recent], [7, 8, 9])
        self.assertEqual(byId[empty.id], empty)
        _, rooms = yield self.reopen(store, recent=0)
        self.assertEqual(sorted((r.id, r.last_seq, r.recent) for r in rooms),
                         sorted([(kitchen.id, 5, ()), (garden.id, 9, ()), (empty.id, 0, ())]))

    # accounts and settings

    @defer.inlineCallbacks
    def test_accounts(self):
        store, _ = self.openStore()
        self.assertEqual(store.loadAccounts(), [])
        yield store.addAccount("Alice", "scrypt$1", 10.0)
        yield store.addAccount("bob", "scrypt$2", 20.0)
        yield store.setPassword("ALICE", "scrypt$3")
        store, _ = yield self.reopen(store)
        self.assertEqual(sorted(tuple(a) for a in store.loadAccounts()),
                         [("Alice", "scrypt$3", 10.0), ("bob", "scrypt$2", 20.0)])

    @defer.inlineCallbacks
    def test_settings(self):
        store, _ = self.openStore()
        self.assertEqual(store.loadSettings(), {})
        yield store.saveSettings("server", {"bans": {"*!*@10.*": ["spam", 1.5]}})
        yield store.saveSettings("room/7", {"topic": "old"})
        yield store.saveSettings("room/7", {"topic": "new \u00e9\u6f22", "limit": 5})
        store, _ = yield self.reopen(store)
        self.assertEqual(store.loadSettings(), {
            "server": {"bans": {"*!*@10.*": ["spam", 1.5]}},
            "room/7": {"topic": "new \u00e9\u6f22", "limit": 5}})

    # removing rooms

    @defer.inlineCallbacks
    def test_removeRoomKeepsItsHistoryOutOfSight(self):
        store, _ = self.openStore()
        room = yield store.addRoom(RoomRecord(None, "Kitchen", 1.0), {"topic": "Soup"})
        said = yield self.say(store, room.id, 4)
        yield store.removeRoom(room.id, forget=False)
        store, rooms = yield self.reopen(store, recent=2)
        self.assertEqual(rooms, [replace(room, last_seq=4, recent=tuple(said[2:]), removed=True)])
        self.assertEqual((yield store.page(room.id, 1, 10)), said)
        self.assertEqual(store.loadSettings(), {f"room/{room.id}": {"topic": "Soup"}})
        other = yield store.addRoom(RoomRecord(None, "kitchen", 2.0))  # its name is free
        self.assertNotEqual(other.id, room.id)

    @defer.inlineCallbacks
    def test_removeRoomAndForget(self):
        store, _ = self.openStore()
        room = yield store.addRoom(RoomRecord(None, "Kitchen", 1.0), {"topic": "Soup"})
        kept = yield store.addRoom(RoomRecord(None, "Garden", 1.0), {"topic": "Roses"})
        yield self.say(store, room.id, 4)
        yield self.say(store, kept.id, 2)
        yield store.removeRoom(room.id, forget=True)
        store, rooms = yield self.reopen(store, recent=0)
        self.assertEqual([(r.id, r.last_seq) for r in rooms], [(kept.id, 2)])
        self.assertEqual((yield store.page(room.id, 1, 10)), [])
        self.assertEqual(store.loadSettings(), {f"room/{kept.id}": {"topic": "Roses"}})


class SQLiteStoreContractTests(StoreContract, TestCase):
    def setUp(self):
        self.path = os.path.abspath(self.mktemp() + ".sqlite3")

    def makeStore(self):
        return SQLiteStore(self.path)


_reachable = None  # None: not tried yet; else (True, "") or (False, why not)


def postgresReachable():
    global _reachable
    if _reachable is None:
        if psycopg is None:
            _reachable = (False, "psycopg is not installed (pip install -e '.[postgres]')")
        else:
            try:
                psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
                _reachable = (True, "")
            except psycopg.Error as e:
                _reachable = (False, f"no PostgreSQL answers at {POSTGRES_URL}"
                                     f" (set CHATSVC_TEST_POSTGRES): {e}".strip())
    return _reachable


class PostgresDatabase:
    """
    A database of the test's own on the server at CHATSVC_TEST_POSTGRES,
    dropped in clean-up. Skips the test without a server (fails under CI).
    """

    def makeDatabase(self):
        reachable, why = postgresReachable()
        if not reachable:
            if os.environ.get("CI") == "true":
                self.fail(f"CI=true, so the PostgreSQL tests must run, but {why}")
            raise SkipTest(why)
        self.dbname = f"chatsvc_test_{secrets.token_hex(6)}"
        self.admin(f'CREATE DATABASE "{self.dbname}"')
        self.addCleanup(self.admin, f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
        params = conninfo_to_dict(POSTGRES_URL)
        params["dbname"] = self.dbname
        self.url = make_conninfo(**params)

    def admin(self, statement, params=None, url=POSTGRES_URL):
        """Run one statement on its own autocommit connection (DDL, killing backends)."""
        with psycopg.connect(url, autocommit=True) as connection:
            cursor = connection.execute(statement, params)
            return cursor.fetchall() if cursor.description else None

    def makeStore(self, **kw):
        from chatsvc.store.postgres import PostgresStore
        return PostgresStore(self.url, **kw)


class PostgresStoreContractTests(PostgresDatabase, StoreContract, TestCase):
    concurrentStores = 2  # two nodes on one database

    def setUp(self):
        self.makeDatabase()


class PostgresStoreTests(PostgresDatabase, TestCase):
    """What only a database server does: many nodes, and a connection that breaks."""

    timeout = 60

    def setUp(self):
        self.makeDatabase()
        self.seq = 0

    def openStore(self, **kw):
        store = self.makeStore(**kw)
        store.open(0)
        self.addCleanup(store.close)
        return store

    def message(self, room_id, text="hello"):
        self.seq += 1
        return Message(room_id, None, f"uid-{self.seq}", "alice", text, 1795000000.0 + self.seq)

    def storeBackends(self):
        return [pid for (pid,) in self.admin(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (self.dbname,))]

    def killBackends(self):
        """What a PostgreSQL restart or a failover does to every connection the store has."""
        self.admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                   " WHERE datname = %s AND pid <> pg_backend_pid()", (self.dbname,))

    def refuseConnections(self, refuse=True):
        """PostgreSQL gone for this database only: the shared server keeps running."""
        allow = "false" if refuse else "true"
        self.admin(f'ALTER DATABASE "{self.dbname}" ALLOW_CONNECTIONS {allow}')
        if refuse:
            self.addCleanup(self.refuseConnections, False)

    @defer.inlineCallbacks
    def test_durableBeforeAcknowledged(self):
        store = self.openStore()
        room = yield store.addRoom(RoomRecord(None, "kitchen", 0.0))
        stored = yield store.addMessage(self.message(room.id))
        rows = self.admin("SELECT seq, uid FROM messages", url=self.url)
        self.assertEqual(rows, [(stored.seq, stored.uid)])
        setting = yield store._run(store._read, "SHOW synchronous_commit", ())
        self.assertEqual(setting, [("on",)])

    @defer.inlineCallbacks
    def test_oneStatementPerRoomPerBatch(self):
        """20 rooms x 50 messages in one burst: one transaction, each room's seqs 1..50."""
        store = self.openStore()
        rooms = []
        for n in range(20):
            rooms.append((yield store.addRoom(RoomRecord(None, f"room{n}", 0.0))))
        before = store.transactions
        stored = yield defer.gatherResults(
            [store.addMessage(self.message(room.id)) for _ in range(50) for room in rooms])
        self.assertEqual(store.transactions - before, 1)
        for room in rooms:
            self.assertEqual([m.seq for m in stored if m.room_id == room.id], list(range(1, 51)))
        self.assertEqual(self.admin("SELECT min(last_seq), max(last_seq) FROM rooms",
                                    url=self.url), [(50, 50)])

    @defer.inlineCallbacks
    def test_twoNodesCreateOneRoom(self):
        first, second = self.openStore(), self.openStore()
        results = yield defer.DeferredList([
            first.addRoom(RoomRecord(None, "Kitchen", 1.0)),
            second.addRoom(RoomRecord(None, "KITCHEN", 2.0))], consumeErrors=True)
        outcomes = sorted(ok for ok, _ in results)
        self.assertEqual(outcomes, [False, True])
        [failure] = [r for ok, r in results if not ok]
        failure.trap(RoomTaken)

    @defer.inlineCallbacks
    def test_messageToAMissingRoomFailsOnlyItself(self):
        """Another node removed the room and forgot it: the rest of the batch is stored."""
        store = self.openStore()
        room = yield store.addRoom(RoomRecord(None, "kitchen", 0.0))
        lost = store.addMessage(self.message(room.id + 1000))
        kept = store.addMessage(self.message(room.id))
        yield self.assertFailure(lost, LookupError)
        self.assertEqual((yield kept).seq, 1)

    @defer.inlineCallbacks
    def test_idleConnectionsKilled(self):
        """PostgreSQL restarted between writes: the next write and read just work."""
        store = self.openStore()
        room = yield store.addRoom(RoomRecord(None, "kitchen", 0.0))
        yield store.addMessage(self.message(room.id))
        yield store.page(room.id, 1, 10)
        self.killBackends()
        stored = yield store.addMessage(self.message(room.id))
        self.assertEqual(stored.seq, 2)
        page = yield store.page(room.id, 1, 10)
        self.assertEqual([m.seq for m in page], [1, 2])

    @defer.inlineCallbacks
    def test_unreachableFailsCleanlyAndRecovers(self):
        from chatsvc.store.postgres import DatabaseUnavailable
        store = self.openStore()
        room = yield store.addRoom(RoomRecord(None, "kitchen", 0.0))
        yield store.addMessage(self.message(room.id, "before"))
        self.refuseConnections()
        self.killBackends()
        failure = yield self.assertFailure(store.addMessage(self.message(room.id, "during")),
                                           DatabaseUnavailable)
        self.assertIn(f"The PostgreSQL database {store.where} cannot be reached", str(failure))
        self.assertIn("nothing was stored", str(failure))
        self.assertFalse(failure.unknown)
        yield self.assertFailure(store.page(room.id, 1, 10), DatabaseUnavailable)
        yield self.assertFailure(store.addAccount("alice", "h", 1.0), DatabaseUnavailable)
        self.refuseConnections(False)
        stored = yield store.addMessage(self.message(room.id, "after"))
        self.assertEqual(stored.seq, 2)  # the refused one took no seq
        page = yield store.page(room.id, 1, 10)
        self.assertEqual([m.text for m in page], ["before", "after"])

    @defer.inlineCallbacks
    def test_connectionKilledWhileWriting(self):
        """
        The connection breaks in the middle of a transaction (here while it
        waits for a room's lock) and PostgreSQL stays away: that write fails
        cleanly, and once PostgreSQL is back the next one is stored with the
        next seq, no gap.
        """
        from chatsvc.store.postgres import DatabaseUnavailable
        store = self.openStore()
        room = yield store.addRoom(RoomRecord(None, "kitchen", 0.0))
        yield store.addMessage(self.message(room.id, "before"))
        with psycopg.connect(self.url) as holder:  # another node, holding the room
            holder.execute("SELECT * FROM rooms WHERE id = %s FOR UPDATE", (room.id,))
            during = store.addMessage(self.message(room.id, "during"))
            for _ in range(500):
                yield deferLater(reactor, 0.01, lambda: None)
                waiting = self.admin("SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
                                     " AND wait_event_type = 'Lock'", (self.dbname,))
                if waiting[0][0]:
                    break
            else:
                self.fail("the write never waited for the room's lock")
            self.refuseConnections()
            self.admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                       " WHERE datname = %s AND wait_event_type = 'Lock'", (self.dbname,))
            failure = yield self.assertFailure(during, DatabaseUnavailable)
            self.assertFalse(failure.unknown)
            holder.rollback()
        self.refuseConnections(False)
        after = yield store.addMessage(self.message(room.id, "after"))
        self.assertEqual(after.seq, 2)
        page = yield store.page(room.id, 1, 10)
        self.assertEqual([m.text for m in page], ["before", "after"])

    @defer.inlineCallbacks
    def test_killedWhileWritingIsRetriedOnceIfPostgresIsBack(self):
        """Broken before its commit was sent, nothing of it was stored: tried again at once."""
        store = self.openStore()
        room = yield store.addRoom(RoomRecord(None, "kitchen", 0.0))
        real = store._commit
        calls = []

        def brokenBeforeCommit(connection):
            calls.append(connection)
            if len(calls) == 1:
                connection.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            real(connection)
        store._commit = brokenBeforeCommit
        stored = yield store.addMessage(self.message(room.id))
        self.assertEqual((stored.seq, len(calls)), (1, 2))
        self.assertEqual(self.admin("SELECT seq FROM messages", url=self.url), [(1,)])

    @defer.inlineCallbacks
    def test_commitDoneButUnconfirmed(self):
        """The commit happened, its answer was lost: found by uid, acknowledged once."""
        store = self.openStore()
        room = yield store.addRoom(RoomRecord(None, "kitchen", 0.0))
        real = store._commit
        calls = []

        def lostAfterCommit(connection):
            calls.append(connection)
            real(connection)
            if len(calls) == 1:
                connection.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        store._commit = lostAfterCommit
        stored = yield defer.gatherResults([store.addMessage(self.message(room.id))
                                            for _ in range(3)])
        self.assertEqual([m.seq for m in stored], [1, 2, 3])
        self.assertEqual(len(calls), 1)
        after = yield store.addMessage(self.message(room.id))
        self.assertEqual(after.seq, 4)
        self.assertEqual(self.admin("SELECT count(*) FROM messages", url=self.url), [(4,)])

    @defer.inlineCallbacks
    def test_unconfirmedWithoutMessagesSaysSo(self):
        """No uid to look for: the failure says the write may or may not have been stored."""
        from chatsvc.store.postgres import DatabaseUnavailable
        store = self.openStore()
        real = store._commit

        def lostAfterCommit(connection):
            store._commit = real
            real(connection)
            connection.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        store._commit = lostAfterCommit
        failure = yield self.assertFailure(store.saveSettings("server", {}),
                                           DatabaseUnavailable)
        self.assertTrue(failure.unknown)
        self.assertIn("may or may not have been stored", str(failure))
        yield store.saveSettings("server", {"bans": {}})

    def test_schemaCreatedOnceByNodesStartingTogether(self):
        """A second open() on an existing schema changes nothing and sees the same rooms."""
        self.openStore()
        second = self.makeStore()
        self.assertEqual(second.open(0), [])
        self.addCleanup(second.close)
        tables = self.admin("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                            " ORDER BY tablename", url=self.url)
        self.assertEqual(tables, [("accounts",), ("messages",), ("nodes",), ("presence",),
                                  ("rooms",), ("settings",)])

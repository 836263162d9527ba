"""
Two real servers, one chat: `twistd chatroom` twice on one PostgreSQL
database (of the test's own) and one Redis (a redis-server of the test's own
on a spare port), a native client on each. A room created on one is joined
on the other, and both servers deliver every message in the same order,
once; what Redis lost while it was restarted is filled from PostgreSQL.
"""

from urllib.parse import urlsplit, urlunsplit

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from tests.e2e import ServerProcessTests
from tests.test_bus import RedisServer, needRedisServer, spareTCPPort
from tests.test_store_contract import POSTGRES_URL, PostgresDatabase


class TwoNodesTests(PostgresDatabase, ServerProcessTests, TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        needRedisServer(self)
        self.makeDatabase()
        ServerProcessTests.setUp(self)
        self.redis = RedisServer(spareTCPPort())
        yield self.redis.start()
        self.addCleanup(self.redis.kill)
        # The test's own database, as a URL (--db tells PostgreSQL by its scheme).
        self.db = urlunsplit(urlsplit(POSTGRES_URL)._replace(path="/" + self.dbname))

    def node(self):
        return self.startServer("--db", self.db, "--bus", f"redis://127.0.0.1:{self.redis.port}",
                                "--flood-rate", "0")

    def said(self, client):
        return [line for line in client.lines if line.startswith("<")]

    def saidCount(self, client, count):
        """Wait until C{client} has been sent C{count} messages."""
        return client.waitFor(lambda line: len(self.said(client)) >= count)

    @defer.inlineCallbacks
    def test_oneChatOnTwoServers(self):
        (_, portA), (_, portB) = yield defer.gatherResults([self.node(), self.node()])
        alice = yield self.connect(portA, "alice")
        bob = yield self.connect(portB, "bob")
        alice.send("create kitchen")
        yield alice.waitFor("* You joined kitchen.")
        bob.send("join kitchen")  # made on the other server a moment ago
        yield bob.waitFor("* You joined kitchen.")
        for n in range(20):
            alice.send(f"a{n}")
            bob.send(f"b{n}")
        for client in (alice, bob):
            yield self.saidCount(client, 40)
        self.assertEqual(sorted(self.said(alice)), sorted(self.said(bob)))
        self.assertEqual(len(self.said(alice)), 40)
        self.assertEqual(self.said(alice), self.said(bob))  # one order, the seqs'

    @defer.inlineCallbacks
    def test_whatRedisLostIsFilledFromPostgres(self):
        (_, portA), (_, portB) = yield defer.gatherResults([self.node(), self.node()])
        alice = yield self.connect(portA, "alice")
        bob = yield self.connect(portB, "bob")
        alice.send("create kitchen")
        yield alice.waitFor("* You joined kitchen.")
        bob.send("join kitchen")
        yield bob.waitFor("* You joined kitchen.")
        yield self.redis.kill()
        for n in range(5):  # stored, and published to a Redis that is not there
            alice.send(f"while-down-{n}")
        yield alice.waitFor("<alice> while-down-4")
        yield bob.waitFor("<alice> while-down-4")  # the position check found them
        yield self.redis.start()
        alice.send("after")
        yield bob.waitFor("<alice> after")
        self.assertEqual(self.said(bob), self.said(alice))

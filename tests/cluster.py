"""
What the tests of several real servers share: a PostgreSQL database of the
test's own, a redis-server of its own on a spare port (never the shared
one), and `twistd chatroom` nodes on both.
"""

from urllib.parse import urlsplit, urlunsplit

from twisted.internet import defer

from tests.e2e import ServerProcessTests
from tests.test_bus import RedisServer, needRedisServer, spareTCPPort
from tests.test_store_contract import POSTGRES_URL, PostgresDatabase


class ClusterProcessTests(PostgresDatabase, ServerProcessTests):
    """A mixin for TestCases: L{node} starts a server of one chat."""

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

    def node(self, *more, db=None):
        """
        A server on C{db} (the test's database by default): (server, port).
        Silent for 3 s, a server is gone (it beats each second): the tests wait less.
        """
        return self.startServer("--db", db or self.db,
                                "--bus", f"redis://127.0.0.1:{self.redis.port}",
                                "--flood-rate", "0", "--cluster-ttl", "3", *more)

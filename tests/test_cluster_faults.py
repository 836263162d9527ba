"""
PostgreSQL unreachable from one server of a cluster: two real servers
(`twistd chatroom`), a redis-server of the test's own, one PostgreSQL
database of the test's own. Server a reaches PostgreSQL through a TCP proxy
the test runs in its own reactor, and cuts (every connection closed, nothing
listening) and restores; server b reaches it directly. The shared PostgreSQL
itself is never stopped.

While a's database is cut, a user of a who talks is told their message was
not stored, and it is not: nobody is shown it, the database does not hold
it; a stops admitting new users. Once the proxy is back, a recovers by
itself: it admits again, and what is said there is stored and reaches b.

Needs PostgreSQL (CHATSVC_TEST_POSTGRES) and redis-server: without them it
skips, except under CI=true, where it fails.
"""

from urllib.parse import urlsplit, urlunsplit

from twisted.internet import defer, endpoints, protocol, reactor
from twisted.trial.unittest import TestCase

from tests.cluster import ClusterProcessTests
from tests.e2e import LineClient, source
from tests.test_cluster_conservation import SAID, Conditions, participant
from tests.test_store_contract import POSTGRES_URL, psycopg

NOT_STORED = "! Your message could not be saved, so it was not sent. Please try again."
NOT_ADMITTING = ("! This server cannot reach its database just now, so it admits nobody new."
                 " Try again in a moment (or another server).")


class _ToPostgres(protocol.Protocol):
    """The proxy's connection to PostgreSQL, for one of the server's."""

    def __init__(self, proxy, fromNode):
        self.proxy, self.fromNode = proxy, fromNode

    def connectionMade(self):
        self.proxy._opened(self)
        if self.fromNode.gone:
            self.transport.loseConnection()
            return
        self.fromNode.peer = self
        self.fromNode.transport.resumeProducing()

    def dataReceived(self, data):
        if not self.proxy.holding:
            self.fromNode.transport.write(data)

    def connectionLost(self, reason):
        self.fromNode.transport.loseConnection()
        self.proxy._closed(self)


class _FromNode(protocol.Protocol):
    """A server's connection to the proxy: what it sends goes on to PostgreSQL."""

    peer = None
    gone = False
    marked = False  # it has sent what the proxy waits for (see cutAtCommitOf)

    def __init__(self, proxy):
        self.proxy = proxy
        self._tail = b""

    def connectionMade(self):
        self.proxy._opened(self)
        self.transport.pauseProducing()  # until PostgreSQL is connected
        endpoint = endpoints.TCP4ClientEndpoint(reactor, self.proxy.host, self.proxy.port)
        connecting = endpoints.connectProtocol(endpoint, _ToPostgres(self.proxy, self))
        self.proxy._connecting.add(connecting)

        def done(result):
            self.proxy._connecting.discard(connecting)
            self.proxy._check()
            return result
        connecting.addBoth(done).addErrback(lambda _: self.transport.loseConnection())

    def dataReceived(self, data):
        if self.proxy.holding:
            return
        self.peer.transport.write(data)
        marker = self.proxy.marker
        if marker is None:
            return
        seen = self._tail + data
        self._tail = seen[-(len(marker) + 16):]
        if not self.marked and marker in seen:
            self.marked = True
            seen = seen[seen.index(marker) + len(marker):]
        # What psycopg sends for commit(): a simple query, "COMMIT". Sent on
        # (a lost connection flushes it), but the answer never comes back.
        if self.marked and b"COMMIT\x00" in seen:
            self.proxy.marker = None
            self.proxy.cut()

    def connectionLost(self, reason):
        self.gone = True
        if self.peer is not None:
            self.peer.transport.loseConnection()
        self.proxy._closed(self)


class PostgresProxy(protocol.Factory):
    """
    A TCP proxy on 127.0.0.1 (a spare port, the same one each time it
    listens) to PostgreSQL at C{host}:C{port}, in the test's reactor.
    L{cut} closes every connection through it and stops listening (a server
    connecting is refused at once); L{hold} keeps every connection open and
    accepts new ones, but passes nothing on, either way (PostgreSQL hung, or
    a network that drops everything); L{restore} mends either.
    """

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.listening = None
        self.listenPort = 0
        self.marker = None
        self.holding = False
        self._open = set()
        self._connecting = set()
        self._idle = []

    def buildProtocol(self, addr):
        return _FromNode(self)

    def start(self):
        self.listening = reactor.listenTCP(self.listenPort, self, interface="127.0.0.1")
        self.listenPort = self.listening.getHost().port

    def restore(self) -> defer.Deferred:
        """Pass everything on again (after a hold, on new connections: the old ones lost bytes)."""
        if self.holding:
            self.holding = False
            return self.cut().addCallback(lambda _: self.start())
        if self.listening is None:
            self.start()
        return defer.succeed(None)

    def hold(self):
        self.holding = True

    def cut(self) -> defer.Deferred:
        """Stop listening and close every connection: fires once they are all closed."""
        if self.listening is not None:
            stopped, self.listening = self.listening.stopListening(), None
        else:
            stopped = defer.succeed(None)
        for connecting in list(self._connecting):
            connecting.cancel()
        for connection in list(self._open):
            if isinstance(connection, _FromNode):
                connection.transport.abortConnection()  # the server's side: at once
            # PostgreSQL's side is closed once what it was sent is flushed
        return defer.gatherResults([stopped, self._whenIdle()])

    def cutAtCommitOf(self, marker: bytes):
        """
        Cut as soon as a transaction that carried C{marker} sends its
        COMMIT: PostgreSQL gets the COMMIT, the server never hears it did.
        """
        self.marker = marker

    def _opened(self, connection):
        self._open.add(connection)

    def _closed(self, connection):
        self._open.discard(connection)
        self._check()

    def _whenIdle(self):
        d = defer.Deferred()
        self._idle.append(d)
        self._check()
        return d

    def _check(self):
        if not self._open and not self._connecting:
            waiting, self._idle = self._idle, []
            for d in waiting:
                d.callback(None)


class DatabaseUnreachableTests(ClusterProcessTests, TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        yield ClusterProcessTests.setUp(self)
        url = urlsplit(POSTGRES_URL)
        self.proxy = PostgresProxy(url.hostname or "127.0.0.1", url.port or 5432)
        self.proxy.start()
        self.addCleanup(self.proxy.cut)  # (after tearDown has ended the servers)
        userinfo = url.netloc.rpartition("@")[0]
        self.proxied = urlunsplit(url._replace(
            netloc=f"{userinfo + '@' if userinfo else ''}127.0.0.1:{self.proxy.listenPort}",
            path="/" + self.dbname))
        self.conditions = Conditions()

    @defer.inlineCallbacks
    def twoNodes(self):
        """Server a (through the proxy) and server b: (server, port) each."""
        a, b = yield defer.gatherResults([self.node(db=self.proxied), self.node()])
        return a, b

    @defer.inlineCallbacks
    def arrive(self, port, name=None):
        """A client connected to the server at C{port} (named C{name}, if given)."""
        endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port,
                                                bindAddress=(source(), 0))
        client = yield endpoints.connectProtocol(endpoint, LineClient())
        self.clients.append(client)
        yield client.waitFor(lambda line: line.startswith(("* Welcome to chatsvc!", "! ")))
        if name is not None:
            client.send(name)
            yield client.waitFor("*   Anything else you type")
        return client

    @defer.inlineCallbacks
    def inKitchen(self, portA, portB):
        """alice on a, who made kitchen, and bob on b, who joined it."""
        alice = yield self.arrive(portA, "alice")
        bob = yield self.arrive(portB, "bob")
        alice.send("create kitchen")
        yield alice.waitFor("* You joined kitchen.")
        bob.send("join kitchen")
        yield bob.waitFor("* You joined kitchen.")
        return alice, bob

    def storedTexts(self):
        with psycopg.connect(self.url) as connection:
            return [text for (text,) in connection.execute(
                "SELECT text FROM messages ORDER BY room_id, seq")]

    @staticmethod
    def said(client):
        return [line for line in client.lines if SAID.fullmatch(line)]

    @defer.inlineCallbacks
    def test_refusedWhileCutThenRecovers(self):
        (serverA, portA), (_, portB) = yield self.twoNodes()
        alice, bob = yield self.inKitchen(portA, portB)
        alice.send("before")
        yield bob.waitFor("<alice> before")
        yield alice.waitFor("<alice> before")

        notBeating = serverA.logged("No heartbeat: admitting nobody")
        yield self.proxy.cut()
        # Talking: a clear refusal, and no echo (which would say it is stored).
        alice.send("while-cut")
        seen = yield alice.waitFor(lambda line: line.startswith(("! ", "<")))
        self.assertEqual(seen[-1], NOT_STORED)
        self.assertNotIn("while-cut", self.storedTexts())
        # Arriving: once its heartbeat has failed, a admits nobody new, and says so.
        yield notBeating
        carol = yield self.arrive(portA)
        yield carol.closed
        self.assertEqual(carol.lines, [NOT_ADMITTING])

        admitting = serverA.logged("The database answers again: admitting users")
        yield self.proxy.restore()
        yield admitting  # by itself: nothing was restarted
        dave = yield self.arrive(portA, "dave")
        self.assertTrue(any(line.startswith("* Welcome, dave.") for line in dave.lines))
        alice.send("after")
        yield alice.waitFor("<alice> after")
        yield bob.waitFor("<alice> after")
        # Nobody was shown what was refused: had it been stored, it would have
        # come before "after", in the order of the seqs.
        self.assertEqual(self.said(alice), ["<alice> before", "<alice> after"])
        self.assertEqual(self.said(bob), ["<alice> before", "<alice> after"])
        self.assertEqual(self.storedTexts(), ["before", "after"])

    @defer.inlineCallbacks
    def test_aCommitNeverConfirmed(self):
        """
        The connection breaks once PostgreSQL has been sent the COMMIT of
        alice's message, before a hears that it is done, and a cannot ask
        (its database is cut): alice is not shown it as sent, yet it is
        stored, once, and reaches everyone in order (b finds it at once, a
        once its database is back).
        """
        (serverA, portA), (_, portB) = yield self.twoNodes()
        alice, bob = yield self.inKitchen(portA, portB)
        alice.send("before")
        yield bob.waitFor("<alice> before")
        yield alice.waitFor("<alice> before")

        notBeating = serverA.logged("No heartbeat: admitting nobody")
        self.proxy.cutAtCommitOf(b"unconfirmed")
        alice.send("unconfirmed")
        seen = yield alice.waitFor(lambda line: line.startswith(("! ", "<")))
        # Not an echo, and not "it was not sent": it may have been.
        self.assertTrue(seen[-1].startswith("! Your message may or may not have been saved"),
                        seen[-1])
        yield bob.waitFor("<alice> unconfirmed")  # stored: b's check of positions found it
        self.assertEqual(self.storedTexts(), ["before", "unconfirmed"])
        yield notBeating
        admitting = serverA.logged("The database answers again: admitting users")
        yield self.proxy.restore()
        yield admitting
        yield alice.waitFor("<alice> unconfirmed")  # a's check of positions found it
        alice.send("after")
        yield alice.waitFor("<alice> after")
        yield bob.waitFor("<alice> after")
        for client in (alice, bob):
            self.assertEqual(self.said(client), ["<alice> before", "<alice> unconfirmed",
                                                 "<alice> after"])
        self.assertEqual(self.storedTexts(), ["before", "unconfirmed", "after"])

    @defer.inlineCallbacks
    def test_aNameChosenWhileCutIsStillOneServers(self):
        """
        A name chosen on a while its database is cut (by a connection a
        admitted before) is refused, or held once the database is back: b
        must not give it to a second user.
        """
        (serverA, portA), (_, portB) = yield self.twoNodes()
        carol = yield self.arrive(portA)  # at the prompt
        notBeating = serverA.logged("No heartbeat: admitting nobody")
        yield self.proxy.cut()
        yield notBeating
        carol.send("carol")
        seen = yield carol.waitFor(lambda line: line.startswith(("! ", "* Welcome,")))
        self.assertEqual(seen[-1], NOT_ADMITTING)  # refused, and still at the prompt
        admitting = serverA.logged("The database answers again: admitting users")
        yield self.proxy.restore()
        yield admitting
        carol.send("carol")
        yield carol.waitFor("* Welcome, carol.")
        again = yield self.arrive(portB)
        again.send("carol")
        other = yield again.waitFor(lambda line: line.startswith(("! ", "* Welcome,")))
        self.assertEqual(other[-1], "! The name carol is taken. Choose another one.")

    @defer.inlineCallbacks
    def cutTillFreed(self, portA, serverB):
        """alice on a, then a cut off until b has freed her name: alice."""
        alice = yield self.arrive(portA, "alice")
        freed = serverB.logged("Freed 1 names held by servers gone silent")
        yield self.proxy.cut()
        yield freed
        return alice

    @defer.inlineCallbacks
    def test_namesFreedWhileCutAreHeldAgain(self):
        """
        Cut longer than the heartbeat's lifetime, a's names are freed by b:
        once a's database is back, a holds its users' names again, and b
        gives them to nobody else.
        """
        (serverA, portA), (serverB, portB) = yield self.twoNodes()
        alice = yield self.cutTillFreed(portA, serverB)
        heldAgain = serverA.logged("Held 1 names in the database again, 1 kept")
        yield self.proxy.restore()
        yield heldAgain
        other = yield self.arrive(portB)
        other.send("alice")
        seen = yield other.waitFor(lambda line: line.startswith(("! ", "* Welcome,")))
        self.assertEqual(seen[-1], "! The name alice is taken. Choose another one.")
        self.assertEqual(alice.lines[-1], "*   Anything else you type is said to your room."
                         " Commands may start with /.")  # nothing happened to alice

    @defer.inlineCallbacks
    def test_aNameTakenElsewhereWhileCutGivesWay(self):
        """
        ...but if b gave alice's name to someone while a was cut off, the
        name is theirs, and a's alice becomes a guest (as after an IRC netsplit).
        """
        (serverA, portA), (serverB, portB) = yield self.twoNodes()
        alice = yield self.cutTillFreed(portA, serverB)
        other = yield self.arrive(portB, "alice")
        self.assertTrue(any(line.startswith("* Welcome, alice.") for line in other.lines))
        heldAgain = serverA.logged("Held 1 names in the database again, 0 kept")
        yield self.proxy.restore()
        yield heldAgain
        renamed = yield alice.waitFor(lambda line: line.startswith("* alice is now known as"))
        self.assertRegex(renamed[-1], r"^\* alice is now known as Guest\d+$")

    @defer.inlineCallbacks
    def test_aDatabaseThatStopsAnswering(self):
        """
        a's connections to PostgreSQL stay open but nothing comes back (a
        hung database, a network dropping everything): alice is told her
        message was not stored, and a stops admitting, within a bound.
        """
        (serverA, portA), (_, portB) = yield self.twoNodes()
        alice, bob = yield self.inKitchen(portA, portB)
        notBeating = serverA.logged("No heartbeat: admitting nobody")
        self.proxy.hold()
        alice.send("held")
        seen = yield alice.waitFor(lambda line: line.startswith(("! ", "<"))).addTimeout(
            25, reactor)
        self.assertTrue(seen[-1].startswith("! Your message"), seen[-1])
        yield notBeating.addTimeout(25, reactor)
        carol = yield self.arrive(portA)
        yield carol.closed
        self.assertEqual(carol.lines, [NOT_ADMITTING])
        yield self.proxy.restore()
        alice.send("after")
        yield bob.waitFor("<alice> after")

    @defer.inlineCallbacks
    def test_underLoadNothingSentThatWasNotStored(self):
        """
        Senders on a keep messages in flight while its database is cut and
        restored: each message echoed is stored (once), each one refused is
        not, and the users of both servers are shown exactly what was stored.
        """
        (_, portA), (_, portB) = yield self.twoNodes()
        clients = []
        for port, name, create in ((portA, "alice", True), (portB, "bob", False)):
            client = yield self.participant(port, name, create)
            clients.append(client)
        senders = []
        for n in range(2):
            sender = yield self.participant(portA, f"sender{n}", window=8)
            senders.append(sender)
        everyone = clients + senders
        acked = lambda: sum(len(s.acked) for s in senders)  # noqa: E731
        refused = lambda: sum(len(s.errors) for s in senders)  # noqa: E731

        for sender in senders:
            sender.start()
        yield self.conditions.until(lambda: acked() >= 200,
                                    lambda: f"{acked()} of 200 acknowledged")
        yield self.proxy.cut()  # with messages in flight
        refusedThen = refused() + 20
        yield self.conditions.until(lambda: refused() >= refusedThen,
                                    lambda: f"{refused()} of {refusedThen} refused")
        yield self.proxy.restore()
        ackedThen = acked() + 200
        yield self.conditions.until(lambda: acked() >= ackedThen,
                                    lambda: f"{acked()} of {ackedThen} acknowledged")
        yield defer.gatherResults([s.stop() for s in senders])

        with psycopg.connect(self.url) as connection:
            stored = [tuple(row) for row in connection.execute(
                "SELECT seq, sender, text FROM messages ORDER BY seq")]
        self.assertEqual([seq for seq, _, _ in stored], list(range(1, len(stored) + 1)))
        for sender in senders:
            mine = [int(text[1:]) for _, name, text in stored if name == sender.name]
            self.assertEqual(sorted(set(sender.acked) - set(mine)), [],
                             f"{sender.name}: echoed (claimed as sent) but not stored")
            self.assertEqual(len(mine), len(set(mine)), f"{sender.name}: stored twice")
            self.assertEqual(mine, sorted(mine), f"{sender.name}: out of order")
            # what was not stored was refused, each with a line of its own
            self.assertGreaterEqual(len(sender.errors), sender.sent - len(mine))
            self.assertEqual({e for e in sender.errors if not e.startswith("! Your message")},
                             set(), f"{sender.name}: refused, but not as not stored")
        everything = [(name, text) for _, name, text in stored]
        for client in everyone:
            yield self.conditions.until(
                lambda: len(client.said) >= len(everything),
                lambda: f"{client.name} was sent {len(client.said)} of {len(everything)}")
            self.assertEqual(client.said, everything, f"what {client.name} was sent")

    @defer.inlineCallbacks
    def participant(self, port, name, create=False, window=0):
        client = yield participant(self.conditions, port, name, "kitchen", window, create)
        self.clients.append(client)
        return client

"""End to end: the service `twistd chatroom` builds, on a loopback port, over TCP."""

import os
import socket

from twisted.internet import defer, endpoints, protocol, reactor
from twisted.trial.unittest import TestCase

from tests.e2e import LOOPBACK, InProcessServer, connect


class _Raw(protocol.Protocol):
    def __init__(self):
        self.data = b""
        self.closed = defer.Deferred()

    def dataReceived(self, data):
        self.data += data

    def connectionLost(self, reason):
        self.closed.callback(None)


class ServerTests(TestCase):
    timeout = 30

    def setUp(self):
        self.db = os.path.abspath(self.mktemp() + ".sqlite3")
        self.port = self.startServer()

    def startServer(self, *extra):
        self.server = InProcessServer("--listen", LOOPBACK, "--db", self.db,
                                      "--flood-rate", "0", *extra)
        self.addCleanup(self.stopServer)
        return self.server.port

    def stopServer(self):
        return self.server.stop(getattr(self, "clients", []))

    @defer.inlineCallbacks
    def connect(self, name=None):
        client = yield connect(self.port, name)
        self.clients = getattr(self, "clients", []) + [client]
        return client

    @defer.inlineCallbacks
    def test_conversation(self):
        alice = yield self.connect("alice")
        bob = yield self.connect("bob")
        alice.send("create kitchen")
        yield alice.waitFor("* You joined kitchen.")
        bob.send("list")
        lines = yield bob.waitFor("*   kitchen")
        self.assertEqual(lines, ["* Rooms (1), busiest first:", "*   kitchen (1 user)"])
        bob.send("join kitchen")
        yield bob.waitFor("* You joined kitchen. Here: alice.")
        yield alice.waitFor("* bob joined kitchen")
        bob.send("hello alice")
        self.assertEqual((yield bob.waitFor("<bob>")), ["<bob> hello alice"])
        self.assertEqual((yield alice.waitFor("<bob>")), ["<bob> hello alice"])
        alice.send("msg bob psst")
        self.assertEqual((yield bob.waitFor("<-")), ["<- alice: psst"])
        bob.send("quit")
        yield bob.waitFor("* Goodbye, bob.")
        yield bob.closed
        yield alice.waitFor("* bob left kitchen (quit)")

    @defer.inlineCallbacks
    def test_replayAndHistoryFromDisk(self):
        alice = yield self.connect("alice")
        alice.send("create kitchen")
        for n in range(1, 61):
            alice.send(f"note {n}")
        yield alice.waitFor("<alice> note 60")
        bob = yield self.connect("bob")
        bob.send("join kitchen")
        lines = yield bob.waitFor(lambda line: line.endswith("<alice> note 60"))
        self.assertEqual(lines[1], "* 10 older messages: type history to see them.")
        self.assertEqual(len(lines), 52)
        self.assertTrue(lines[2].endswith("] <alice> note 11"))
        bob.send("history 500")
        lines = yield bob.waitFor("* That is the beginning of kitchen's history.")
        self.assertEqual([line.split("] ", 1)[1] for line in lines[1:-1]],
                         [f"<alice> note {n}" for n in range(1, 11)])

    @defer.inlineCallbacks
    def test_roomsAndHistorySurviveRestart(self):
        alice = yield self.connect("alice")
        alice.send("create kitchen")
        alice.send("before the restart")
        yield alice.waitFor("<alice> before the restart")
        yield self.stopServer()
        self.clients = []
        self.port = self.startServer()
        bob = yield self.connect("bob")
        bob.send("list")
        yield bob.waitFor("*   kitchen (0 users)")
        bob.send("join kitchen")
        lines = yield bob.waitFor(lambda line: line.endswith("<alice> before the restart"))
        self.assertEqual(lines[0], "* You joined kitchen. Here: no one else.")

    @defer.inlineCallbacks
    def test_slowReaderGetsEverythingInOrder(self):
        """
        Writes go straight to the socket while it keeps up and queue when it
        does not; a reader that stalls and then catches up misses nothing and
        sees it in order.
        """
        yield self.stopServer()
        self.clients = []
        self.port = self.startServer("--max-output-buffer", str(8 * 1024 * 1024))
        alice = yield self.connect("alice")
        bob = yield self.connect("bob")
        alice.send("create kitchen")
        yield alice.waitFor("* You joined kitchen.")
        bob.send("join kitchen")
        yield bob.waitFor("* You joined kitchen.")
        bob.transport.pauseProducing()  # bob stops reading: the socket fills up
        filler = "f" * 500
        for n in range(6000):
            alice.send(f"{n:04} {filler}")
        yield alice.waitFor("<alice> 5999 ")
        bob.transport.resumeProducing()
        lines = yield bob.waitFor("<alice> 5999 ")
        said = [line[8:12] for line in lines if line.startswith("<alice> ")]
        self.assertEqual(said, [f"{n:04}" for n in range(6000)])

    @defer.inlineCallbacks
    def test_kernelSendBufferBounded(self):
        """What a non-reader can hold in the kernel is fixed, not autotuned to megabytes."""
        yield self.connect("alice")
        (server,) = self.server.factory.open
        size = server.transport.getHandle().getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        self.assertLessEqual(size, 2 * 64 * 1024)

    @defer.inlineCallbacks
    def test_serverFull(self):
        yield self.stopServer()
        self.clients = []
        self.port = self.startServer("--max-clients", "1")
        alice = yield self.connect("alice")
        endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", self.port)
        refused = yield endpoints.connectProtocol(endpoint, _Raw())
        yield refused.closed
        self.assertEqual(refused.data,
                         b"! The server is full: it holds 1 user. Try again later.\n")
        alice.send("who")
        yield alice.waitFor("* Online (1): alice.")

    @defer.inlineCallbacks
    def test_silentConnectionsMakeWay(self):
        """
        Connections that never choose a name do not keep users out: with the
        places for them taken, the longest waiting is told why and closed.
        """
        yield self.stopServer()
        self.clients = []
        self.port = self.startServer("--max-clients", "1")
        endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", self.port)
        silent = yield endpoints.connectProtocol(endpoint, _Raw())
        carol = yield self.connect()
        yield silent.closed
        self.assertEqual(silent.data, b"* Welcome to chatsvc! Enter your screen name:\n"
                         b"! You did not choose a screen name, and a newer connection"
                         b" needed your place. Goodbye.\n")
        carol.send("carol")
        yield carol.waitFor("* Welcome, carol.")
        carol.send("who")
        yield carol.waitFor("* Online (1): carol.")

    @defer.inlineCallbacks
    def test_originalClientQuit(self):
        endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", self.port)
        old = yield endpoints.connectProtocol(endpoint, _Raw())
        old.transport.write(b"name: oldtimer\n> create kitchen\n> hi\n> quit\n")
        yield old.closed
        self.assertTrue(old.data.endswith(b"<oldtimer> hi\n#quit"), old.data[-200:])

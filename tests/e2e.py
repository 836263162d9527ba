"""
Helpers for end-to-end tests over real loopback TCP: a line client that waits
for what the server sends, and the real server as a child process.
"""

import os
import re
import signal
import sys

import chatsvc
from chatsvc.doors.line.protocol import ChatProtocol
from chatsvc.tap import Options, makeService
from twisted.internet import defer, endpoints, protocol, reactor
from twisted.protocols.basic import LineReceiver

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(chatsvc.__file__)))
LOOPBACK = "tcp:0:interface=127.0.0.1"


class LineClient(LineReceiver):
    """A client that records every line and can wait for one."""

    delimiter = b"\n"
    MAX_LENGTH = 1 << 20

    def __init__(self):
        self.lines = []
        self._read = 0  # lines before this index were returned by a wait
        self._waiting = None  # (predicate, Deferred)
        self.closed = defer.Deferred()

    def lineReceived(self, line):
        self.lines.append(line.decode("utf-8"))
        self._check()

    def connectionLost(self, reason):
        if self._waiting is not None:
            _, d = self._waiting
            self._waiting = None
            d.errback(AssertionError(f"connection closed; unread lines: {self.lines[self._read:]}"))
        self.closed.callback(None)

    def send(self, line):
        self.transport.write(line.encode("utf-8") + b"\n")

    def waitFor(self, match):
        """
        Fire with the lines up to and including the first unread one that
        C{match} (a string it starts with, or a predicate) accepts.
        """
        predicate = match if callable(match) else (lambda line: line.startswith(match))
        d = defer.Deferred()
        self._waiting = (predicate, d)
        self._check()
        return d

    def _check(self):
        if self._waiting is None:
            return
        predicate, d = self._waiting
        for index in range(self._read, len(self.lines)):
            if predicate(self.lines[index]):
                seen, self._read = self.lines[self._read:index + 1], index + 1
                self._waiting = None
                d.callback(seen)
                return

    def bye(self):
        """Close from this side and wait until it is closed."""
        self.transport.loseConnection()
        return self.closed


_sources = iter(f"127.1.{n // 250}.{n % 250 + 1}" for n in range(250 * 250))


def source():
    """A loopback address no other test client has used: a person of its own."""
    return next(_sources)


@defer.inlineCallbacks
def connect(port, name=None, endpoint=None, host=None):
    """
    A L{LineClient} connected to 127.0.0.1:port (or C{endpoint}) from
    C{host} (by default an address of its own: the server limits each
    address), named if C{name} is given.
    """
    if endpoint is None:
        endpoint = endpoints.TCP4ClientEndpoint(
            reactor, "127.0.0.1", port, bindAddress=(host or source(), 0))
    client = yield endpoints.connectProtocol(endpoint, LineClient())
    yield client.waitFor("* Welcome to chatsvc! Enter your screen name:")
    if name is not None:
        client.send(name)
        yield client.waitFor("*   Anything else you type")
    return client


class _Tracked(ChatProtocol):
    """The server's protocol, telling the test when its last connection is gone."""

    def connectionMade(self):
        self.factory.open.add(self)
        super().connectionMade()

    def connectionLost(self, reason):
        super().connectionLost(reason)
        self.factory.open.discard(self)
        if not self.factory.open and self.factory.allClosed is not None:
            waiting, self.factory.allClosed = self.factory.allClosed, None
            waiting.callback(None)


class InProcessServer:
    """The service `twistd chatroom` builds, running in the test's reactor."""

    def __init__(self, *argv):
        options = Options()
        options.parseOptions(list(argv))
        self.service = makeService(options)
        self.lobby, _, self.addresses, *self.listeners = self.service
        self.factory = self.listeners[0].factory
        self.factory.protocol = _Tracked
        self.factory.open, self.factory.allClosed = set(), None
        self.service.startService()
        self.port = self.listeners[0].endpoint.port.getHost().port

    def stop(self, clients=()):
        """Close C{clients}, wait for the server's side of every connection, stop."""
        if not self.service.running:
            return defer.succeed(None)
        for client in clients:
            client.transport.loseConnection()
        waiting = defer.succeed(None)
        if self.factory.open:
            waiting = self.factory.allClosed = defer.Deferred()
        return waiting.addCallback(lambda _: self.service.stopService())


class ServerProcess(protocol.ProcessProtocol):
    """A real `twistd -n chatroom` child process."""

    def __init__(self):
        self.output = []
        self.port = defer.Deferred()  # fires with the TCP port it listens on
        self.ports = []  # every TCP port it listens on, in the order of its listeners
        self._listening = []  # (count, Deferred): fire once that many ports are known
        self.ended = defer.Deferred()
        self._partial = ""
        self._logWaiters = []  # (text, Deferred): see logged()

    def listening(self, count):
        """
        Fires with the first C{count} TCP ports, in the order makeService
        listens: the native doors (--listen), then IRC (--irc), then the web
        door (--web).
        """
        d = defer.Deferred()
        self._listening.append((count, d))
        self._tellPorts()
        return d

    def _tellPorts(self):
        for count, d in list(self._listening):
            if len(self.ports) >= count:
                self._listening.remove((count, d))
                d.callback(self.ports[:count])

    @classmethod
    def start(cls, directory, *options, listen=LOOPBACK):
        """
        Run the server in C{directory} (its database there), its native door
        on C{listen}: a port of its own by default, or a given one to start
        again where a server that was killed listened.
        """
        server = cls()
        argv = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
                "-n", "--pidfile=", "chatroom", "--listen", listen, *options]
        env = dict(os.environ, PYTHONPATH=PROJECT_ROOT)
        reactor.spawnProcess(server, sys.executable, argv, env=env, path=directory)
        return server

    def outReceived(self, data):
        text = self._partial + data.decode("utf-8", "replace")
        *complete, self._partial = text.split("\n")
        for line in complete:
            self.output.append(line)
            for waiter in [w for w in self._logWaiters if w[0] in line]:
                self._logWaiters.remove(waiter)
                waiter[1].callback(line)
            found = re.search(r"Hosting at [\d.]+:(\d+) ", line)
            if found:
                self.ports.append(int(found.group(1)))
                self._tellPorts()
                if not self.port.called:
                    self.port.callback(int(found.group(1)))

    errReceived = outReceived

    def processEnded(self, reason):
        if not self.port.called:
            self.port.errback(AssertionError("server ended before listening:\n"
                                             + "\n".join(self.output)))
        for _, d in self._listening:
            d.errback(AssertionError("server ended before listening:\n"
                                     + "\n".join(self.output)))
        self._listening = []
        self.ended.callback(reason.value.exitCode if hasattr(reason.value, "exitCode") else None)

    def logged(self, text) -> defer.Deferred:
        """Fire with the first line of the server's log, from now on, that contains C{text}."""
        d = defer.Deferred()
        self._logWaiters.append((text, d))
        return d

    def kill(self, sig=signal.SIGKILL):
        self.transport.signalProcess(sig)
        return self.ended


class ServerProcessTests:
    """
    A mixin for TestCases that run the real server process: a folder of the
    test's own, the servers and clients it started, all ended in tear-down.
    """

    timeout = 60

    def setUp(self):
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.servers = []
        self.clients = []

    def tearDown(self):
        for client in self.clients:
            if client.transport.connected:
                client.transport.loseConnection()
        running = [s.kill() for s in self.servers if not s.ended.called]
        return defer.gatherResults(running + [c.closed for c in self.clients])

    @defer.inlineCallbacks
    def startServer(self, *options, listen=LOOPBACK):
        """A server in the test's folder: it and the port it listens on."""
        server = ServerProcess.start(self.directory, *options, listen=listen)
        self.servers.append(server)
        port = yield server.port
        return server, port

    @defer.inlineCallbacks
    def connect(self, port, name=None, host=None):
        client = yield connect(port, name, host=host)
        self.clients.append(client)
        return client

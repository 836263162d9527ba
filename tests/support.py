"""Helpers shared by the tests: a Lobby on a fake clock, and sessions over StringTransport."""

import functools
import io
import sys

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from chatsvc.lobby import Lobby
from chatsvc.doors.line.protocol import ChatFactory
from chatsvc.settings import Settings
from tests.memorystore import MemoryStore

NOW = 1795000000  # 2026-11-18 11:06 UTC
NOW_STAMP = "[2026-11-18 11:06]"


def makeLobby(store=None, **settings):
    """A started Lobby on a fake clock; flood control is off unless asked for."""
    settings.setdefault("flood_rate", 0)
    clock = Clock()
    clock.advance(NOW)
    lobby = Lobby(store if store is not None else MemoryStore(), Settings(**settings), clock,
                  wallclock=clock.seconds)
    lobby.startService()
    return lobby


class SocketLikeTransport(StringTransport):
    """
    A StringTransport that, like a real socket's, pauses its producer once
    more than C{bufferSize} bytes wait to be sent, and resumes it when the
    client reads them (L{drain}).
    """

    bufferSize = 65536
    _full = False

    def write(self, data):
        super().write(data)
        if (self.producer is not None and not self._full
                and len(self.io.getvalue()) > self.bufferSize):
            self._full = True
            self.producer.pauseProducing()

    def drain(self) -> bytes:
        data = self.value()
        self.clear()
        if self._full and self.producer is not None:
            self._full = False
            self.producer.resumeProducing()
        return data


class Session:
    """
    One client connected over a L{SocketLikeTransport}: from an address of its
    own (a person of its own, to the per-address limits), unless C{host} is given.
    """

    _port = 40000

    def __init__(self, factory, name=None, host=None):
        Session._port += 1
        if host is None:
            n = Session._port
            host = f"127.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
        self.transport = SocketLikeTransport(
            peerAddress=IPv4Address("TCP", host, Session._port))
        self.protocol = factory.buildProtocol(self.transport.getPeer())
        self.protocol.makeConnection(self.transport)
        if name is not None:
            self.send(name)
            self.read()

    def send(self, line):
        data = line if isinstance(line, bytes) else line.encode("utf-8") + b"\n"
        self.protocol.dataReceived(data)
        self.protocol.factory.clock.advance(0)  # the end of this reactor turn

    def read(self):
        """The lines sent to this client since the last read (after a reactor turn)."""
        self.protocol.factory.clock.advance(0)
        return self.transport.drain().decode("utf-8").splitlines()

    def close(self):
        self.transport.loseConnection()
        self.protocol.connectionLost(None)


def makeServer(store=None, **settings):
    """A factory on a started Lobby, and a function making named sessions."""
    lobby = makeLobby(store, **settings)
    factory = ChatFactory(lobby)
    return lobby, lambda name=None, host=None: Session(factory, name, host)


def coroutine(f):
    """A test method written as a coroutine, run by trial (which wants a Deferred)."""
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        return Deferred.fromCoroutine(f(*args, **kwargs))
    return wrapper


def benchRefusal(case, *argv):
    """
    Run chatsvc-bench with arguments it must refuse: it exits 2 with one line
    on stderr, naming itself; that line.
    """
    from chatsvc.bench import main

    err = io.StringIO()
    case.patch(sys, "stderr", err)
    with case.assertRaises(SystemExit) as caught:
        main(list(argv))
    case.assertEqual(caught.exception.code, 2)
    lines = err.getvalue().splitlines()
    case.assertEqual(len(lines), 1, lines)
    case.assertTrue(lines[0].startswith("chatsvc-bench"), lines[0])
    return lines[0]

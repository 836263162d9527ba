"""Helpers shared by the tests: a Lobby on a fake clock, and sessions over StringTransport."""

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from chatsvc.lobby import Lobby
from chatsvc.protocol import ChatFactory
from chatsvc.settings import Settings
from tests.memorystore import MemoryStore

NOW = 1795000000  # 2026-11-18 11:06 UTC
NOW_STAMP = "[2026-11-18 11:06]"


def makeLobby(store=None, **settings):
    clock = Clock()
    clock.advance(NOW)
    lobby = Lobby(store if store is not None else MemoryStore(), Settings(**settings), clock)
    lobby.startService()
    return lobby


class Session:
    """One client connected over a StringTransport."""

    _port = 40000

    def __init__(self, factory, name=None):
        Session._port += 1
        self.transport = StringTransport(
            peerAddress=IPv4Address("TCP", "127.0.0.1", Session._port))
        self.protocol = factory.buildProtocol(self.transport.getPeer())
        self.protocol.makeConnection(self.transport)
        if name is not None:
            self.send(name)
            self.read()

    def send(self, line):
        data = line if isinstance(line, bytes) else line.encode("utf-8") + b"\n"
        self.protocol.dataReceived(data)

    def read(self):
        """The lines sent to this client since the last read."""
        data = self.transport.value()
        self.transport.clear()
        return data.decode("utf-8").splitlines()

    def close(self):
        self.transport.loseConnection()
        self.protocol.connectionLost(None)


def makeServer(store=None, **settings):
    """A factory on a started Lobby, and a function making named sessions."""
    lobby = makeLobby(store, **settings)
    factory = ChatFactory(lobby)
    return lobby, lambda name=None: Session(factory, name)

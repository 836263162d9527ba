"""
Connections of ``chatsvc-bench abuse`` from chosen loopback addresses, and
what the server told each: let in, or refused and why.

Linux routes all of 127.0.0.0/8 to loopback, so a client may bind any of
those addresses as its source and connect to a server on 127.0.0.1; the
server then counts it against that address's limits. Each normal user comes
from an address of its own (L{userAddresses}), every attacker from one
shared address, but the listers, each from its own (L{listerAddresses}).
"""

import ipaddress
import socket

from twisted.internet import tcp
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectError
from twisted.internet.protocol import ClientFactory

from chatsvc.bench.client import BenchClient
from chatsvc.bench.server import BenchError

ATTACKERS_ADDRESS = "127.0.0.1"
FIRST_USER_ADDRESS = "127.1.0.1"  # normal users count up from here
FIRST_LISTER_ADDRESS = "127.0.5.1"  # and the listers from here
# Linux: bind the address but let connect() choose the port, with the whole
# 4-tuple in view, so that a client reconnecting thousands of times from one
# address reuses ports in TIME_WAIT instead of running out of them.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


def userAddresses(count, avoid=ATTACKERS_ADDRESS):
    """C{count} loopback addresses for normal users, none of them C{avoid}."""
    return _addressesFrom(FIRST_USER_ADDRESS, count, avoid)


def listerAddresses(count, avoid=ATTACKERS_ADDRESS):
    """
    C{count} loopback addresses for the listers, one each: the server lets
    one address hold only a few connections (--max-per-address, 3).
    """
    return _addressesFrom(FIRST_LISTER_ADDRESS, count, avoid)


def _addressesFrom(first, count, avoid):
    addresses, ip = [], ipaddress.ip_address(first)
    while len(addresses) < count:
        last = int(ip) & 0xFF
        if last not in (0, 255) and str(ip) != avoid:
            addresses.append(str(ip))
        ip += 1
    return addresses


def loopbackAddress(text):
    """An address in 127.0.0.0/8 (for argparse); ValueError otherwise."""
    ip = ipaddress.ip_address(text)
    if ip.version != 4 or not ip.is_loopback:
        raise ValueError(text)
    return str(ip)


class OptionsClient(tcp.Client):
    """A TCP client whose socket gets options before it binds and connects."""

    def createInternetSocket(self):
        s = super().createInternetSocket()
        for level, name, value in self.connector.socketOptions:
            s.setsockopt(level, name, value)
        return s


class OptionsConnector(tcp.Connector):
    def __init__(self, host, port, factory, timeout, bindAddress, reactor, socketOptions):
        super().__init__(host, port, factory, timeout, bindAddress, reactor)
        self.socketOptions = list(socketOptions)
        if bindAddress is not None:
            self.socketOptions.append((socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1))

    def _makeTransport(self):
        return OptionsClient(self.host, self.port, self.bindAddress, self, self.reactor)


class OneClient(ClientFactory):
    """Makes one client; C{connected} fires with it, or fails if it could not connect."""

    def __init__(self, make):
        self.make = make
        self.connected = Deferred()

    def buildProtocol(self, addr):
        client = self.make()
        client.factory = self
        made = client.connectionMade

        def connectionMade():
            made()
            self.connected.callback(client)
        client.connectionMade = connectionMade
        return client

    def clientConnectionFailed(self, connector, reason):
        self.connected.errback(reason)


async def connectFrom(run, address, name, options=(), client=None):
    """
    A L{BenchClient} (or C{client}) connected to the run's server from
    C{address}, with C{options} set on its socket first. Fails with
    L{ConnectError} if the connection could not be made.
    """
    factory = OneClient(lambda: client or BenchClient(run.dialect, name))
    OptionsConnector(run.host, run.port, factory, 30, (address, 0), run.reactor,
                     options).connect()
    made = await factory.connected
    run.clients.append(made)
    return made


class Refused(Exception):
    """The server did not let a connection in: C{told} is what it said, if anything."""

    def __init__(self, told):
        super().__init__(told)
        self.told = told


def toldOf(client):
    """What the server last said to a client it refused or closed: an error line, if any."""
    errors = [line for line in client.recent if client.dialect.isError(line)]
    return errors[-1] if errors else "(closed without a word)"


async def prompted(run, address, name, options=(), client=None):
    """A connection from C{address} that got the name prompt; raises L{Refused}."""
    try:
        made = await connectFrom(run, address, name, options, client)
    except ConnectError as e:
        raise Refused(f"(could not connect: {e.__class__.__name__})")
    try:
        await made.expect(run.dialect.prompt, "the name prompt")
    except BenchError:
        raise Refused(toldOf(made))
    return made


async def named(run, made, name):
    """Choose C{name} on a prompted connection; raises L{Refused} if not welcomed."""
    made.send(name)
    try:
        await made.expect(run.dialect.welcomed(name), f"the welcome of {name}")
    except BenchError:
        if made.transport is not None:
            made.transport.loseConnection()
        raise Refused(toldOf(made))
    return made

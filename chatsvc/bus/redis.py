"""
The bus between nodes over Redis pub/sub, with txredisapi (>= 1.6, whose
connections are kept up by a ClientService).

Two connections: one publishes, one is subscribed (a subscribed Redis
connection can do nothing else). The link is up (C{connected}, C{isConnected})
while both are; C{lost} is called as soon as either goes. What Redis itself
does not do, this does (design/cluster.md, point 8, and the anchors' past
bugs):

- After a reconnect Redis knows nothing of the old subscriptions: the
  subscriber SUBSCRIBEs to every channel again as soon as it is connected,
  then PINGs; the reply means every SUBSCRIBE is in effect, and only then is
  C{connected} called.
- An idle connection never notices a Redis that hangs: both connections PING
  every C{pingInterval} seconds, and a reply missing after C{pingTimeout}
  aborts the connection, so that it reconnects (any reply counts, an error
  such as LOADING too: Redis is alive).
- Reconnecting is never switched off; the delay grows from 0.1 s to at most
  C{reconnectDelay} (1 s by default).
- While the publisher is down, payloads are dropped (C{dropped} counts them).
  Around an outage a payload written just before the link was found dead is
  lost too (or, rarely, arrives late): the Lobby's seqs sort that out.
- If hiredis is installed, txredisapi parses with it: about four times the
  messages per second of its pure-Python parser, which takes a reactor turn
  for each string of a reply.

Every payload goes over the wire behind the publishing bus's 8-byte random
tag, so that a bus can drop its own publications (Redis would send them back
to a subscribed publisher): publish to these channels only through a
RedisBus. Channels are not scoped by the database number of the URL (Redis
pub/sub ignores it): two chats on one Redis need channel names of their own.
"""

import os
from collections import deque
from urllib.parse import urlsplit

import txredisapi
from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from chatsvc.bus import IBus

TAG_LENGTH = 8
SUBSCRIBE_BATCH = 1000  # channels per SUBSCRIBE when subscribing again


def _nothing(*args):
    pass


def parseRedisURL(url: str) -> tuple[str, int, int]:
    """
    C{redis://HOST[:PORT][/DB]} as (host, port, db); the port defaults to
    6379, the database to 0. Raises ValueError for anything else.
    """
    parts = urlsplit(url)
    if parts.scheme != "redis":
        raise ValueError(f"A Redis address starts with redis://, not {url!r}"
                         " (TLS, rediss://, is not supported)")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"Redis passwords are not supported (in {url!r})")
    if parts.query or parts.fragment:
        raise ValueError(f"A Redis address has no options: {url!r}")
    try:
        port = parts.port or 6379
    except ValueError:
        raise ValueError(f"Not a port number in {url!r}") from None
    host = parts.hostname
    if not host:
        raise ValueError(f"No host in {url!r} (redis://HOST:PORT)")
    path = parts.path.strip("/")
    if not path:
        db = 0
    elif path.isdigit():
        db = int(path)
    else:
        raise ValueError(f"The database in {url!r} is not a number")
    return host, port, db


class _Factory(txredisapi.RedisFactory):
    """One connection, raw bytes in and out, reconnecting quickly, forever."""

    def __init__(self, bus, protocol, maxDelay):
        super().__init__(f"{bus.host}:{bus.port}", None, 1, isLazy=True,
                         charset=None, convertNumbers=False)
        self.bus = bus
        self.protocol = protocol
        self.initialDelay = min(0.1, maxDelay)
        self.maxDelay = maxDelay

    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        protocol.bus = self.bus
        return protocol


class _Publisher(txredisapi.RedisProtocol):
    bus = None
    ping = None  # the timeout of the PING in flight

    def connectionMade(self):
        self.transport.setTcpNoDelay(True)
        d = super().connectionMade()
        self.whenConnected().addCallback(self.bus._publisherUp)
        return d

    def connectionLost(self, reason):
        if self.ping is not None and self.ping.active():
            self.ping.cancel()
        self.ping = None
        super().connectionLost(reason)
        self.bus._publisherLost(self)


class _Subscriber(txredisapi.SubscriberProtocol):
    """
    The subscribed connection. Its replies are handled here rather than by
    txredisapi's queue of Deferreds, which cannot tell the several
    confirmations of one SUBSCRIBE from the reply to a PING sent meanwhile.
    """

    bus = None

    def connectionMade(self):
        self.transport.setTcpNoDelay(True)
        self.ready = False  # every channel subscribed again and confirmed
        self.pings = deque()  # the timeouts of the PINGs in flight, oldest first
        self.awaiting = {}  # channel: SUBSCRIBEs sent and not yet confirmed
        self.waiters = {}  # channel: Deferreds to fire once it is subscribed
        d = super().connectionMade()
        self.whenConnected().addCallback(self.bus._subscriberUp)
        return d

    def send(self, *args):
        self.transport.write(self._build_command(*args))

    def sendSubscribe(self, channels):
        for channel in channels:
            self.awaiting[channel] = self.awaiting.get(channel, 0) + 1
        self.send("SUBSCRIBE", *channels)

    def replyReceived(self, reply):
        bus = self.bus
        if type(reply) is list and reply:
            kind = reply[0]
            if kind == b"message" and len(reply) == 3:
                bus._message(reply[1], reply[2])
                return
            if kind == b"pong":
                bus._pong(self)
                return
            if kind == b"subscribe" and len(reply) == 3:
                self._confirmed(reply[1].decode("utf-8", "replace"))
                return
            if kind == b"unsubscribe":
                return
        elif reply == "PONG" or reply == b"PONG":  # not subscribed (yet); hiredis: bytes
            bus._pong(self)
            return
        elif isinstance(reply, Exception):
            # most likely the answer to a PING (LOADING, ...): Redis is alive
            bus.log.warn("Redis answered the bus's subscriber with an error: {error}",
                         error=reply)
            bus._pong(self)
            return
        bus.log.warn("Unexpected reply on the bus's subscriber: {reply!r}", reply=reply)

    def _confirmed(self, channel):
        left = self.awaiting.get(channel, 0) - 1
        if left > 0:
            self.awaiting[channel] = left
            return
        self.awaiting.pop(channel, None)
        for d in self.waiters.pop(channel, ()):
            d.callback(None)

    def connectionLost(self, reason):
        for timeout in self.pings:
            if timeout.active():
                timeout.cancel()
        self.pings.clear()
        self.awaiting.clear()
        waiters, self.waiters = self.waiters, {}
        super().connectionLost(reason)
        self.bus._subscriberLost(self)
        for ds in waiters.values():
            for d in ds:
                d.callback(None)  # C{connected} follows the next connection


@implementer(IBus)
class RedisBus(Service):
    """
    An L{IBus} over Redis pub/sub: see the module docstring. C{reactor} is
    used for the connections and the PINGs (txredisapi's own few timers use
    the global reactor).
    """

    log = Logger()

    def __init__(self, url: str, reactor=None, *, pingInterval: float = 3.0,
                 pingTimeout: float = 3.0, reconnectDelay: float = 1.0,
                 connectTimeout: float = 5.0):
        if reactor is None:
            from twisted.internet import reactor
        self.url = url
        self.host, self.port, self.db = parseRedisURL(url)
        self._reactor = reactor
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
        self.reconnectDelay = reconnectDelay
        self.connectTimeout = connectTimeout
        self.received = _nothing
        self.connected = _nothing
        self.lost = _nothing
        self.published = 0  # payloads written to Redis
        self.dropped = 0  # payloads dropped while the publisher was down
        self._tag = os.urandom(TAG_LENGTH)
        self._channels = set()
        self._factories = []
        self._publisher = None
        self._subscriber = None
        self._pinging = None
        self._up = False

    def __repr__(self):
        return f"<RedisBus {self.url} {'up' if self.isConnected else 'down'}>"

    @property
    def isConnected(self) -> bool:
        return self._up

    # IService

    def startService(self):
        super().startService()
        endpoint = HostnameEndpoint(self._reactor, self.host, self.port,
                                    timeout=self.connectTimeout)
        self._factories = [_Factory(self, _Publisher, self.reconnectDelay),
                           _Factory(self, _Subscriber, self.reconnectDelay)]
        for factory in self._factories:
            factory.startConnecting(endpoint)
        self._pinging = LoopingCall(self._ping)
        self._pinging.clock = self._reactor
        self._pinging.start(self.pingInterval, now=False)

    def stopService(self):
        super().stopService()
        self._up = False
        if self._pinging is not None and self._pinging.running:
            self._pinging.stop()
        self._pinging = None
        factories, self._factories = self._factories, []
        return gatherResults([f.disconnect() for f in factories], consumeErrors=True)

    # IBus

    def publish(self, channel: str, payload: bytes) -> None:
        publisher = self._publisher
        if publisher is None:
            self.dropped += 1
            return
        self.published += 1
        publisher.execute_command("PUBLISH", channel, self._tag + payload).addErrback(
            self._publishFailed)

    def subscribe(self, channel: str):
        subscriber = self._subscriber
        if channel not in self._channels:
            self._channels.add(channel)
            if subscriber is None:
                return succeed(None)
            subscriber.sendSubscribe([channel])
        elif subscriber is None or channel not in subscriber.awaiting:
            return succeed(None)
        d = Deferred()
        subscriber.waiters.setdefault(channel, []).append(d)
        return d

    def unsubscribe(self, channel: str) -> None:
        if channel not in self._channels:
            return
        self._channels.discard(channel)
        if self._subscriber is not None:
            self._subscriber.send("UNSUBSCRIBE", channel)

    # The connections. The link is up while both are: the publisher
    # connected, the subscriber connected and subscribed to everything again.

    def _update(self):
        up = (self._publisher is not None and self._subscriber is not None
              and self._subscriber.ready)
        if up == self._up or not self.running:
            return
        self._up = up
        if up:
            self.log.info("Bus connected to Redis at {host}:{port}, {n} channels"
                          " subscribed", host=self.host, port=self.port,
                          n=len(self._channels))
            self._tell(self.connected, "connected")
        else:
            self.log.warn("Bus lost Redis at {host}:{port}: what is published is"
                          " dropped until it is back", host=self.host, port=self.port)
            self._tell(self.lost, "lost")

    def _tell(self, callback, name):
        try:
            callback()
        except Exception:
            self.log.failure("The bus's {name} failed", name=name)

    def _publisherUp(self, protocol):
        if self.running and protocol.connected:
            self._publisher = protocol
            self._update()

    def _publisherLost(self, protocol):
        if self._publisher is protocol:
            self._publisher = None
            self._update()

    def _publishFailed(self, failure):
        if not failure.check(txredisapi.ConnectionError):
            self.log.failure("PUBLISH failed", failure)

    def _subscriberUp(self, protocol):
        if not (self.running and protocol.connected):
            return
        self._subscriber = protocol
        channels = sorted(self._channels)
        for i in range(0, len(channels), SUBSCRIBE_BATCH):
            protocol.sendSubscribe(channels[i:i + SUBSCRIBE_BATCH])
        # answered once every SUBSCRIBE before it is: then _pong marks it ready
        self._pingOne(protocol)

    def _subscriberLost(self, protocol):
        if self._subscriber is protocol:
            self._subscriber = None
            self._update()

    def _message(self, channel, payload):
        if payload[:TAG_LENGTH] == self._tag:
            return
        channel = channel.decode("utf-8", "replace")
        if channel not in self._channels:  # unsubscribed, not yet confirmed
            return
        try:
            self.received(channel, payload[TAG_LENGTH:])
        except Exception:
            self.log.failure("The bus's received failed on {channel}", channel=channel)

    # Keepalive: a PING with a reply timeout on both connections

    def _ping(self):
        subscriber = self._subscriber
        if subscriber is not None and not subscriber.pings:
            self._pingOne(subscriber)
        publisher = self._publisher
        if publisher is not None and publisher.ping is None:
            publisher.ping = self._reactor.callLater(
                self.pingTimeout, self._timedOut, publisher, "publisher")
            publisher.execute_command("PING").addBoth(self._publisherPong, publisher)

    def _pingOne(self, subscriber):
        subscriber.pings.append(self._reactor.callLater(
            self.pingTimeout, self._timedOut, subscriber, "subscriber"))
        subscriber.send("PING")

    def _publisherPong(self, result, publisher):
        # any answer, an error included, means Redis is alive; a lost
        # connection has cancelled the timeout already
        if publisher.ping is not None and publisher.ping.active():
            publisher.ping.cancel()
        publisher.ping = None

    def _pong(self, subscriber):
        if subscriber.pings:
            timeout = subscriber.pings.popleft()
            if timeout.active():
                timeout.cancel()
        if not subscriber.ready and subscriber is self._subscriber:
            subscriber.ready = True
            self._update()

    def _timedOut(self, protocol, which):
        self.log.warn("Redis at {host}:{port} did not answer the bus's {which} PING"
                      " within {timeout} s: reconnecting", host=self.host,
                      port=self.port, which=which, timeout=self.pingTimeout)
        if which == "publisher":
            protocol.ping = None
        protocol.transport.abortConnection()

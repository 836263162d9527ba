"""
The buses between nodes: one suite (L{BusTests}) run against L{LocalBus}es on
a L{Hub} and against L{RedisBus}es on a redis-server of the test's own (on a
spare port, never the shared one), plus what only each of them does: the
Redis one is restarted and hung under the buses' feet.

The Redis tests need redis-server on the PATH: without it they skip, except
under CI=true, where they fail.
"""

import os
import shutil
import signal
import socket

from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import Clock
from twisted.trial.unittest import SkipTest, TestCase
from zope.interface.verify import verifyObject

from chatsvc.bus import IBus
from chatsvc.bus.local import Hub, LocalBus
from chatsvc.bus.redis import RedisBus, parseRedisURL


class Recorder:
    """
    What one bus told its Lobby (received, connected, lost), and Deferreds
    that fire once it has told enough of it.
    """

    def __init__(self, bus):
        self.bus = bus
        self.messages = []  # (channel, payload)
        self.connects = 0
        self.losses = 0
        self.failNext = False
        self._waiting = []
        bus.received = self._received
        bus.connected = self._connected
        bus.lost = self._lost

    def _received(self, channel, payload):
        self.messages.append((channel, payload))
        self._check()
        if self.failNext:
            self.failNext = False
            raise ZeroDivisionError("a Lobby's bug")

    def _connected(self):
        self.connects += 1
        self._check()

    def _lost(self):
        self.losses += 1
        self._check()

    def _check(self):
        for entry in list(self._waiting):
            predicate, d = entry
            if predicate():
                self._waiting.remove(entry)
                d.callback(None)

    def until(self, predicate) -> Deferred:
        if predicate():
            return succeed(None)
        d = Deferred()
        self._waiting.append((predicate, d))
        return d

    def got(self, channel, payload) -> Deferred:
        return self.until(lambda: (channel, payload) in self.messages)

    def count(self, n) -> Deferred:
        return self.until(lambda: len(self.messages) >= n)

    def connectedTimes(self, n) -> Deferred:
        return self.until(lambda: self.connects >= n)

    def lostTimes(self, n) -> Deferred:
        return self.until(lambda: self.losses >= n)

    def on(self, channel):
        return [payload for (c, payload) in self.messages if c == channel]


class BusTests:
    """
    What every bus does. A TestCase mixing it in provides C{makeBus()} (a
    bus of the same chat, not started) and C{breakLinks()} / C{mendLinks()}
    (Deferreds: every bus loses its link / may regain it).
    """

    timeout = 30

    async def started(self, n):
        """C{n} buses of one chat, started and connected, as L{Recorder}s."""
        recorders = []
        for _ in range(n):
            bus = self.makeBus()
            recorder = Recorder(bus)
            bus.startService()
            self.addCleanup(self._stop, bus)
            recorders.append(recorder)
        for recorder in recorders:
            await recorder.connectedTimes(1)
        return recorders

    def _stop(self, bus):
        if bus.running:
            return bus.stopService()

    async def test_interface(self):
        [a] = await self.started(1)
        self.assertTrue(verifyObject(IBus, a.bus))
        self.assertTrue(a.bus.isConnected)
        self.assertEqual((a.connects, a.losses), (1, 0))

    async def test_subscribersOnly(self):
        """A payload goes to the buses subscribed to its channel, and to no other."""
        a, b, c = await self.started(3)
        await b.bus.subscribe("room/1")
        await c.bus.subscribe("room/2")
        for r in (b, c):
            await r.bus.subscribe("end")
        a.bus.publish("room/1", b"one")
        a.bus.publish("room/2", b"two")
        a.bus.publish("end", b"")
        await b.got("end", b"")
        await c.got("end", b"")
        self.assertEqual(b.messages, [("room/1", b"one"), ("end", b"")])
        self.assertEqual(c.messages, [("room/2", b"two"), ("end", b"")])
        self.assertEqual(a.messages, [])

    async def test_notToTheSender(self):
        """A bus never receives its own payloads, even on a channel it is subscribed to."""
        a, b = await self.started(2)
        await a.bus.subscribe("room")
        await b.bus.subscribe("room")
        a.bus.publish("room", b"from a")
        await b.got("room", b"from a")
        b.bus.publish("room", b"from b")
        # had a's own payload come back to it, it would have come first
        await a.got("room", b"from b")
        self.assertEqual(a.messages, [("room", b"from b")])
        self.assertEqual(b.messages, [("room", b"from a")])

    async def test_unsubscribe(self):
        """Nothing of a channel is received after unsubscribing from it, until subscribing again."""
        a, b = await self.started(2)
        await b.bus.subscribe("room")
        await b.bus.subscribe("end")
        a.bus.publish("room", b"1")
        await b.got("room", b"1")
        b.bus.unsubscribe("room")
        a.bus.publish("room", b"2")
        a.bus.publish("end", b"2")
        await b.got("end", b"2")
        await b.bus.subscribe("room")
        a.bus.publish("room", b"3")
        await b.got("room", b"3")
        self.assertEqual(b.on("room"), [b"1", b"3"])

    async def test_idempotent(self):
        a, b = await self.started(2)
        b.bus.unsubscribe("never")
        await b.bus.subscribe("room")
        await b.bus.subscribe("room")
        await b.bus.subscribe("end")
        a.bus.publish("room", b"once")
        a.bus.publish("end", b"1")
        await b.got("end", b"1")
        self.assertEqual(b.on("room"), [b"once"])
        b.bus.unsubscribe("room")
        b.bus.unsubscribe("room")
        a.bus.publish("room", b"gone")
        a.bus.publish("end", b"2")
        await b.got("end", b"2")
        self.assertEqual(b.on("room"), [b"once"])

    async def test_binarySafe(self):
        """Payloads arrive as the very bytes published, whatever they hold."""
        a, b = await self.started(2)
        await b.bus.subscribe("room/\u00e9t\u00e9")
        payloads = [b"", b"\x00", b"\r\n", b"*3\r\n$7\r\nmessage\r\n", b"-ERR no\r\n",
                    b"12345", b"1.5", b"\xff\xfe\x00\x80", bytes(range(256)) * 4,
                    os.urandom(1 << 20)]
        for payload in payloads:
            a.bus.publish("room/\u00e9t\u00e9", payload)
        await b.count(len(payloads))
        self.assertEqual(b.messages, [("room/\u00e9t\u00e9", p) for p in payloads])
        self.assertTrue(all(type(p) is bytes for (_, p) in b.messages))
        self.assertTrue(all(type(c) is str for (c, _) in b.messages))

    async def test_order(self):
        """What one bus publishes arrives in the order it was published, on every channel."""
        a, b, c = await self.started(3)
        for r in (b, c):
            await r.bus.subscribe("x")
            await r.bus.subscribe("y")
        sent = {"x": [], "y": []}
        for i in range(2000):
            channel = "xy"[i % 3 == 0]
            payload = b"%d" % i
            sent[channel].append(payload)
            a.bus.publish(channel, payload)
        for r in (b, c):
            await r.count(2000)
            self.assertEqual(r.on("x"), sent["x"])
            self.assertEqual(r.on("y"), sent["y"])

    async def test_receivedFails(self):
        """A C{received} that raises is logged, and what follows is still received."""
        a, b = await self.started(2)
        await b.bus.subscribe("room")
        b.failNext = True
        a.bus.publish("room", b"1")
        a.bus.publish("room", b"2")
        await b.got("room", b"2")
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertEqual(b.on("room"), [b"1", b"2"])

    async def test_stop(self):
        """Stopping a bus is not losing its link: C{lost} is not called."""
        a, b = await self.started(2)
        await b.bus.subscribe("room")
        await a.bus.stopService()
        self.assertFalse(a.bus.isConnected)
        self.assertEqual(a.losses, 0)
        a.bus.publish("room", b"after stopping")  # dropped, no error

    async def test_outage(self):
        """
        While the link is down every bus says so and what is published is
        dropped; once it is back every bus subscribes again by itself, says
        so, and what is published is delivered again.
        """
        a, b, c = await self.started(3)
        await b.bus.subscribe("room")
        await c.bus.subscribe("room")
        await c.bus.subscribe("other")
        a.bus.publish("room", b"before")
        await b.got("room", b"before")
        await c.got("room", b"before")

        await self.breakLinks()
        for r in (a, b, c):
            await r.lostTimes(1)
            self.assertFalse(r.bus.isConnected)
        a.bus.publish("room", b"during")  # dropped: the Lobby fills the gap
        b.bus.unsubscribe("room")  # while down: remembered all the same
        await b.bus.subscribe("other")

        await self.mendLinks()
        for r in (a, b, c):
            await r.connectedTimes(2)
            self.assertTrue(r.bus.isConnected)
            self.assertEqual(r.losses, 1)
        a.bus.publish("room", b"after")
        a.bus.publish("other", b"after")
        await b.got("other", b"after")
        await c.got("other", b"after")
        self.assertEqual(b.messages, [("room", b"before"), ("other", b"after")])
        self.assertEqual(c.messages, [("room", b"before"), ("room", b"after"),
                                      ("other", b"after")])


class LocalBusTests(BusTests, TestCase):
    def setUp(self):
        self.hub = Hub()
        self.buses = []

    def makeBus(self):
        bus = LocalBus(self.hub)
        self.buses.append(bus)
        return bus

    def breakLinks(self):
        for bus in self.buses:
            bus.cut()
        return succeed(None)

    def mendLinks(self):
        for bus in self.buses:
            bus.restore()
        return succeed(None)


class LocalBusAloneTests(TestCase):
    """What only the LocalBus does, on a fake clock."""

    def setUp(self):
        self.clock = Clock()

    def test_alone(self):
        """Without a hub, publishing tells no one, and the link is up at the end of the turn."""
        bus = LocalBus(reactor=self.clock)
        r = Recorder(bus)
        bus.startService()
        self.assertEqual(r.connects, 0)
        self.clock.advance(0)
        self.assertEqual(r.connects, 1)
        bus.subscribe("room")
        bus.publish("room", b"nobody hears")
        self.clock.advance(0)
        self.assertEqual(r.messages, [])
        self.assertEqual(bus.published, 1)

    def test_endOfTurn(self):
        """Delivery happens at the end of the reactor turn, not during publish."""
        hub = Hub(self.clock)
        a, b = LocalBus(hub), LocalBus(hub)
        rb = Recorder(b)
        a.startService()
        b.startService()
        self.clock.advance(0)
        b.subscribe("room")
        a.publish("room", b"1")
        a.publish("room", b"2")
        self.assertEqual(rb.messages, [])
        self.clock.advance(0)
        self.assertEqual(rb.messages, [("room", b"1"), ("room", b"2")])

    def test_cutReceiver(self):
        """A payload in flight to a bus cut before the end of the turn is dropped."""
        hub = Hub(self.clock)
        a, b = LocalBus(hub), LocalBus(hub)
        rb = Recorder(b)
        a.startService()
        b.startService()
        self.clock.advance(0)
        b.subscribe("room")
        a.publish("room", b"lost")
        b.cut()
        self.assertEqual((rb.losses, b.isConnected), (1, False))
        b.cut()
        self.assertEqual(rb.losses, 1)
        self.clock.advance(0)
        a.publish("room", b"lost too")
        b.restore()
        self.assertFalse(b.isConnected)  # until the end of the turn
        self.clock.advance(0)
        self.assertEqual((rb.connects, b.isConnected), (2, True))
        self.assertEqual(rb.messages, [])
        a.publish("room", b"found")
        self.clock.advance(0)
        self.assertEqual(rb.messages, [("room", b"found")])

    def test_cutSender(self):
        hub = Hub(self.clock)
        a, b = LocalBus(hub), LocalBus(hub)
        rb = Recorder(b)
        a.startService()
        b.startService()
        b.subscribe("room")
        a.cut()
        a.publish("room", b"dropped")
        self.clock.advance(0)
        self.assertEqual((rb.messages, a.dropped), ([], 1))


def spareTCPPort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer(ProcessProtocol):
    """
    A redis-server of the test's own, on 127.0.0.1:C{port}, nothing saved:
    L{start} fires once it accepts connections, L{kill} once it has exited.
    """

    def __init__(self, port):
        self.port = port
        self.process = None
        self._ready = None
        self._ended = None
        self.output = b""

    def start(self) -> Deferred:
        self.output = b""
        self._ready = Deferred()
        self._ended = Deferred()
        path = shutil.which("redis-server")
        self.process = reactor.spawnProcess(
            self, path, [path, "--port", str(self.port), "--bind", "127.0.0.1",
                         "--save", "", "--appendonly", "no", "--daemonize", "no"],
            env=os.environ)
        return self._ready

    @property
    def pid(self):
        return self.process.pid

    def outReceived(self, data):
        self.output += data
        if self._ready is not None and b"Ready to accept connections" in self.output:
            d, self._ready = self._ready, None
            d.callback(None)

    errReceived = outReceived

    def processEnded(self, reason):
        self.process = None
        if self._ready is not None:
            d, self._ready = self._ready, None
            d.errback(RuntimeError(f"redis-server exited: {self.output.decode(errors='replace')}"))
        self._ended.callback(None)

    def signal(self, sig):
        os.kill(self.pid, sig)

    def kill(self) -> Deferred:
        """kill -9 it; fires once it has exited."""
        if self.process is None:
            return succeed(None)
        ended = self._ended
        self.signal(signal.SIGKILL)
        return ended


def needRedisServer(test):
    if shutil.which("redis-server") is None:
        reason = "redis-server is not installed (Debian: apt-get install redis-server)"
        if os.environ.get("CI") == "true":
            test.fail(f"CI=true, and the Redis bus tests cannot run: {reason}")
        raise SkipTest(reason)


class RedisBusTests(BusTests, TestCase):
    """The shared suite on Redis, and Redis restarted and hung under the buses' feet."""

    # quick, so that the tests are: a missed PING is noticed within 0.7 s
    busOptions = dict(pingInterval=0.2, pingTimeout=0.5, reconnectDelay=0.2,
                      connectTimeout=2)

    async def setUp(self):
        needRedisServer(self)
        self.server = RedisServer(spareTCPPort())
        self.addCleanup(self._stopServer)
        await self.server.start()

    def _stopServer(self):
        if self.server.process is not None:
            self.server.signal(signal.SIGCONT)
        return self.server.kill()

    def makeBus(self):
        return RedisBus(f"redis://127.0.0.1:{self.server.port}/0", **self.busOptions)

    def breakLinks(self):
        return self.server.kill()

    def mendLinks(self):
        return self.server.start()

    async def test_hung(self):
        """
        A Redis that stops answering is noticed by the PING's timeout (an
        idle subscriber would never notice it), and the buses come back by
        themselves once it answers again.
        """
        a, b = await self.started(2)
        await b.bus.subscribe("room")
        subscriber = b.bus._subscriber
        self.server.signal(signal.SIGSTOP)
        await a.lostTimes(1)
        await b.lostTimes(1)
        # the subscriber's own PING noticed (not only the publisher's)
        if subscriber.connected:
            await subscriber.whenDisconnected()
        self.server.signal(signal.SIGCONT)
        await a.connectedTimes(2)
        await b.connectedTimes(2)
        self.assertIsNot(b.bus._subscriber, subscriber)
        a.bus.publish("room", b"after")
        await b.got("room", b"after")

    async def test_restartedTwice(self):
        """Each restart is one C{lost} and one C{connected}, and subscriptions survive both."""
        a, b = await self.started(2)
        await b.bus.subscribe("room")
        for i in (1, 2):
            await self.server.kill()
            await a.lostTimes(i)
            await b.lostTimes(i)
            await self.server.start()
            await a.connectedTimes(i + 1)
            await b.connectedTimes(i + 1)
            a.bus.publish("room", b"%d" % i)
            await b.got("room", b"%d" % i)
        self.assertEqual((a.losses, a.connects, b.losses, b.connects), (2, 3, 2, 3))
        self.assertEqual(b.on("room"), [b"1", b"2"])

    async def test_startWhileDown(self):
        """A bus started while Redis is down connects (and subscribes) once it is up."""
        await self.server.kill()
        bus = self.makeBus()
        r = Recorder(bus)
        bus.subscribe("room")
        bus.startService()
        self.addCleanup(bus.stopService)
        await self.server.start()
        await r.connectedTimes(1)
        self.assertEqual(r.losses, 0)
        [other] = await self.started(1)
        other.bus.publish("room", b"hello")
        await r.got("room", b"hello")

    async def test_subscribeConfirmed(self):
        """subscribe()'s Deferred fires once Redis has the subscription."""
        a, b = await self.started(2)
        d = b.bus.subscribe("room")
        self.assertNoResult(d)
        await d
        # in effect at Redis: published right now from elsewhere, it arrives
        a.bus.publish("room", b"1")
        await b.got("room", b"1")



class RedisURLTests(TestCase):
    def test_parse(self):
        self.assertEqual(parseRedisURL("redis://localhost"), ("localhost", 6379, 0))
        self.assertEqual(parseRedisURL("redis://10.0.0.5:6380/2"), ("10.0.0.5", 6380, 2))
        self.assertEqual(parseRedisURL("redis://[::1]:7000/"), ("::1", 7000, 0))
        for bad in ("localhost:6379", "rediss://h:1", "redis://:pw@h:1", "redis://h:x",
                    "redis://h/db", "redis://h:1?timeout=3", "redis://", "http://h"):
            self.assertRaises(ValueError, parseRedisURL, bad)

    def test_badURLAtOnce(self):
        """A wrong --bus fails when the bus is made, not later in the reactor."""
        self.assertRaises(ValueError, RedisBus, "redis://h:99999")

"""
Keeping one connection from hurting the others: a rate limit on what it
sends, and a bound on what waits to be sent to it.
"""

from collections import deque

from twisted.internet import tcp
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer


class TokenBucket:
    """
    C{rate} a second on average, C{burst} at once. Time comes from C{clock},
    which the server runs on a monotonic clock; a clock that goes back anyway
    refills nothing and holds nobody.
    """

    __slots__ = ("rate", "burst", "clock", "tokens", "last")

    def __init__(self, rate: float, burst: int, clock):
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.last = clock.seconds()

    def _refill(self):
        now = self.clock.seconds()
        elapsed = max(0.0, now - self.last)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.last = now

    def take(self) -> float:
        """
        Spend one. Return 0 if another may follow at once, else the seconds
        to wait before the next.
        """
        self._refill()
        self.tokens -= 1
        return 0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def allow(self) -> float:
        """
        Spend one if there is one and return 0; else spend nothing and return
        the seconds until there is one. For what is refused, not paced.
        """
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return 0
        return (1 - self.tokens) / self.rate

    def full(self) -> bool:
        """As if never used: forgetting it would give nobody more."""
        if self.rate > 0:
            self._refill()
        return self.tokens >= self.burst


def sendNow(transport, socket, data: bytes) -> bytes:
    """
    Send C{data} straight to the socket under a TCP C{transport} when Twisted
    has nothing queued for it (FileDescriptor.dataBuffer and _tempDataBuffer),
    so this write cannot overtake another; what the socket does not take is
    returned, for the transport's usual, queued write (b"": all sent, or the
    connection is gone, which Twisted notices on reading).
    """
    if (transport.dataBuffer or transport._tempDataLen or not transport.connected
            or transport.disconnecting):
        return data
    try:
        sent = socket.send(data)
    except BlockingIOError:
        return data
    except OSError:
        return b""
    return data[sent:]


@implementer(IPushProducer)
class OutputGuard:
    """
    Everything sent to one client goes through here.

    It watches the connection's send buffer through the producer API: the
    transport pauses us once its own buffer is full (the client is not
    reading fast enough) and resumes us when it drains. What is written
    meanwhile is counted; past C{limit} bytes the client is hopeless and
    C{overflow} is called, so a reader that never reads costs at most that much
    memory.

    On a plain TCP or UNIX connection with nothing queued, a write goes
    straight to the socket. A chat server's writes are many and small, and
    Twisted's usual path (queue, ask epoll for writability, wait a turn, send,
    tell epoll to stop watching) costs three system calls and a dispatch per
    connection per turn where one send() does; only what the socket does not
    take at once is queued the usual way, so the order is kept.
    """

    def __init__(self, transport, limit: int, overflow):
        self.transport = transport
        self.limit = limit
        self.overflow = overflow
        self.backlogged = False
        self.queued = 0  # bytes written since the transport's buffer filled
        self._drained = []
        # TLS wraps the socket in a protocol, so its transport is not a
        # tcp.Connection: it always takes the usual path.
        self._socket = (transport.getHandle()
                        if isinstance(transport, tcp.Connection) else None)
        transport.registerProducer(self, True)
        self._registered = True

    def write(self, data: bytes):
        transport = self.transport
        if self._socket is not None:
            data = sendNow(transport, self._socket, data)
            if not data:
                return
        behind = self.backlogged  # before this write, which may fill the buffer
        transport.write(data)
        if behind:
            self.queued += len(data)
            if self.queued > self.limit:
                self.overflow(self.queued)

    def release(self):
        """Stop watching: the connection is closing."""
        if self._registered:
            self._registered = False
            self.transport.unregisterProducer()

    def whenDrained(self) -> Deferred:
        """Fires once the transport's buffer is below its threshold."""
        if not self.backlogged:
            return succeed(None)
        d = Deferred()
        self._drained.append(d)
        return d

    def pauseProducing(self):
        self.backlogged = True

    def resumeProducing(self):
        self.backlogged = False
        self.queued = 0
        waiting, self._drained = self._drained, []
        for d in waiting:
            d.callback(None)

    def stopProducing(self):
        self._drained = []  # the connection is gone; nothing more will be sent


class Pacer:
    """
    Long runs of output (join replay, history pages, room lists) from every
    connection of every door take turns: one piece at a time in all, round
    robin, and after each piece a pause as long as it took. However many
    people list 50,000 rooms at once, what anyone else says waits behind one
    piece at most, and the reactor's thread is never busy with them more than
    half the time: the thread that commits messages (which needs the GIL the
    reactor's thread would otherwise hold for 5 ms at a time) gets in at once.
    """

    def __init__(self, clock):
        self.clock = clock
        self._senders = deque()  # callables: send one piece, say whether more follow
        self._call = None

    def add(self, sender):
        """C{sender()} sends one piece and returns True while it has more to send now."""
        self._senders.append(sender)
        if self._call is None:
            self._call = self.clock.callLater(0, self._turn)

    def _turn(self):
        self._call = None
        sender = self._senders.popleft()
        started = self.clock.seconds()
        if sender():
            self._senders.append(sender)
        if self._senders and self._call is None:  # (a sender may have added one)
            self._call = self.clock.callLater(self.clock.seconds() - started, self._turn)

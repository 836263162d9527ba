"""
The attackers of ``chatsvc-bench abuse`` (L{chatsvc.bench.abuse}) that stay
in the room, and what watches them: the flooder, and the watch that sees the
server drop the non-reader although nothing reads from it. Those that come
and go are L{chatsvc.bench.attackers}.
"""

import re
import socket
import struct
import time

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import LoopingCall
from zope.interface import implementer

FLOOD_MARKER = re.compile(rb"^<[^>\n]*> F(\d+)\.(\d+)", re.MULTILINE)
_TCP_CLOSED = {7, 8, 9}  # TCP_CLOSE, TCP_CLOSE_WAIT, TCP_LAST_ACK (linux/tcp_states.h)


@implementer(IPushProducer)
class Flooder:
    """
    Writes C{count} lines into its room as fast as its socket takes them: a
    streaming producer, so at most one batch more than the transport's own
    buffer waits in this process. Counts its echoes (C{F<seq>.<T>}) as they come.
    """

    BATCH = 32  # lines per write

    def __init__(self, client, count, payload, clock):
        self.client = client
        self.count = count
        self.payload = payload
        self.clock = clock
        self.filler = b"x" * payload
        self.written = 0
        self.paused = True
        self.stopped = False
        self.echoTimes = []  # run clock, µs, one per echo in order
        self.outOfOrder = 0
        self.tail = b""
        self.lines = 0
        self.last = 0
        self.done = Deferred()  # Tally interface, never waited for

    def begin(self):
        self.client.transport.registerProducer(self, True)
        self.resumeProducing()

    def resumeProducing(self):
        self.paused = False
        while not self.paused and not self.stopped and self.written < self.count:
            lines = []
            for _ in range(min(self.BATCH, self.count - self.written)):
                self.written += 1
                marker = b"F%d.%d" % (self.written, self.clock())
                lines.append(marker + self.filler[len(marker):] + b"\n")
            self.client.transport.write(b"".join(lines))  # may pause us

    def pauseProducing(self):
        self.paused = True

    def stopProducing(self):
        self.stopped = True

    def unsent(self):
        """Lines written but still in this process's transport buffer (not in the kernel)."""
        t = self.client.transport
        if t is None:
            return 0
        buffered = len(t.dataBuffer) - getattr(t, "offset", 0) + getattr(t, "_tempDataLen", 0)
        return min(self.written, -(-max(0, buffered) // (self.payload + 1)))

    def feed(self, data):  # as the client's tally
        now = self.clock()
        whole = self.tail + data
        end = whole.rfind(b"\n") + 1
        self.tail = whole[end:]
        if not end:
            return
        self.lines += whole.count(b"\n", 0, end)
        self.last = now
        for seq, _sent in FLOOD_MARKER.findall(whole, 0, end):
            self.echoTimes.append(now)
            if int(seq) != len(self.echoTimes):
                self.outOfOrder += 1

    def rateAfterBurst(self, burst):
        """Echoes a second after the first C{burst} ones (None if too few)."""
        times = self.echoTimes
        if len(times) < burst + 2:
            return None
        span = (times[-1] - times[burst - 1]) / 1e6
        return round((len(times) - burst) / span, 2) if span > 0 else None


def tcpState(client):
    """The kernel's TCP state of a client's socket (1: established), or None."""
    try:
        info = client.transport.getHandle().getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    except (OSError, AttributeError):
        return None
    return struct.unpack("B", info[:1])[0]


class NonReaderWatch:
    """
    Polls the non-reader's socket: when the server drops it (RST) the kernel
    says so (TCP_INFO) even though the bench reads nothing from it.
    """

    def __init__(self, client, witness):
        self.client = client
        self.witness = witness  # a normal user: it is sent what the room sends
        self.closed = Deferred()
        self.closedAt = None
        self.bytesAt = None
        self.start = witness.bytesReceived
        self._loop = LoopingCall(self._poll)

    def begin(self):
        self.start = self.witness.bytesReceived
        self._loop.start(0.05)

    def _poll(self):
        state = tcpState(self.client)
        if state is None or state in _TCP_CLOSED:
            self.closedAt = time.perf_counter()
            self.bytesAt = self.witness.bytesReceived
            self.stop()
            self.closed.callback(None)

    def stop(self):
        if self._loop.running:
            self._loop.stop()

    def bytesItsWay(self):
        """Bytes the room sent since it stopped reading (as a normal user received them)."""
        end = self.bytesAt if self.bytesAt is not None else self.witness.bytesReceived
        return end - self.start

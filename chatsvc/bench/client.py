"""
The bench's cheap client. A L{BenchClient} speaks lines while it logs in and
joins (L{BenchClient.expect} waits for a line), then switches to counting: it
counts newlines and pulls the marker of bench messages out of each chunk with
one regular expression, without splitting lines.

A bench message's text is C{@SID.SEQ.T} padded with C{x} to the payload size:
SID is the sender's number, SEQ its message's number (1, 2, ...), T the send
time in microseconds since the run's epoch (one process: one clock). Every copy
received anywhere gives a delivery latency; a sender's own copy (the echo, which
the server sends once the message is stored) also gives an echo latency and
releases the next message of its window.

The wire dialect lives in one object (L{Native}); the IRC dialect (``--protocol
irc``, for servers like ngircd) is L{chatsvc.bench.irc.IRC}, with the same methods.
"""

import collections
import re
import time
from array import array

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol

from chatsvc.bench.server import BenchError


class Native:
    """The chatsvc line protocol (protocol.md)."""

    name = "chatsvc"
    # A chat line as the server renders it: "<name> text".
    marker = re.compile(rb"^<[^>\n]*> @(\d+)\.(\d+)\.(\d+)", re.MULTILINE)
    tag = b"> @"  # in a bench message's line and no other: what a sink counts
    gap = b""  # what follows the marker before the padding (see IRC)

    def newClient(self, name):
        return BenchClient(self, name)

    async def login(self, client, name):
        """On a new connection: choose the screen name C{name}."""
        await client.expect(self.prompt, "the name prompt")
        client.send(name)
        await client.expect(self.welcomed(name), f"the welcome of {name}")

    def prompt(self, line):
        return "Enter your screen name:" in line

    def welcomed(self, name):
        return lambda line: line.startswith(f"* Welcome, {name}.")

    def create(self, room):
        return f"create {room}"

    def join(self, room):
        return f"join {room}"

    def joined(self, room):
        return lambda line: line.startswith(f"* You joined {room}.")

    def leave(self):
        return "leave"

    def left(self, room):
        return lambda line: line.startswith(f"* You left {room}.")

    def sync(self):
        """A command whose one-line answer proves every earlier line has arrived."""
        return "who"

    def synced(self, room=None):
        if room is None:
            return lambda line: line.startswith("* Online (")
        return lambda line: line.startswith(f"* In {room} (")

    def say(self, text: bytes) -> bytes:
        return text + b"\n"

    def isError(self, line):
        return line.startswith("! ")


DIALECTS = {"chatsvc": Native}


class Clock:
    """Microseconds since the run's epoch."""

    def __init__(self):
        self.epoch = time.perf_counter_ns()

    def __call__(self):
        return (time.perf_counter_ns() - self.epoch) // 1000


class BenchClient(Protocol):
    def __init__(self, dialect, name):
        self.dialect = dialect
        self.name = name
        self.bytesReceived = 0
        self.tally = None  # set when counting
        self.lost = Deferred()
        self.recent = collections.deque(maxlen=4)  # for error messages
        self._buffer = b""
        self._pending = collections.deque()
        self._waiter = None

    def connectionMade(self):
        self.transport.setTcpNoDelay(True)

    def send(self, line):
        if isinstance(line, str):
            line = line.encode("utf-8") + b"\n"
        self.transport.write(line)

    def expect(self, predicate, what, errors=True) -> Deferred:
        """
        Fires with the lines received up to and including the first one that
        C{predicate} accepts. With C{errors}, an error line (C{! ...}) first fails it.
        """
        if self.tally is not None:
            raise RuntimeError("expect() while counting")
        d = Deferred()
        self._waiter = (predicate, d, [], what, errors)
        if self.transport is None or not self.transport.connected:
            self._fail(f"the connection is closed, waiting for {what}")
        self._drain()
        return d

    def startCounting(self, tally):
        self.tally = tally
        tally.tail = self._buffer
        self._buffer = b""

    def dataReceived(self, data):
        self.bytesReceived += len(data)
        if self.tally is not None:
            self.tally.feed(data)
            return
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        for line in lines:
            self._pending.append(line.rstrip(b"\r").decode("utf-8", "replace"))
        self._drain()

    def _drain(self):
        while self._waiter is not None and self._pending:
            line = self._pending.popleft()
            self.recent.append(line)
            predicate, d, got, what, errors = self._waiter
            got.append(line)
            if predicate(line):
                self._waiter = None
                d.callback(got)
            elif errors and self.dialect.isError(line):
                self._fail(f"the server refused, waiting for {what}: {line}")

    def _fail(self, why):
        if self._waiter is not None:
            d = self._waiter[1]
            self._waiter = None
            d.errback(BenchError(f"{self.name}: {why}"))

    def connectionLost(self, reason):
        for line in self._pending:
            self.recent.append(line)
        self._pending.clear()
        if self._waiter is not None:
            last = " | ".join(self.recent) or "(nothing)"
            self._fail(f"the connection closed, waiting for {self._waiter[3]};"
                       f" last lines: {last}")
        self.lost.callback(None)


class Tally:
    """
    What one client received while counting: lines, and the latencies of bench
    messages (appended to the run's shared arrays). Fires C{done} once it has
    seen C{expected} bench messages.
    """

    def __init__(self, run, expected, sender=None):
        self.clock = run.clock
        self.find = run.dialect.marker.findall
        self.deliveries = run.deliveries
        self.expected = expected
        self.sender = sender
        self.mine = b"%d" % sender.sid if sender is not None else None
        self.lines = 0
        self.messages = 0
        self.last = 0  # when the last line arrived (run clock)
        self.tail = b""
        self.done = Deferred()
        if expected <= 0:
            self.done.callback(None)

    def feed(self, data, now=None):
        if now is None:  # when it arrived (a transport that decodes tells)
            now = self.clock()
        newlines = data.count(b"\n")
        if not newlines:
            self.tail += data
            return
        self.lines += newlines
        self.last = now
        if self.tail:
            data = self.tail + data
        end = data.rfind(b"\n") + 1
        self.tail = data[end:]
        self.count(self.find(data, 0, end), now)
        if self.messages >= self.expected and not self.done.called:
            self.done.callback(None)

    def count(self, found, now):
        """The bench messages of one chunk, (SID, SEQ, T) each, that arrived at C{now}."""
        self.messages += len(found)
        append = self.deliveries.append
        mine, sender = self.mine, self.sender
        for sid, seq, sent in found:
            latency = now - int(sent)
            append(latency)
            if sid == mine:
                sender.echoed(int(seq), latency)


class Sender:
    """Sends C{count} bench messages keeping at most C{window} unechoed."""

    def __init__(self, run, client, sid, count, window, payload):
        self.run = run
        self.client = client
        self.sid = sid
        self.count = count
        self.window = max(1, min(window, count))
        self.filler = b"x" * payload
        self.payload = payload
        self.sent = 0
        self.acked = 0
        self.worst = (-1, None)
        self.echoes = run.echoes
        self.say = run.dialect.say
        self.gap = run.dialect.gap

    def start(self):
        for _ in range(self.window):
            self._send()

    def _send(self):
        self.sent += 1
        marker = b"@%d.%d.%d%s" % (self.sid, self.sent, self.run.clock(), self.gap)
        self.client.transport.write(self.say(marker + self.filler[len(marker):]))

    def echoed(self, seq, latency):
        self.acked += 1
        self.echoes.append(latency)
        if latency > self.worst[0]:  # when was the slowest one sent? (run clock)
            self.worst = (latency, self.run.clock() - latency)
        if seq != self.acked and len(self.run.errors) < 10:
            self.run.errors.append(f"sender {self.sid}: echo {seq} arrived as number"
                                   f" {self.acked} (lost or reordered)")
        if self.sent < self.count:
            self._send()


def newSamples():
    return array("q")

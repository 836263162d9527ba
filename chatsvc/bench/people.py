"""
The normal users of ``chatsvc-bench abuse``: people, each from an address of
its own, who take a moment to type their screen name, join one room and chat
at a steady rate (open loop: on a schedule, not waiting for echoes), reading
everything they are sent.
"""

import collections
import re
import time

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.task import deferLater

from chatsvc.bench.client import Tally
from chatsvc.bench.server import BenchError
from chatsvc.bench.visits import Refused, named, prompted, toldOf

# An attacker's chat line: "<name> " then its marker letter (F: the flooder,
# R: the reconnector), its number and its send time.
ATTACK_MARKER = re.compile(rb"^<[^>\n]*> ([FR])\d+\.\d+", re.MULTILINE)


async def arrive(run, address, name, room, typing, gate):
    """
    One person arriving from C{address}: connect (C{gate}, a DeferredSemaphore,
    bounds the connections being made at once), read the name prompt, take
    C{typing} seconds to type C{name}, then join C{room}. The connection once
    in the room, or L{Refused} with what the server said.
    """
    client = await gate.run(lambda: Deferred.fromCoroutine(prompted(run, address, name)))
    if typing:
        await deferLater(run.reactor, typing, lambda: None)
    await named(run, client, name)
    d = run.dialect
    client.send(d.join(room))
    try:
        await client.expect(d.joined(room), f"{name} joining {room}")
    except BenchError:
        raise Refused(f"(not let into {room}) {toldOf(client)}")
    return client


class PacedSender:
    """Says C{count} bench messages when L{Pacer} tells it; checks its echoes' order."""

    def __init__(self, run, client, sid, count, payload):
        self.run = run
        self.client = client
        self.sid = sid
        self.count = count
        self.filler = b"x" * payload
        self.sent = 0
        self.acked = 0
        self.say = run.dialect.say

    def send(self):
        self.sent += 1
        marker = b"@%d.%d.%d" % (self.sid, self.sent, self.run.clock())
        self.client.transport.write(self.say(marker + self.filler[len(marker):]))

    def echoed(self, seq, latency):
        self.acked += 1
        self.run.echoes.append(latency)
        if seq != self.acked and len(self.run.errors) < 10:
            self.run.errors.append(f"user {self.sid}: echo {seq} arrived as number"
                                   f" {self.acked} (lost or reordered)")


class Pacer:
    """
    Open loop: every sender says one message every 1/C{rate} seconds, the
    senders' turns spread evenly over that interval, on a fixed schedule
    (a late tick catches up; nothing waits for an echo).
    """

    def __init__(self, reactor, senders, rate):
        self.reactor = reactor
        self.senders = senders
        self.interval = 1.0 / (rate * len(senders))
        self.total = sum(s.count for s in senders)
        self.sent = 0
        self.start = None
        self._call = None

    def begin(self):
        self.start = time.perf_counter()
        self._tick()

    def _tick(self):
        self._call = None
        due = min(self.total, int((time.perf_counter() - self.start) / self.interval) + 1)
        senders = self.senders
        while self.sent < due:
            senders[self.sent % len(senders)].send()
            self.sent += 1
        if self.sent < self.total:
            delay = self.start + self.sent * self.interval - time.perf_counter()
            self._call = self.reactor.callLater(max(0.0, delay), self._tick)

    def stop(self):
        if self._call is not None and self._call.active():
            self._call.cancel()


class UserTally(Tally):
    """
    A normal user's L{Tally}, which also counts the attackers' lines it is
    sent (the flooder's and the reconnector's, by their markers), and fires
    C{finished} once it has every message or its connection is gone.
    """

    def __init__(self, run, expected, client, sender=None):
        super().__init__(run, expected, sender)
        self.attacks = collections.Counter()  # marker letter -> lines
        self.run = run
        self.finished = DeferredList([self.done, client.lost], fireOnOneCallback=True,
                                     consumeErrors=True)

    def feed(self, data):
        if b"\n" not in data:
            return super().feed(data)
        whole = self.tail + data
        self.attacks.update(ATTACK_MARKER.findall(whole, 0, whole.rfind(b"\n") + 1))
        deliveries = self.deliveries
        before = len(deliveries)
        super().feed(data)
        if len(deliveries) > before:
            worst = max(deliveries[before:])
            if worst > self.run.worst[0]:  # the slowest delivery, and when it was sent
                self.run.worst = (worst, self.last - worst)

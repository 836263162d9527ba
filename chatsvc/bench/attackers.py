"""
The attackers of ``chatsvc-bench abuse`` that come and go on connections of
their own, all from the one attackers' address but the listers, each from
an address of its own (L{chatsvc.bench.visits}):

- L{Unnamed}: one connection that never chooses a name;
- L{Reconnector}: names itself, joins the room, says a burst, hangs up and
  does it again as fast as it can, each time under a new name;
- L{Squatter}: opens new connections at a steady rate (10 a second) that
  never choose a name, and keeps them;
- L{RoomSpammer}: creates rooms as fast as the server lets it, hanging up
  and coming back after each burst and whenever it is refused;
- L{Lister}: sends C{list} again and again, reading every answer as fast
  as it comes; L{Listers}: several, each from an address of its own.

Each counts what became of it: connections tried, let in and refused (and
what the server said), lines said, rooms made. The flooder and the
non-reader, which stay in the room, are L{chatsvc.bench.abusers}.
"""

import collections
import re
import time

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall, deferLater

from chatsvc.bench.report import percentile
from chatsvc.bench.server import BenchError
from chatsvc.bench.visits import Refused, named, prompted, toldOf

RECONNECT_MARKER = b"R"  # the reconnector's lines: R<seq>.<T>, padded


class Discard:
    """A client's tally that only counts bytes: for what an attacker does not read."""

    def __init__(self):
        self.tail = b""

    def feed(self, data):
        pass


class Attacker:
    """
    One attacker: L{start} sets it going, L{stop} ends it and closes its
    connections, L{metrics} says what became of it (keys prefixed with its
    C{kind}, the name --attackers knows it by).
    """

    kind = ""
    role = "a"  # the letter in its screen names
    # Seconds to wait after a refusal before trying again: a loop of instant
    # refusals would spend the bench's core (shared with the normal users it
    # times) rather than the server's.
    retryDelay = 0.01

    def __init__(self, run, address, settings, room):
        self.run = run
        self.address = address
        self.settings = settings  # the server's limits, as its own parser read them
        self.room = room
        self.tried = 0
        self.admitted = 0
        self.refusals = collections.Counter()  # what the server said -> times
        self.running = False
        self.started = None
        self.stopped = None
        self._serial = 0
        self._loop = None

    def newName(self):
        self._serial += 1
        return self.run.name(self.role, self._serial)

    async def enter(self, name=None):
        """A new connection, prompted (and named if C{name}); None if it was refused."""
        self.tried += 1
        try:
            client = self.mine(await prompted(self.run, self.address, name or self.kind))
            if not self.running:  # stopped meanwhile
                client.transport.abortConnection()
                return None
            if name is not None:
                await named(self.run, client, name)
        except Refused as refusal:
            self.refusals[refusal.told] += 1
            if self.retryDelay and self.running:
                await deferLater(self.run.reactor, self.retryDelay, lambda: None)
            return None
        self.admitted += 1
        return client

    def start(self):
        self.running = True
        self.started = time.perf_counter()
        self._loop = Deferred.fromCoroutine(self._guarded())

    async def _guarded(self):
        try:
            await self.attack()
        except BenchError:
            if self.running and not self.run.expired:
                raise
        except Exception as e:  # noqa: BLE001 (one line in the run's errors, not a traceback)
            self.run.errors.append(f"{self.kind}: {e.__class__.__name__}: {e}")

    async def attack(self):
        raise NotImplementedError

    async def stop(self):
        """Stop attacking and close every connection it has; fires once it has stopped."""
        if not self.running:
            return
        self.running = False
        self.stopped = time.perf_counter()
        self.hangUp()
        if self._loop is not None:
            await self._loop

    def hangUp(self):
        for client in self.run.clients:
            if getattr(client, "attacker", None) is self and client.transport is not None:
                client.transport.abortConnection()

    def mine(self, client):
        client.attacker = self
        return client

    def seconds(self):
        end = self.stopped or time.perf_counter()
        return end - self.started if self.started else 0

    def metrics(self) -> dict:
        k = self.kind
        told = self.refusals.most_common()
        return {f"{k}_tried": self.tried, f"{k}_admitted": self.admitted,
                f"{k}_refused": sum(self.refusals.values()),
                f"{k}_told": [[n, line] for line, n in told[:3]]}


class Unnamed(Attacker):
    """One connection that never chooses a name: closed at --login-timeout, or made way."""

    kind = "unnamed"

    def __init__(self, *args):
        super().__init__(*args)
        self.client = None
        self.connectedAt = self.lostAt = None
        self.closed = Deferred()  # fires once the server closed it (or it never got in)

    async def attack(self):
        client = await self.enter()
        if client is None:
            self.closed.callback(None)
            return
        self.client = client
        self.connectedAt = time.perf_counter()

        def lost(_):
            if self.running:
                self.lostAt = time.perf_counter()
            self.closed.callback(None)
        client.lost.addCallback(lost)

    def hangUp(self):
        pass  # it waits for the server to close it: the run's end closes it otherwise

    def metrics(self):
        m = super().metrics()
        m["unnamed_admitted"] = self.client is not None
        m["unnamed_closed"] = self.lostAt is not None
        m["unnamed_after_s"] = (None if self.lostAt is None
                                else round(self.lostAt - self.connectedAt, 2))
        if self.client is None:  # refused at once
            m["unnamed_told"] = next(iter(self.refusals), None)
        else:
            told = [line for line in self.client.recent if self.run.dialect.isError(line)]
            m["unnamed_told"] = told[-1] if told else None
        if self.client is not None and self.lostAt is None:
            m["unnamed_connected_s"] = round(time.perf_counter() - self.connectedAt, 2)
        return m


class Reconnector(Attacker):
    """
    The reconnecting flooder: connects, names itself, joins the room and says
    a burst of C{burst} lines (C{R<seq>.<T>}, padded to C{payload} bytes) in one
    write, then hangs up (half-closes, so the lines are not lost to a reset,
    and reads the rest away) and at once connects again under a new name. A
    server whose flood control is per connection gives each connection a
    fresh burst.
    """

    kind = "reconnector"
    role = "x"

    def __init__(self, run, address, settings, room, burst, payload):
        super().__init__(run, address, settings, room)
        self.burst = burst
        self.filler = b"x" * payload
        self.sent = 0  # lines written on connections it was let in on

    async def attack(self):
        d = self.run.dialect
        while self.running:
            client = await self.enter(self.newName())
            if client is None:
                continue
            lines = [d.join(self.room).encode("utf-8") + b"\n"]
            for _ in range(self.burst):
                self.sent += 1
                marker = b"%s%d.%d" % (RECONNECT_MARKER, self.sent, self.run.clock())
                lines.append(d.say(marker + self.filler[len(marker):]))
            client.startCounting(Discard())
            client.transport.write(b"".join(lines))
            client.transport.loseWriteConnection()  # the server reads it all, then closes

    def metrics(self):
        m = super().metrics()
        seconds = self.seconds()
        m["reconnector_lines_sent"] = self.sent
        m["reconnector_per_s"] = round(self.admitted / seconds, 1) if seconds else None
        return m


class Squatter(Attacker):
    """
    Opens C{rate} connections a second that never choose a name, and keeps
    each until the server closes it: it would take every login slot, so that
    people who take a moment to type their name are made to make way.
    """

    kind = "squatter"

    def __init__(self, run, address, settings, room, rate):
        super().__init__(run, address, settings, room)
        self.rate = rate
        self.open = set()
        self.closings = collections.Counter()  # what the server said closing one -> times
        self._ticker = LoopingCall(self._open)
        self._ticker.clock = run.reactor

    async def attack(self):
        self._ticker.start(1.0 / self.rate)

    def _open(self):
        d = Deferred.fromCoroutine(self._one())
        d.addErrback(lambda f: self.run.errors.append(f"squatter: {f.getErrorMessage()}"))

    async def _one(self):
        client = await self.enter()
        if client is None:
            return
        self.open.add(client)
        client.lost.addCallback(lambda _: self._closed(client))

    def _closed(self, client):
        self.open.discard(client)
        if self.running:
            self.closings[toldOf(client)] += 1

    async def stop(self):
        if self._ticker.running:
            self._ticker.stop()
        await super().stop()

    def metrics(self):
        m = super().metrics()
        m["squatter_closed_by_server"] = sum(self.closings.values())
        m["squatter_open_at_end"] = len(self.open)
        m["squatter_closed_told"] = [[n, line] for line, n in
                                     self.closings.most_common(2)]
        return m


class RoomSpammer(Attacker):
    """
    Creates rooms (C{bench-RUNID-sN}) as fast as it is let: names itself, asks
    for C{burst} rooms in one write, reads the answers, hangs up at the first
    refusal or once all are answered, and connects again.
    """

    kind = "roomspam"
    role = "s"

    def __init__(self, run, address, settings, room, burst):
        super().__init__(run, address, settings, room)
        self.burst = burst
        self.asked = 0
        self.created = 0
        self.createRefusals = collections.Counter()

    def prefix(self):
        return self.run.room("-s")

    async def attack(self):
        d = self.run.dialect
        prefix = f"* You joined {self.prefix()}"
        while self.running:
            client = await self.enter(self.newName())
            if client is None:
                continue
            names = [f"{self.prefix()}{self.asked + i}" for i in range(1, self.burst + 1)]
            self.asked += len(names)
            client.send("\n".join(d.create(name) for name in names))
            answered = [0]

            def answer(line):
                if line.startswith(prefix):
                    self.created += 1
                    answered[0] += 1
                elif d.isError(line):
                    self.createRefusals[line] += 1
                    return True  # refused: come back on a new connection
                return answered[0] >= len(names)

            try:
                await client.expect(answer, "the answers to create", errors=False)
            except BenchError:
                pass  # closed: come back
            client.transport.loseConnection()
            await client.lost

    def metrics(self):
        m = super().metrics()
        m["roomspam_asked"] = self.asked
        m["roomspam_created"] = self.created
        m["roomspam_create_refused"] = sum(self.createRefusals.values())
        m["roomspam_create_told"] = [[n, line] for line, n in
                                     self.createRefusals.most_common(2)]
        return m


# Bytes a lister's socket read takes at once (Twisted's default is 64 KiB):
# a 2 MB answer to list in a few reads, so that the bench's own CPU, which
# times the normal users, is not what limits the listers.
LIST_READ = 1 << 20


class ListAnswers:
    """
    A lister's tally: counts the bytes of the answers to C{list} and sees
    each one's end (the answer to C{who} sent after it) by searching the
    chunks as they come, never splitting them into lines.
    """

    END = b"\n* Online ("  # the answer to who in the Lobby: the list before it is whole
    ROOMS = re.compile(rb"\* Rooms \((\d+)\)")
    TAIL = 32  # bytes kept from one read to the next: a marker may straddle two

    def __init__(self, client):
        self.tail = b""  # set by startCounting: the rest of the line being read
        self.bytes = 0
        self.listed = None  # rooms the last answer said there are
        self._counted = False  # this answer's count of rooms has been read
        self._waiting = None
        client.lost.addCallback(lambda _: self._fire(False))

    def next(self) -> Deferred:
        """Fires True once the answer to the list just sent has all arrived, False if closed."""
        self._counted = False
        self._waiting = Deferred()
        return self._waiting

    def feed(self, data):
        self.bytes += len(data)
        seen = self.tail + data
        if not self._counted:
            match = self.ROOMS.search(seen)
            if match:
                self.listed, self._counted = int(match.group(1)), True
        end = seen.find(self.END)
        keep = len(seen) - self.TAIL
        if end >= 0:
            keep = max(keep, end + len(self.END))  # never the same end twice
        self.tail = seen[max(0, keep):]
        if end >= 0:
            self._fire(True)

    def _fire(self, answered):
        d, self._waiting = self._waiting, None
        if d is not None:
            d.callback(answered)


class Lister(Attacker):
    """
    Sends C{list} again and again from the Lobby, and the next one as soon as
    the whole answer has arrived: reads as fast as the server sends.
    """

    kind = "lister"
    role = "l"

    def __init__(self, *args):
        super().__init__(*args)
        self.lists = 0
        self.bytes = 0
        self.times = []
        self.listed = None  # rooms the last answer said there are

    async def attack(self):
        ask = b"list\n" + self.run.dialect.sync().encode("utf-8") + b"\n"
        while self.running:
            client = await self.enter(self.newName())
            if client is None:
                continue
            client.transport.bufferSize = LIST_READ
            answers = ListAnswers(client)
            client.startCounting(answers)
            while self.running:
                start, before = time.perf_counter(), answers.bytes
                client.transport.write(ask)
                if not await answers.next():
                    break  # closed: come back
                self.lists += 1
                self.times.append(time.perf_counter() - start)
                self.bytes += answers.bytes - before
                self.listed = answers.listed

    def metrics(self):
        return listerMetrics([self])


class Listers:
    """
    K listers, each from an address of its own, as K people each listing:
    one attacker to the workload (L{Attacker}'s interface), whose metrics
    add theirs up.
    """

    kind = Lister.kind

    def __init__(self, listers):
        self.listers = list(listers)
        for number, lister in enumerate(self.listers, 1):
            lister.role = f"l{number}-"  # names of their own: bTOKENl2-1, bTOKENl2-2, ...

    @property
    def retryDelay(self):
        return self.listers[0].retryDelay

    @retryDelay.setter
    def retryDelay(self, seconds):
        for lister in self.listers:
            lister.retryDelay = seconds

    def start(self):
        for lister in self.listers:
            lister.start()

    async def stop(self):
        for lister in self.listers:
            await lister.stop()

    def metrics(self):
        return listerMetrics(self.listers)


def listerMetrics(listers):
    """The metrics of one or more listers, added up (C{lister_}...)."""
    refusals = collections.Counter()
    for lister in listers:
        refusals.update(lister.refusals)
    times = sorted(t for lister in listers for t in lister.times)
    seconds = max((lister.seconds() for lister in listers), default=0)
    lists = sum(lister.lists for lister in listers)
    listed = [lister.listed for lister in listers if lister.listed is not None]
    m = {"lister_listers": len(listers),
         "lister_tried": sum(lister.tried for lister in listers),
         "lister_admitted": sum(lister.admitted for lister in listers),
         "lister_refused": sum(refusals.values()),
         "lister_told": [[n, line] for line, n in refusals.most_common(3)],
         "lister_lists": lists,
         "lister_lists_per_s": round(lists / seconds, 1) if seconds else None,
         "lister_bytes": sum(lister.bytes for lister in listers),
         "lister_rooms_listed": max(listed) if listed else None}
    for name, p in (("p50", 50), ("p99", 99), ("max", 100)):
        value = percentile(times, p)
        m[f"lister_{name}_ms"] = None if value is None else round(value * 1000, 1)
    return m


# The attackers that come and go, by the name --attackers knows them by.
KINDS = {cls.kind: cls for cls in (Unnamed, Reconnector, Squatter, RoomSpammer, Lister)}

"""
The workloads. Each one is set up (connections named, rooms joined, a C{who}
barrier so that no setup line is counted), then measured, and returns its
metrics as a flat dict. L{Workload.prepare} runs before the server starts
(the join workload preloads its database there).
"""

import os
import re
import statistics
import time

from twisted.internet.defer import gatherResults

from chatsvc.bench import sink
from chatsvc.bench.client import Sender, Tally
from chatsvc.bench.report import latencies, percentile
from chatsvc.bench.server import BenchError, countMessages, preloadHistory, rssKiB

_OLDER = re.compile(r"^\* (\d+) older messages?\b")


class Workload:
    name = ""
    db = None  # a database prepared before the server starts, if any

    def params(self) -> dict:
        raise NotImplementedError

    def clientsNeeded(self) -> int:
        raise NotImplementedError

    def writes(self) -> tuple:
        """(rooms, messages) one run creates and says on a server given with --connect."""
        return 0, 0

    def prepare(self, workdir, progress):
        """Before the first run's server starts (only when the bench starts it)."""

    async def measure(self, run) -> tuple:
        """The metrics (a flat dict) and whether the run completed."""
        raise NotImplementedError

    def afterServer(self, metrics, server):
        """After the server the bench started for the run has stopped."""


# Shortest interval over which the tick-counted shares (the server's kernel
# time, the machine's idle time) are given: over one second a tick or two
# is at most 2 % of a core.
MIN_CPU_INTERVAL = 1.0


def cpuShares(before, after) -> dict:
    """
    CPU % of one core used by the server, the bench and everything else
    between two L{chatsvc.bench.run.Run.cpu} readings, over the time between
    them. "Other" is the machine's busy time less the server's and the
    bench's: what else ran meanwhile (another program, the hypervisor).
    """
    wall = after.wall - before.wall

    def share(field, precise=True):
        a, b = getattr(before, field), getattr(after, field)
        if a is None or b is None or wall <= 0 or (not precise and wall < MIN_CPU_INTERVAL):
            return None
        return b - a

    server, kernel, bench = share("server"), share("kernel", False), share("bench")
    host = share("host", False)
    other = None if None in (server, bench, host) else host - server - bench
    return {name: None if value is None else round(100 * value / wall, 1)
            for name, value in (("server_cpu_pct", server), ("server_sys_pct", kernel),
                                ("bench_cpu_pct", bench), ("other_cpu_pct", other))}


def _rate(count, seconds):
    return round(count / seconds, 1) if seconds > 0 else None


class Fanout(Workload):
    """R receivers and S senders in one room; every sender says M messages, window W."""

    name = "fanout"

    def __init__(self, receivers, senders, messages, window, payload):
        self.receivers, self.senders, self.messages = receivers, senders, messages
        self.window, self.payload = window, payload

    def params(self):
        return {"receivers": self.receivers, "senders": self.senders,
                "messages": self.messages, "window": self.window, "payload": self.payload}

    def clientsNeeded(self):
        return self.receivers + self.senders

    def writes(self):
        return 1, self.senders * self.messages

    async def measure(self, run):
        d, room = run.dialect, run.room()
        creator = await run.connect(run.name("s", 1))
        creator.send(d.create(room))
        await creator.expect(d.joined(room), f"the creation of {room}")

        def member(role, index):
            async def joined():
                client = await run.connect(run.name(role, index))
                client.send(d.join(room))
                await client.expect(d.joined(room), f"joining {room}")
                return client
            return joined

        senders = [creator] + await run.gather(
            [member("s", i) for i in range(2, self.senders + 1)])
        receivers = await run.gather([member("r", i) for i in range(1, self.receivers + 1)])
        everyone = senders + receivers
        # Every join notice has arrived once each client has its answer to who.
        await run.gather([lambda c=c: run.sync(c, room) for c in everyone])
        await run.settle(room, everyone)
        return await self.measureSending(run, senders, receivers)

    async def measureSending(self, run, senders, receivers):
        """Everyone is in the room and synced: send and count (the IRC variant differs)."""
        return await _measureSending(run, senders, receivers, self.messages,
                                     self.window, self.payload, fanout=True)


class Counting:
    """
    How the clients of a sending run count what they receive, natively: each
    sender's window is released by its own echo, and every line is a bench
    message. L{chatsvc.bench.irc.IrcCounting} is the IRC way.
    """

    acks = "echoes"

    def __init__(self, run, senders, senderClients, receivers, fanout):
        self.run, self.senders, self.fanout = run, senders, fanout
        total = sum(s.count for s in senders)
        self.total = total
        self.expectedLines = (total * (len(senderClients) + len(receivers)) if fanout
                              else total)
        self.pinned = ()  # receivers that must stay in the bench (not go to a sink)

    def startSenders(self, senderClients):
        expected = self.total if self.fanout else self.senders[0].count
        for sender, client in zip(self.senders, senderClients):
            client.startCounting(self.run.tallyClass(self.run, expected, sender))

    def startReceiver(self, client):
        client.startCounting(self.run.tallyClass(self.run, self.total))

    def check(self, tallies, far, lines):
        marked = sum(t.messages for t in tallies) + far.messages
        if lines != marked:
            self.run.errors.append(f"{lines - marked} received lines were not bench messages")

    def more(self, tallies, far, everyone):
        return {}


async def _measureSending(run, senderClients, receivers, count, window, payload, fanout,
                          counting=Counting):
    run.clock = type(run.clock)()  # the epoch of the measurement
    run.deliveries = type(run.deliveries)("q")
    senders = [Sender(run, client, sid, count, window, payload)
               for sid, client in enumerate(senderClients, 1)]
    how = counting(run, senders, senderClients, receivers, fanout)
    total, expectedLines = how.total, how.expectedLines
    how.startSenders(senderClients)
    receivers, moved = sink.split(run, receivers, how.pinned)  # --sinks: counted elsewhere
    for client in receivers:
        how.startReceiver(client)
    sinks = await sink.offload(run.reactor, run, moved, total, run.sinks) if moved else []
    everyone = senderClients + receivers
    run.progress = lambda: (
        f"{sum(s.acked for s in senders):,}/{total:,} {how.acks}, "
        f"{sum(c.tally.lines for c in everyone):,}/{expectedLines:,} lines")
    run.measuring(senders)
    cpu0 = run.cpu()
    for sender in senders:
        sender.start()
    complete = await run.race(gatherResults([c.tally.done for c in everyone]
                                            + [s.done for s in sinks]))
    cpu1 = run.cpu()
    far = await sink.collect(run, sinks) if sinks else sink.NOTHING
    if far.cpu_s:  # the sinks' CPU is the bench's too
        cpu1 = cpu1._replace(bench=cpu1.bench + far.cpu_s)
    tallies = [c.tally for c in everyone]
    elapsed = _lastLine(everyone, far) / 1e6
    messages = sum(s.acked for s in senders)
    lines = sum(t.lines for t in tallies) + far.lines
    how.check(tallies, far, lines)
    if lines < expectedLines:
        run.errors.append(f"{expectedLines - lines} of {expectedLines} lines did not arrive")
    metrics = {"messages": messages, "messages_expected": total}
    if fanout:
        metrics.update({"lines": lines, "lines_expected": expectedLines})
    metrics.update({"elapsed_s": round(elapsed, 3), "msgs_per_s": _rate(messages, elapsed)})
    if fanout:
        metrics["lines_per_s"] = _rate(lines, elapsed)
    metrics.update(latencies("echo", run.echoes))  # over IRC: the witness's copy
    worst = max((s.worst for s in senders), default=(-1, None))[1]
    # Tells a warm-up outlier (near 0) from one in the middle of the run.
    metrics["echo_max_sent_at_s"] = None if worst is None else round(worst / 1e6, 3)
    if fanout:
        metrics.update(latencies("delivery", run.deliveries))
        metrics["delivery_timed"] = len(run.deliveries)  # the probes' and senders' copies
    metrics.update(cpuShares(cpu0, cpu1))
    if fanout:
        metrics["server_us_per_line"] = serverMicrosPerLine(cpu0, cpu1, lines)
    metrics.update(how.more(tallies, far, everyone))
    return metrics, complete


def _lastLine(timed, far):
    """
    When the run's last line arrived (run clock): at the clients the bench
    reads at once. A sink reads up to sink.READ_EVERY late, so its time
    counts only when the bench reads no one itself.
    """
    last = [c.tally.last for c in timed]
    return max(last) if last else far.last


def serverMicrosPerLine(before, after, lines):
    """The server's CPU time per delivered line (µs): its cost, whatever the bench's pace."""
    if before.server is None or after.server is None or not lines:
        return None
    return round((after.server - before.server) * 1e6 / lines, 3)


class Store(Workload):
    """S senders, each in a room of its own, saying M messages with window W."""

    name = "store"

    def __init__(self, senders, messages, window, payload):
        self.senders, self.messages, self.window, self.payload = senders, messages, window, payload

    def params(self):
        return {"senders": self.senders, "messages": self.messages,
                "window": self.window, "payload": self.payload}

    def clientsNeeded(self):
        return self.senders

    def writes(self):
        return self.senders, self.senders * self.messages

    async def measure(self, run):
        d = run.dialect

        def own(index):
            async def created():
                room = run.room(f"-{index}")
                client = await run.connect(run.name("s", index))
                client.send(d.create(room))
                await client.expect(d.joined(room), f"the creation of {room}")
                await run.sync(client, room)
                return client
            return created

        senders = await run.gather([own(i) for i in range(1, self.senders + 1)])
        return await _measureSending(run, senders, [], self.messages, self.window,
                                     self.payload, fanout=False)

    def afterServer(self, metrics, server):
        metrics["rows_stored"] = countMessages(server.db)  # every echo is a row


class Join(Workload):
    """J fresh users, one after the other, join a room holding H messages."""

    name = "join"
    ROOM = "bench-history"

    def __init__(self, history, joins, payload):
        self.history, self.joins, self.payload = history, joins, payload
        self.preload = None  # seconds spent preloading

    def params(self):
        return {"history": self.history, "joins": self.joins, "payload": self.payload}

    def clientsNeeded(self):
        return self.joins + 1

    def writes(self):
        return 1, self.history  # the room it feeds, without a preloaded database

    def prepare(self, workdir, progress):
        self.db = os.path.join(workdir, "history.sqlite3")
        progress(f"preloading {self.history:,} messages into {self.db}")
        start = time.perf_counter()
        preloadHistory(self.db, self.ROOM, self.history, self.payload)
        self.preload = round(time.perf_counter() - start, 2)
        progress(f"preloaded in {self.preload} s")

    async def _feed(self, run):
        """Against a running server: make a room and say H messages in it."""
        d, room = run.dialect, run.room("-history")
        feeder = await run.connect(run.name("f", 1))
        feeder.send(d.create(room))
        await feeder.expect(d.joined(room), f"the creation of {room}")
        if self.history:
            sender = Sender(run, feeder, 1, self.history, 100, self.payload)
            tally = Tally(run, self.history, sender)
            feeder.startCounting(tally)
            run.progress = lambda: f"feeding history: {sender.acked:,}/{self.history:,}"
            sender.start()
            if not await run.race(tally.done):
                raise BenchError(f"feeding {self.history} messages did not finish in time")
        feeder.transport.loseConnection()
        await feeder.lost
        return room

    async def measure(self, run):
        d = run.dialect
        room = self.ROOM if self.db else await self._feed(run)

        def fresh(index):
            async def arrived():
                client = await run.connect(run.name("j", index))
                await run.sync(client)  # the welcome and help have all arrived
                return client
            return arrived

        joiners = await run.gather([fresh(i) for i in range(1, self.joins + 1)])
        times, sizes, counts, replays, older = [], [], [], [], []
        run.progress = lambda: f"{len(times)}/{self.joins} joins"
        complete = True
        try:
            for client in joiners:
                start = time.perf_counter()
                client.send(f"{d.join(room)}\n{d.sync()}")
                lines = await client.expect(d.synced(room), f"the replay of {room}")
                times.append(time.perf_counter() - start)
                answer = lines[:-1]
                if not answer or not d.joined(room)(answer[0]):
                    raise BenchError(f"the join's answer began {answer[:1]!r}")
                sizes.append(sum(len(line.encode("utf-8")) + 1 for line in answer))
                counts.append(len(answer))
                replays.append(sum(1 for line in answer if line.startswith("[")))
                said = [int(m.group(1)) for m in map(_OLDER.match, answer) if m]
                older.append(said[0] if said else 0)
                client.send(d.leave())
                await client.expect(d.left(room), f"leaving {room}")
        except BenchError:
            if not run.expired:
                raise
            complete = False
        times.sort()
        sizes.sort()
        metrics = {"joins": len(times)}
        for name, p in (("p50", 50), ("p99", 99), ("max", 100)):
            value = percentile(times, p)
            metrics[f"join_{name}_ms"] = None if value is None else round(value * 1000, 3)
        metrics.update({
            "bytes_p50": percentile(sizes, 50), "bytes_p99": percentile(sizes, 99),
            "lines_per_join": statistics.median(counts) if counts else None,
            "replay_lines": statistics.median(replays) if replays else None,
            "older_reported": statistics.median(older) if older else None,
        })
        if self.preload is not None:
            metrics["preload_s"] = self.preload
        return metrics, complete

    def afterServer(self, metrics, server):
        # It loads each room's newest messages from the database before serving.
        metrics["server_start_s"] = round(server.startup, 3)


class Connections(Workload):
    """N named idle connections: the server's RSS per connection."""

    name = "connections"

    def __init__(self, connections):
        self.connections = connections

    def params(self):
        return {"connections": self.connections}

    def clientsNeeded(self):
        return self.connections + 1

    async def measure(self, run):
        if not run.pid:
            raise BenchError("the server's PID is unknown (give --pid): RSS needs it")
        warm = await run.connect(run.name("w", 1))  # first-connection costs aside
        await run.sync(warm)
        before = rssKiB(run.pid)
        opened = []
        run.progress = lambda: f"{len(opened):,}/{self.connections:,} connections"

        def one(index):
            async def opening():
                client = await run.connect(run.name("c", index))
                opened.append(client)
                return client
            return opening

        cpu0, start = run.cpu(), time.perf_counter()
        await run.gather([one(i) for i in range(1, self.connections + 1)])
        elapsed = time.perf_counter() - start
        cpu = cpuShares(cpu0, run.cpu())
        after = rssKiB(run.pid)
        if before is None or after is None:
            raise BenchError(f"could not read /proc/{run.pid}/status")
        return {
            "connections": len(opened),
            "connect_s": round(elapsed, 3),
            "conns_per_s": _rate(len(opened), elapsed),
            "rss_before_kib": before,
            "rss_after_kib": after,
            "rss_per_conn_bytes": round((after - before) * 1024 / len(opened)),
            **cpu,
        }, True


WORKLOADS = {w.name: w for w in (Fanout, Join, Store, Connections)}

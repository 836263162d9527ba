"""
``chatsvc-bench abuse``: what normal users see while a server defends itself.

Each repeat runs the same normal load twice, each time against a fresh server
started with the server's own abuse limits (no ``--flood-rate 0``, unlike the
capacity workloads): first the N normal users alone, then the same N users
plus three abusers:

- a *flooder* in the room that writes lines as fast as its socket takes them
  (flood control should pause reading it, drop nothing, and let it through at
  the flood rate after the burst);
- a *non-reader* in the room that stops reading at once (its transport is
  paused, its receive buffer is small and it announces an Ethernet-sized MSS,
  so that the server's kernel does not hold megabytes for it, as it would with
  loopback's 64 KiB segments): the server should disconnect it once more than
  ``--max-output-buffer`` waits to be sent;
- a client that connects and *never names itself*: the server should close it
  at ``--login-timeout``.

The normal users are in one room; each says M bench messages (the marker
``@SID.SEQ.T`` of L{chatsvc.bench.client}) at a steady rate below the flood
limit, open loop (on a schedule, not waiting for echoes), and reads everything.
The flooder's lines carry their own marker (C{F<seq>.<T>}), so they are never
counted as normal messages.
"""

import argparse
import os
import re
import shutil
import socket
import sqlite3
import statistics
import sys
import tempfile
import time

from twisted.internet import endpoints
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.protocol import Factory
from twisted.internet.task import LoopingCall
from twisted.python import usage

from chatsvc.bench import report
from chatsvc.bench.abusers import (
    FLOOD_MARKER,
    Flooder,
    NonReaderWatch,
    OneClient,
    SocketOptionsConnector,
)
from chatsvc.bench.client import DIALECTS, BenchClient, Tally
from chatsvc.bench.report import latencies
from chatsvc.bench.run import Run, Runner
from chatsvc.bench.server import (
    PROJECT_ROOT,
    BenchError,
    ServerProcess,
    capacityArgs,
    serverCommand,
)
from chatsvc.bench.workloads import Workload, cpuShares

PHASES = (("alone", "without abusers"), ("abused", "with abusers"))
# protocol.py's warning when a client that does not read is disconnected.
_OVERFLOW = re.compile(rb"Disconnecting <User ([^>\s]+)> from .*?: (\d+) bytes wait to be"
                       rb" sent, over the limit of (\d+)")


# The servers: default limits, and their warnings watched.

def defaultLimitsCommand(db, max_clients, extra=()):
    """The bench's server command without its capacity options: the server's own limits."""
    command = serverCommand(db, max_clients)
    capacity = capacityArgs()
    if capacity and command[-len(capacity):] == capacity:
        del command[-len(capacity):]
    return command + list(extra)


def serverSettings(extra):
    """The server's settings with these extra arguments, as its own parser reads them."""
    from chatsvc.tap import Options

    options = Options()
    options.parseOptions(["--listen", "tcp:0:interface=127.0.0.1",
                          "--db", os.path.join(tempfile.gettempdir(), "unused.sqlite3"),
                          *extra])
    return options.settings


class AbuseServer(ServerProcess):
    """A server with its default abuse limits, whose overflow warnings are noted."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.overflows = {}  # name -> (perf_counter when seen, queued bytes, limit)

    @property
    def command(self):
        return defaultLimitsCommand(self.db, self.max_clients, self.extra)

    def start(self, timeout=60.0) -> Deferred:
        # ServerProcess.start, with this command.
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (PROJECT_ROOT, env.get("PYTHONPATH")) if p)
        self._spawned = time.perf_counter()
        transport = self.reactor.spawnProcess(self, sys.executable, self.command,
                                              env=env, path=self.workdir)
        self.pid = transport.pid
        self._shutdownTrigger = self.reactor.addSystemEventTrigger("before", "shutdown", self.kill)
        call = self.reactor.callLater(timeout, self._startTimedOut, timeout)
        d = self._hosting
        d.addBoth(lambda result: (call.active() and call.cancel(), result)[1])
        return d

    def _lines(self, fd, data):
        whole = self._partial[fd] + data
        super()._lines(fd, data)
        end = whole.rfind(b"\n") + 1
        for match in _OVERFLOW.finditer(whole, 0, end):
            name = match.group(1).decode("utf-8", "replace")
            self.overflows.setdefault(
                name, (time.perf_counter(), int(match.group(2)), int(match.group(3))))


def memoryKiB(pid):
    """(VmRSS, VmHWM) of C{pid} in KiB: resident now and at its peak; None where unknown."""
    found = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    found[line[:5]] = int(line.split()[1])
    except OSError:
        pass
    return found.get("VmRSS"), found.get("VmHWM")


# The normal users

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
    """A normal user's L{Tally}, which also counts the flooder's lines it is sent."""

    def __init__(self, run, expected, sender=None):
        super().__init__(run, expected, sender)
        self.flood = 0
        self.run = run

    def feed(self, data):
        if b"\n" not in data:
            return super().feed(data)
        whole = self.tail + data
        self.flood += len(FLOOD_MARKER.findall(whole, 0, whole.rfind(b"\n") + 1))
        deliveries = self.deliveries
        before = len(deliveries)
        super().feed(data)
        if len(deliveries) > before:
            worst = max(deliveries[before:])
            if worst > self.run.worst[0]:  # the slowest delivery, and when it was sent
                self.run.worst = (worst, self.last - worst)


# The abusers

# The workload

class Abuse(Workload):
    name = "abuse"

    def __init__(self, users, messages, rate, payload, floodLines, abuserPayload, grace,
                 rcvbuf, mss, settings):
        self.users, self.messages, self.rate, self.payload = users, messages, rate, payload
        self.floodLines, self.abuserPayload, self.grace = floodLines, abuserPayload, grace
        self.rcvbuf, self.mss = rcvbuf, mss
        self.settings = settings  # the servers' limits, read with the server's own parser

    @classmethod
    def fromArgs(cls, args, parser):
        """The workload of parsed arguments; misuse is reported through C{parser}."""
        if args.connect is not None:
            parser.error("abuse starts its own servers (two per repeat, with the server's"
                         " default limits): --connect does not apply")
        if args.protocol != "chatsvc" or getattr(args, "irc_server", None) or \
                getattr(args, "servers", None) not in (None, ["chatsvc"]):
            parser.error("abuse measures chatsvc's own limits: it starts chatsvc and speaks"
                         " its protocol only (no --protocol irc, --irc-server or --servers)")
        try:
            settings = serverSettings(args.server_arg)
        except usage.UsageError as e:
            parser.error(f"--server-arg: {e}")
        if args.abuser_payload > settings.max_line:
            parser.error(f"--abuser-payload {args.abuser_payload} is over the server's"
                         f" --max-line ({settings.max_line})")
        return cls(args.users, args.messages, args.rate, args.payload, args.flood_lines,
                   args.abuser_payload, args.grace, args.nonreader_rcvbuf,
                   args.nonreader_mss, settings)

    def params(self):
        return {"users": self.users, "messages": self.messages, "rate": self.rate,
                "payload": self.payload, "flood_lines": self.floodLines,
                "abuser_payload": self.abuserPayload, "grace": self.grace,
                "nonreader_rcvbuf": self.rcvbuf, "nonreader_mss": self.mss}

    def limits(self):
        s = self.settings
        return {"flood_rate": s.flood_rate, "flood_burst": s.flood_burst,
                "max_output_buffer": s.max_output_buffer, "login_timeout": s.login_timeout,
                "max_line": s.max_line}

    def clientsNeeded(self):
        return self.users + 3

    async def measurePhase(self, run, server, abused) -> tuple:
        """The metrics of one phase (unprefixed) and whether its normal load completed."""
        d, room = run.dialect, run.room()
        first = await run.connect(run.name("u", 1))
        first.send(d.create(room))
        await first.expect(d.joined(room), f"the creation of {room}")

        async def member(name, connect=None):
            client = await (connect or run.connect)(name)
            client.send(d.join(room))
            await client.expect(d.joined(room), f"{name} joining {room}")
            return client

        users = [first] + await run.gather(
            [lambda i=i: member(run.name("u", i)) for i in range(2, self.users + 1)])
        abusers = {}
        if abused:
            abusers["flooder"] = await member(run.name("f", 1))
            abusers["nonreader"] = await member(run.name("q", 1), self._connectNonReader(run))
            abusers["nonreader"].transport.pauseProducing()  # never reads again
            abusers["paused_at"] = time.perf_counter()
        # Every join notice has arrived once each reader has its answer to who.
        await run.gather([lambda c=c: run.sync(c, room)
                          for c in users + [abusers.get("flooder")] if c is not None])
        if abused:
            abusers["unnamed"] = await self._connectUnnamed(run)

        run.clock = type(run.clock)()
        run.deliveries = type(run.deliveries)("q")
        run.echoes = type(run.echoes)("q")
        run.worst = (-1, None)  # (µs, sent at µs) of the slowest delivery
        expected = self.users * self.messages
        senders = []
        for sid, client in enumerate(users, 1):
            sender = PacedSender(run, client, sid, self.messages, self.payload)
            senders.append(sender)
            client.startCounting(UserTally(run, expected, sender))
        flooder = None
        if abused:
            flooder = Flooder(abusers["flooder"], self.floodLines, self.abuserPayload, run.clock)
            abusers["flooder"].startCounting(flooder)
        pacer = Pacer(run.reactor, senders, self.rate)
        watch = NonReaderWatch(abusers.get("nonreader"), users[0]) if abused else None
        run.progress = lambda: (
            f"{'with' if abused else 'without'} abusers:"
            f" {sum(c.tally.messages for c in users):,}/{expected * self.users:,} deliveries"
            + (f", flooder {len(flooder.echoTimes)}/{flooder.written} echoed" if flooder else ""))

        rss0, _ = memoryKiB(run.pid)
        cpu0 = run.cpu()
        try:
            if watch:
                watch.begin()
            pacer.begin()
            if flooder:
                flooder.begin()
            try:
                complete = await run.race(gatherResults([c.tally.done for c in users]))
            finally:
                pacer.stop()
            cpu1 = run.cpu()
            # From the first send to the last delivery, plus the one send slot the
            # schedule gives each message (M/rate seconds for a server with no delay).
            last = max(c.tally.last for c in users) / 1e6
            elapsed = (last + pacer.interval) if last else None
            delivered = sum(c.tally.messages for c in users)
            total = expected * self.users
            if delivered > total:
                run.errors.append(f"{delivered - total} more normal messages arrived than"
                                  " were said")
            metrics = {
                "delivered": delivered, "expected": total, "lost": max(0, total - delivered),
                "elapsed_s": round(elapsed, 3) if elapsed else None,
                "lines_per_s": round(delivered / elapsed, 1) if elapsed else None,
                "offered_lines_per_s": round(self.users * self.users * self.rate, 1),
            }
            metrics.update(latencies("delivery", run.deliveries))
            sentAt = run.worst[1]
            metrics["delivery_max_sent_at_s"] = None if sentAt is None else round(sentAt / 1e6, 2)
            metrics.update(latencies("echo", run.echoes))
            cpu = cpuShares(cpu0, cpu1)
            metrics.update({k: cpu[k] for k in ("server_cpu_pct", "other_cpu_pct")})
            if abused and complete and not run.expired:
                await self._grace(run, abusers, watch)
            rss1, hwm = memoryKiB(run.pid)
            metrics.update({"rss_start_kib": rss0, "rss_end_kib": rss1, "rss_peak_kib": hwm})
            if abused:
                metrics.update(self._abuserMetrics(run, server, users, flooder, watch,
                                                   abusers, pacer.start))
        finally:
            if watch:
                watch.stop()
            for client in (abusers.get("flooder"), abusers.get("nonreader")):
                if client is not None and client.transport is not None:
                    client.transport.abortConnection()  # a flooder's buffer never drains
        return metrics, complete

    def _connectNonReader(self, run):
        options = [(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)]
        if self.mss:
            options.append((socket.IPPROTO_TCP, socket.TCP_MAXSEG, self.mss))

        async def connect(name):
            factory = OneClient(lambda: BenchClient(run.dialect, name))
            SocketOptionsConnector(run.host, run.port, factory, 30, run.reactor,
                                    options).connect()
            client = await factory.connected
            run.clients.append(client)
            await client.expect(run.dialect.prompt, "the name prompt")
            client.send(name)
            await client.expect(run.dialect.welcomed(name), f"the welcome of {name}")
            return client
        return connect

    async def _connectUnnamed(self, run):
        endpoint = endpoints.TCP4ClientEndpoint(run.reactor, run.host, run.port, timeout=30)
        client = await endpoint.connect(Factory.forProtocol(
            lambda: BenchClient(run.dialect, "unnamed")))
        run.clients.append(client)
        client.connectedAt = time.perf_counter()
        client.lostAt = None

        def lost(_):
            client.lostAt = time.perf_counter()
        client.lost.addCallback(lost)
        await client.expect(run.dialect.prompt, "the name prompt")
        return client

    async def _grace(self, run, abusers, watch):
        """After the load: wait (at most --grace s) for the abusers' outcomes still due."""
        waits = []
        if watch and not watch.closed.called:
            waits.append(watch.closed)
        if not abusers["unnamed"].lost.called and self.settings.login_timeout > 0:
            waits.append(abusers["unnamed"].lost)
        if not waits:
            return
        over = Deferred()
        remaining = [len(waits)]

        def one(result):
            remaining[0] -= 1
            if not remaining[0] and not over.called:
                over.callback(None)
            return result

        for d in waits:
            d.addBoth(one)
        call = run.reactor.callLater(self.grace, lambda: over.called or over.callback(None))
        run.progress = lambda: "waiting (at most --grace) for the abusers' outcomes"
        try:
            await run.race(over)
        finally:
            if call.active():
                call.cancel()

    def _abuserMetrics(self, run, server, users, flooder, watch, abusers, start):
        s = self.settings
        m = {}
        echoed = len(flooder.echoTimes)
        m["flood_written"] = flooder.written
        m["flood_sent"] = flooder.written - flooder.unsent()  # not in the bench's buffer
        m["flood_echoed"] = echoed
        m["flood_out_of_order"] = flooder.outOfOrder
        m["flood_rate_per_s"] = flooder.rateAfterBurst(s.flood_burst)
        seen = [c.tally.flood for c in users]
        m["flood_seen_min"] = min(seen)
        m["flood_seen_max"] = max(seen)
        if flooder.outOfOrder:
            run.errors.append(f"{flooder.outOfOrder} of the flooder's echoes came out of order")

        closedAt = watch.closedAt
        m["nonreader_disconnected"] = closedAt is not None
        overflow = server.overflows.get(abusers["nonreader"].name)
        if closedAt is None and overflow is not None:
            closedAt = overflow[0]
        paused = abusers["paused_at"]
        m["nonreader_after_s"] = None if closedAt is None else round(closedAt - paused, 2)
        m["nonreader_at_s"] = None if closedAt is None else round(closedAt - start, 2)
        m["nonreader_bytes_its_way"] = watch.bytesItsWay()
        m["nonreader_server_queued"] = overflow[1] if overflow else None
        m["nonreader_server_logged"] = overflow is not None

        unnamed = abusers["unnamed"]
        m["unnamed_closed"] = unnamed.lostAt is not None
        m["unnamed_after_s"] = (None if unnamed.lostAt is None
                                else round(unnamed.lostAt - unnamed.connectedAt, 2))
        told = [line for line in unnamed.recent if run.dialect.isError(line)]
        m["unnamed_told"] = told[-1] if told else None
        if unnamed.lostAt is None:
            m["unnamed_connected_s"] = round(time.perf_counter() - unnamed.connectedAt, 2)
        return m

    def afterPhase(self, metrics, server, run, abused):
        """After the phase's server stopped: what its database holds."""
        flooderName = run.name("f", 1)
        connection = sqlite3.connect(server.db)
        try:
            rows = connection.execute(
                "SELECT COUNT(*) FROM messages WHERE sender != ?", (flooderName,)).fetchone()[0]
            texts = [t for (t,) in connection.execute(
                "SELECT text FROM messages WHERE sender = ? ORDER BY seq", (flooderName,))]
        finally:
            connection.close()
        metrics["rows_stored"] = rows
        if rows != metrics["expected"] // self.users:
            run.errors.append(f"the database holds {rows} normal messages,"
                              f" not {metrics['expected'] // self.users}")
        if abused:
            seqs = [int(t[1:].split(".", 1)[0]) for t in texts]
            metrics["flood_stored"] = len(seqs)
            # Sent but never read: they waited in the socket buffers until the bench hung up.
            metrics["flood_unread"] = max(0, metrics["flood_sent"] - len(seqs))
            # Stored means read; read lines are 1..K with no gap, or some were dropped.
            gaps = (seqs[-1] - len(seqs)) if seqs else 0
            dupes = len(seqs) - len(set(seqs))
            metrics["flood_lost"] = gaps + dupes
            if seqs != list(range(1, len(seqs) + 1)):
                run.errors.append(f"the flooder's stored lines are not 1..{len(seqs)}:"
                                  f" {gaps} missing, {dupes} repeated")
            if len(seqs) < metrics["flood_echoed"]:
                run.errors.append(f"{metrics['flood_echoed']} flooder lines were echoed but"
                                  f" only {len(seqs)} stored")


# The runs

class AbuseBench(Runner):
    """Runs L{Abuse}: per repeat, one server without abusers and one with them."""

    async def runAll(self) -> list:
        workdir = tempfile.mkdtemp(prefix="chatsvc-bench-abuse-")
        try:
            results = [await self.runOnce(workdir, i) for i in range(1, self.args.repeat + 1)]
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        table(results, self.out)
        if self.args.json:
            report.append_json(self.args.json, results)
        return results

    async def runOnce(self, workdir, index):
        args, workload = self.args, self.workload
        result = report.Result(workload.name, workload.params(), run=index, runs=args.repeat)
        result.server = {"started": True, "limits": workload.limits()}
        for phase, _ in PHASES:
            metrics, complete, errors, info = await self._phase(workdir, index, phase)
            result.metrics.update({f"{phase}_{k}": v for k, v in metrics.items()
                                   if not k.startswith(("flood_", "nonreader_", "unnamed_"))})
            result.metrics.update({k: v for k, v in metrics.items()
                                   if k.startswith(("flood_", "nonreader_", "unnamed_"))})
            result.complete = result.complete and complete
            result.errors.extend(f"{phase}: {e}" for e in errors)
            result.server[phase] = info
        return result

    async def _phase(self, workdir, index, phase):
        args, workload = self.args, self.workload
        abused = phase == "abused"
        db = os.path.join(workdir, f"chat{index}-{phase}.sqlite3")
        server = AbuseServer(self.reactor, db, min(100_000, workload.clientsNeeded() + 10),
                             workdir, args.server_arg)
        info = {"args": server.command[3:]}
        errors = []
        try:
            port = await server.start(timeout=min(60.0, args.timeout))
        except BenchError as e:
            await server.stop()
            return {}, False, [str(e)], info
        info.update({"address": f"127.0.0.1:{port}", "pid": server.pid,
                     "startup_s": round(server.startup, 3)})
        run = Run(self.reactor, "127.0.0.1", port, DIALECTS[args.protocol](), args.timeout,
                  server.pid)
        progress = LoopingCall(lambda: self.say(
            f"run {index}/{args.repeat} {phase}, {run.clock() / 1e6:.0f} s: {run.progress()}"))
        if not args.quiet:
            progress.start(2.0, now=False)
        metrics, complete = {}, False
        try:
            metrics, complete = await workload.measurePhase(run, server, abused)
        except BenchError as e:
            errors.append(str(e))
        finally:
            if progress.running:
                progress.stop()
            await run.close()
            if not server.running:
                complete = False
                errors.append(f"the server exited (status {server.exited}) during the run;"
                              f" its last output: {server.lastOutput()}")
            await server.stop()
        errors[:0] = [e for e in run.errors if e not in errors]
        info["tracebacks"] = server.tracebacks
        if server.tracebacks:
            errors.append(f"the server logged {server.tracebacks} tracebacks;"
                          f" its last output: {server.lastOutput()}")
        if metrics:
            workload.afterPhase(metrics, server, run, abused)
            errors[:0] = [e for e in run.errors if e not in errors]
        return metrics, complete and not errors, errors, info


# The command line

def addParser(sub, common, whole):
    """Add the ``abuse`` subcommand to the bench's subparsers."""
    p = sub.add_parser(
        "abuse", parents=[common], help="normal users with and without abusers",
        description="Runs N normal users (one room, M messages each at RATE a second) twice,"
        " each against a fresh server with its default abuse limits: alone, then with a"
        " flooder, a client that never reads and one that never names itself. Reports what"
        " the normal users saw and what became of the abusers. Pass --server-arg to change"
        " the server's limits, e.g. --server-arg=--login-timeout=5.")
    p.add_argument("-N", "--users", type=whole(1, 10_000), default=20,
                   help="normal users (default 20)")
    p.add_argument("-M", "--messages", type=whole(1, 1_000_000), default=100,
                   help="messages per normal user (default 100)")
    p.add_argument("--rate", type=_rate, default=4.0,
                   help="messages a second per normal user (default 4; the server's flood"
                   " limit is 5)")
    p.add_argument("-P", "--payload", type=whole(32, 2048), default=1024,
                   help="normal message size in bytes (default 1024)")
    p.add_argument("--flood-lines", type=whole(1, 10_000_000), default=5000,
                   help="lines the flooder writes (default 5000)")
    p.add_argument("--abuser-payload", type=whole(32, 65536), default=2000,
                   help="size of the flooder's lines in bytes (default 2000)")
    p.add_argument("--grace", type=_rate, default=15.0, metavar="SECONDS",
                   help="after the normal load, wait at most this long for the non-reader's"
                   " disconnection and the unnamed client's closure (default 15)")
    p.add_argument("--nonreader-rcvbuf", type=whole(256, 1 << 24), default=4096,
                   help="the non-reader's SO_RCVBUF, set before connecting (default 4096)")
    p.add_argument("--nonreader-mss", type=whole(0, 65495), default=1460,
                   help="the MSS the non-reader announces (default 1460, Ethernet's;"
                   " 0 keeps loopback's 65483, and the server's kernel then holds up to"
                   " tcp_wmem's maximum for it)")
    return p


def _rate(text):
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 < value <= 100_000:
        raise argparse.ArgumentTypeError(
            f"takes a number above 0 (at most 100,000), not {text!r}")
    return value


# The table

def _fmt(value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    return report._fmt(value)


def _cell(results, key):
    values = [r.metrics.get(key) for r in results]
    if len(values) == 1:
        return _fmt(values[0])
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if numbers and len(numbers) == len(values):
        return (f"{report._fmt(report._round(statistics.median(numbers)))}"
                f" ({report._fmt(min(numbers))}-{report._fmt(max(numbers))})")
    return " / ".join(_fmt(v) for v in values)


def _rows(rows, out):
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [str(row[0]).ljust(widths[0])] + [str(c).rjust(w) for c, w in
                                                  zip(row[1:], widths[1:])]
        print("  ".join(cells).rstrip(), file=out)


NORMAL_ROWS = [
    ("delivered", "normal messages delivered"),
    ("expected", "  expected (N x N x M)"),
    ("lost", "  lost"),
    ("lines_per_s", "delivery rate, lines/s"),
    ("offered_lines_per_s", "  offered (N x N x rate)"),
    ("delivery_p50_ms", "delivery latency p50, ms"),
    ("delivery_p99_ms", "delivery latency p99, ms"),
    ("delivery_max_ms", "delivery latency max, ms"),
    ("delivery_max_sent_at_s", "  its message was sent at, s into the load"),
    ("echo_p99_ms", "echo latency p99, ms"),
    ("rows_stored", "normal messages stored"),
    ("server_cpu_pct", "server CPU % of one core"),
    ("other_cpu_pct", "other processes' CPU % (want ~0)"),
    ("rss_start_kib", "server RSS at start, KiB"),
    ("rss_end_kib", "server RSS at end, KiB"),
    ("rss_peak_kib", "server RSS peak (VmHWM), KiB"),
]

ABUSER_ROWS = [
    ("flood_sent", "flooder: lines sent"),
    ("flood_echoed", "  echoed back to it"),
    ("flood_stored", "  stored (rows after the run)"),
    ("flood_unread", "  not read yet when the run ended"),
    ("flood_lost", "  lost (gaps in what was stored)"),
    ("flood_rate_per_s", "  echo rate after the burst, lines/s"),
    ("flood_seen_min", "  its lines seen by each normal user (min)"),
    ("nonreader_disconnected", "non-reader: disconnected"),
    ("nonreader_after_s", "  after it stopped reading, s"),
    ("nonreader_at_s", "  at, s into the load"),
    ("nonreader_bytes_its_way", "  bytes the room sent it by then"),
    ("nonreader_server_queued", "  bytes the server said were queued"),
    ("unnamed_closed", "never-named: closed"),
    ("unnamed_after_s", "  after connecting, s"),
    ("unnamed_connected_s", "  still connected after, s"),
]


def table(results, out=None):
    out = out or sys.stdout
    first = results[0]
    params = " ".join(f"{k}={v}" for k, v in first.params.items())
    limits = first.server.get("limits", {})
    print(f"chatsvc-bench abuse  {params}", file=out)
    print("servers started by the bench, one per phase, with their limits: flood-rate"
          f" {limits.get('flood_rate', '?'):g}/s burst {limits.get('flood_burst', '?')},"
          f" max-output-buffer {limits.get('max_output_buffer', 0):,} B, login-timeout"
          f" {limits.get('login_timeout', 0):g} s", file=out)
    many = len(results) > 1
    print(file=out)
    head = ["normal users" + (f"  (median (min-max) of {len(results)} runs)" if many else "")]
    rows = [head + [label for _, label in PHASES]]
    for key, label in NORMAL_ROWS:
        rows.append([label] + [_cell(results, f"{phase}_{key}") for phase, _ in PHASES])
    _rows(rows, out)
    print(file=out)
    rows = [["abusers (with abusers)"] + [f"run {r.run}" for r in results]
            + (["median"] if many else [])]
    summary = report.summarize(results) if many else {}
    for key, label in ABUSER_ROWS:
        if all(r.metrics.get(key) is None for r in results):
            continue
        row = [label] + [_fmt(r.metrics.get(key)) for r in results]
        if many:
            row.append(report._fmt(summary[key]["median"]) if key in summary else "")
        rows.append(row)
    _rows(rows, out)
    for told in sorted({r.metrics.get("unnamed_told") for r in results} - {None}):
        print(f"never-named: it was told {told!r}", file=out)
    for r in results:
        status = "complete" if r.complete else "INCOMPLETE"
        if r.errors or not r.complete:
            print(f"run {r.run}: {status}: " + "; ".join(r.errors), file=out)
        for phase, label in PHASES:
            other = r.metrics.get(f"{phase}_other_cpu_pct")
            if other is not None and other > report.BUSY:
                print(f"run {r.run} {label}: other processes used {other:.0f}% of a core"
                      " meanwhile: its latencies are disturbed", file=out)
        if r.metrics.get("nonreader_disconnected") is False:
            print(f"run {r.run}: the non-reader was not disconnected within the run"
                  f" ({r.metrics.get('nonreader_bytes_its_way') or 0:,} bytes were sent its way);"
                  " a longer or heavier load (-M, -P, -N) would get there", file=out)
    out.flush()

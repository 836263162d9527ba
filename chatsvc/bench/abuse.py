"""
``chatsvc-bench abuse``: what normal users see while a server defends itself.

Each repeat runs the same normal load twice, each time against a fresh server
started with the server's own abuse limits (no ``--flood-rate 0``, and no
address exempt, unlike the capacity workloads): first the N normal users
alone, then the same N users with the attackers.

The normal users (L{chatsvc.bench.people}) come each from a loopback address
of its own (127.1.0.1, 127.1.0.2, ...), as people do, once the attackers are
under way: each reads the name prompt, takes ``--typing`` seconds to type its
name, joins the room (made beforehand from another address) and says M bench
messages at a steady rate below the flood limit, reading everything.

The attackers (``--attackers``, all by default) all come from one address
(``--attackers-address``, 127.0.0.1), as one person with a script would:

- ``flooder``: in the room, writes lines as fast as its socket takes them
  (flood control should pause reading it, drop nothing, and let it through at
  the flood rate after the burst);
- ``nonreader``: in the room, stops reading at once (a small receive buffer
  and an Ethernet-sized MSS, so that the server's kernel does not hold
  megabytes for it): the server should disconnect it once more than
  ``--max-output-buffer`` waits to be sent;
- ``unnamed``: connects and never names itself: closed at ``--login-timeout``;
- ``reconnector``: names itself, joins, says a burst, hangs up, again, as
  fast as it can (flood control must not be multiplied by reconnecting);
- ``squatter``: opens ``--squat-rate`` (10) silent connections a second that
  never choose a name (they must not evict the people still typing theirs);
- ``roomspam``: creates rooms as fast as it is let, coming back after each
  burst and each refusal; ``lister``: sends ``list`` again and again, reading
  the answers as fast as they come: ``--listers`` of them, each from an
  address of its own (127.0.5.1 up), as that many people listing
  (L{chatsvc.bench.attackers}).

With ``--rooms N``, each phase's fresh database holds N rooms before its
server starts (written straight into it, as the join workload preloads
history), and the servers may keep N rooms more than their default
(``--max-rooms``): what a server up for a long while holds, for the listers
to list.

The attackers' lines carry their own markers (C{F<seq>.<T>}, C{R<seq>.<T>}),
never counted as normal messages. For the normal users the workload reports
who was let in (welcomed) and what the others were told, messages delivered
and lost, and latency; for each attacker, what became of it.
"""

import collections
import dataclasses
import os
import shutil
import socket
import sqlite3
import tempfile
import time

from twisted.internet.defer import Deferred, DeferredSemaphore, gatherResults
from twisted.internet.task import LoopingCall, deferLater
from twisted.python import usage

from chatsvc.bench import abusetable, report
from chatsvc.bench.abuseargs import ATTACKERS
from chatsvc.bench.abuseserver import AbuseServer, memoryKiB, serverSettings
from chatsvc.bench.abusetable import PHASES
from chatsvc.bench.abusers import Flooder, NonReaderWatch
from chatsvc.bench.attackers import KINDS, Lister, Listers, Reconnector, RoomSpammer, Squatter
from chatsvc.bench.client import DIALECTS
from chatsvc.bench.people import Pacer, PacedSender, UserTally, arrive
from chatsvc.bench.report import latencies
from chatsvc.bench.run import CONNECT_CONCURRENCY, Run, Runner
from chatsvc.bench.server import BenchError, preloadRooms
from chatsvc.bench.visits import (
    ATTACKERS_ADDRESS,
    Refused,
    listerAddresses,
    named,
    prompted,
    toldOf,
    userAddresses,
)
from chatsvc.bench.workloads import Workload, cpuShares
from chatsvc.settings import Settings

IN_ROOM = {"flooder": "f", "nonreader": "q"}  # attackers in the room, and their names' letter
NAMED = ("flooder", "nonreader", "reconnector", "roomspam", "lister")  # they take a name
PREFIXES = ("flood_", "nonreader_", *(f"{kind}_" for kind in KINDS))  # attackers' metrics


# The workload

class Abuse(Workload):
    name = "abuse"

    def __init__(self, users, messages, rate, payload, floodLines, abuserPayload, grace,
                 rcvbuf, mss, settings, attackers=ATTACKERS, attackersAddress=ATTACKERS_ADDRESS,
                 typing=2.0, warmup=2.0, squatRate=10.0, burst=None, retryDelay=0.01,
                 rooms=0, listers=1, serverArgs=()):
        self.users, self.messages, self.rate, self.payload = users, messages, rate, payload
        self.floodLines, self.abuserPayload, self.grace = floodLines, abuserPayload, grace
        self.rcvbuf, self.mss = rcvbuf, mss
        self.settings = settings  # the servers' limits, read with the server's own parser
        self.attackers = tuple(a for a in ATTACKERS if a in attackers)  # in a fixed order
        self.attackersAddress = attackersAddress
        self.typing, self.warmup, self.squatRate = typing, warmup, squatRate
        # What one connection of the reconnector says, and of the room spammer
        # asks for: by default as much as fits in one connection's burst with
        # its name (and join) first, all of it let through at once by a server
        # whose flood control is per connection.
        self.burst = burst
        self.reconnectorBurst = burst or max(1, settings.flood_burst - 2)
        self.roomspamBurst = burst or max(1, settings.flood_burst - 1)
        self.retryDelay = retryDelay
        self.rooms, self.listers = rooms, listers
        self.serverArgs = list(serverArgs)  # the servers' options, beside --db and --max-clients

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
        extra = list(args.server_arg)
        if args.rooms:  # before --server-arg, which may set it otherwise
            extra[:0] = ["--max-rooms", str(maxRooms(args.rooms))]
        clients = maxClients(args.users, args.attackers, args.listers)
        try:
            settings = serverSettings(["--max-clients", str(clients), *extra])
        except usage.UsageError as e:
            parser.error(f"--server-arg: {e}")
        if args.abuser_payload > settings.max_line:
            parser.error(f"--abuser-payload {args.abuser_payload} is over the server's"
                         f" --max-line ({settings.max_line})")
        if args.attackers_address in userAddresses(args.users + 1):
            parser.error(f"--attackers-address {args.attackers_address} is one of the normal"
                         " users' addresses (127.1.0.1 up): choose another")
        if "lister" in args.attackers and \
                args.attackers_address in listerAddresses(args.listers, avoid=None):
            parser.error(f"--attackers-address {args.attackers_address} is one of the listers'"
                         " addresses (127.0.5.1 up): choose another")
        return cls(args.users, args.messages, args.rate, args.payload, args.flood_lines,
                   args.abuser_payload, args.grace, args.nonreader_rcvbuf,
                   args.nonreader_mss, settings, args.attackers, args.attackers_address,
                   args.typing, args.warmup, args.squat_rate, args.burst, args.retry_delay,
                   args.rooms, args.listers, extra)

    def params(self):
        return {"users": self.users, "messages": self.messages, "rate": self.rate,
                "payload": self.payload, "typing": self.typing,
                "attackers": ",".join(self.attackers), "attackers_address":
                self.attackersAddress, "warmup": self.warmup, "flood_lines": self.floodLines,
                "abuser_payload": self.abuserPayload,
                "reconnector_burst": self.reconnectorBurst, "roomspam_burst": self.roomspamBurst,
                "squat_rate": self.squatRate, "retry_delay": self.retryDelay,
                "rooms": self.rooms, "listers": self.listers,
                "grace": self.grace,
                "nonreader_rcvbuf": self.rcvbuf, "nonreader_mss": self.mss}

    def limits(self):
        """Every setting of the servers, as their own parser read the bench's arguments."""
        s = self.settings
        if dataclasses.is_dataclass(s):
            return dataclasses.asdict(s)
        return {k: v for k, v in vars(s).items() if not k.startswith("_")}

    def clientsNeeded(self):
        return maxClients(self.users, self.attackers, self.listers)

    def fillDatabase(self, db, runId):
        """Fill a phase's fresh database with --rooms rooms, before its server starts."""
        if self.rooms:
            preloadRooms(db, self.rooms, f"bench-{runId}-p")

    async def measurePhase(self, run, server, abused) -> tuple:
        """The metrics of one phase (unprefixed) and whether its normal load completed."""
        room = run.room()
        host, *homes = userAddresses(self.users + 1, avoid=self.attackersAddress)
        await self._makeRoom(run, host, room)
        chosen = self.attackers if abused else ()
        inRoom, told = {}, {}
        for kind in (k for k in IN_ROOM if k in chosen):
            inRoom[kind], told[kind] = await self._enterRoom(run, kind, room)
        if inRoom.get("flooder") is not None:
            try:
                await run.sync(inRoom["flooder"], room)
            except BenchError:  # let in, and gone at once
                inRoom["flooder"], told["flooder"] = None, toldOf(inRoom["flooder"])
        pausedAt = None
        if inRoom.get("nonreader") is not None:
            inRoom["nonreader"].transport.pauseProducing()  # never reads again
            pausedAt = time.perf_counter()
        attackers = [self._attacker(run, kind, room) for kind in chosen if kind in KINDS]
        for attacker in attackers:
            attacker.start()
        if attackers and self.warmup:  # under way before the people come
            await run.race(deferLater(run.reactor, self.warmup, lambda: None))

        users, refused = await self._arrive(run, homes, room)
        run.clock = type(run.clock)()
        run.deliveries = type(run.deliveries)("q")
        run.echoes = type(run.echoes)("q")
        run.worst = (-1, None)  # (µs, sent at µs) of the slowest delivery
        admitted = len(users)
        expected = admitted * self.messages  # each admitted user's share
        senders = []
        for sid, client in enumerate(users, 1):
            sender = PacedSender(run, client, sid, self.messages, self.payload)
            senders.append(sender)
            client.startCounting(UserTally(run, expected, client, sender))
        flooder = None
        if inRoom.get("flooder") is not None:
            flooder = Flooder(inRoom["flooder"], self.floodLines, self.abuserPayload, run.clock)
            inRoom["flooder"].startCounting(flooder)
        pacer = Pacer(run.reactor, senders, self.rate) if senders else None
        watch = None
        if inRoom.get("nonreader") is not None and users:
            watch = NonReaderWatch(inRoom["nonreader"], users[0])
        run.progress = lambda: (
            f"{'with' if abused else 'without'} attackers:"
            f" {sum(c.tally.messages for c in users):,}/{expected * admitted:,} deliveries"
            + (f", flooder {len(flooder.echoTimes)}/{flooder.written} echoed" if flooder else ""))

        metrics = {"users": self.users, "admitted": admitted,
                   "not_admitted": self.users - admitted,
                   "not_admitted_told": [[n, line] for line, n in refused.most_common(3)]}
        rss0, _ = memoryKiB(run.pid)
        cpu0 = run.cpu()
        try:
            if watch:
                watch.begin()
            if pacer:
                pacer.begin()
            if flooder:
                flooder.begin()
            try:
                complete = await run.race(gatherResults([c.tally.finished for c in users]))
            finally:
                if pacer:
                    pacer.stop()
            cpu1 = run.cpu()
            busy = [a for a in attackers if a.kind != "unnamed"]
            await gatherResults([Deferred.fromCoroutine(a.stop()) for a in busy])
            metrics.update(self._normalMetrics(run, users, expected, pacer))
            cpu = cpuShares(cpu0, cpu1) if users else {}  # no load: no interval to speak of
            metrics.update({k: cpu.get(k) for k in ("server_cpu_pct", "bench_cpu_pct",
                                                    "other_cpu_pct")})
            unnamed = next((a for a in attackers if a.kind == "unnamed"), None)
            if abused and complete and not run.expired:
                await self._grace(run, watch, unnamed)
            for attacker in attackers:
                await attacker.stop()
                metrics.update(attacker.metrics())
            rss1, hwm = memoryKiB(run.pid)
            metrics.update({"rss_start_kib": rss0, "rss_end_kib": rss1, "rss_peak_kib": hwm})
            seen = [c.tally.attacks for c in users]
            if "flooder" in inRoom:
                metrics.update(self._flooderMetrics(run, flooder, seen, told["flooder"]))
            if "nonreader" in inRoom:
                metrics.update(self._nonReaderMetrics(
                    server, inRoom["nonreader"], watch, pausedAt, pacer, told["nonreader"]))
            if "reconnector" in chosen:
                metrics["reconnector_seen_min"] = min((s[b"R"] for s in seen), default=None)
        finally:
            if watch:
                watch.stop()
            for client in inRoom.values():
                if client is not None and client.transport is not None:
                    client.transport.abortConnection()  # a flooder's buffer never drains
        return metrics, complete

    def _attacker(self, run, kind, room):
        args = (run, self.attackersAddress, self.settings, room)
        if kind == "reconnector":
            attacker = Reconnector(*args, self.reconnectorBurst, self.abuserPayload)
        elif kind == "squatter":
            attacker = Squatter(*args, self.squatRate)
        elif kind == "roomspam":
            attacker = RoomSpammer(*args, self.roomspamBurst)
        elif kind == "lister":
            attacker = Listers(Lister(run, address, self.settings, room) for address in
                               listerAddresses(self.listers, avoid=self.attackersAddress))
        else:
            attacker = KINDS[kind](*args)
        attacker.retryDelay = self.retryDelay
        return attacker

    async def _makeRoom(self, run, address, room):
        """The normal users' room, made by someone from an address of its own, who leaves."""
        d, name = run.dialect, run.name("h", 1)
        try:
            host = await named(run, await prompted(run, address, name), name)
        except Refused as refusal:
            raise BenchError(f"{name} could not make the room {room}: {refusal.told}")
        host.send(d.create(room))
        await host.expect(d.joined(room), f"the creation of {room}")
        host.send(d.leave())
        await host.expect(d.left(room), f"leaving {room}")
        host.transport.loseConnection()
        await host.lost

    async def _enterRoom(self, run, kind, room):
        """An attacker that stays in the room: (its connection, None), or (None, what it was told)."""
        d, name = run.dialect, run.name(IN_ROOM[kind], 1)
        options = []
        if kind == "nonreader":
            options.append((socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf))
            if self.mss:
                options.append((socket.IPPROTO_TCP, socket.TCP_MAXSEG, self.mss))
        try:
            client = await named(run, await prompted(run, self.attackersAddress, name, options),
                                 name)
        except Refused as refusal:
            return None, refusal.told
        client.send(d.join(room))
        try:
            await client.expect(d.joined(room), f"{name} joining {room}")
        except BenchError:
            return None, toldOf(client)
        return client, None

    async def _arrive(self, run, homes, room):
        """The normal users, each from its own address: those let in, and what the others were told."""
        gate = DeferredSemaphore(CONNECT_CONCURRENCY)  # connections being made at once

        async def one(index):
            try:
                return await arrive(run, homes[index - 1], run.name("u", index), room,
                                    self.typing, gate)
            except Refused as refusal:
                return refusal

        outcomes = await gatherResults([Deferred.fromCoroutine(one(i))
                                        for i in range(1, self.users + 1)])
        users = [o for o in outcomes if not isinstance(o, Refused)]
        refused = collections.Counter(o.told for o in outcomes if isinstance(o, Refused))

        async def synced(client):
            try:
                await run.sync(client, room)
                return client
            except BenchError:  # let in, and gone before the load began
                refused[f"(disconnected before the load) {toldOf(client)}"] += 1
                return None

        # Every join notice has arrived once each reader has its answer to who.
        users = [c for c in await run.gather([lambda c=c: synced(c) for c in users]) if c]
        return users, refused

    def _normalMetrics(self, run, users, expected, pacer):
        admitted = len(users)
        total = expected * admitted
        delivered = sum(c.tally.messages for c in users)
        # From the first send to the last delivery, plus the one send slot the
        # schedule gives each message (M/rate seconds for a server with no delay).
        last = max((c.tally.last for c in users), default=0) / 1e6
        elapsed = (last + pacer.interval) if last and pacer else None
        if delivered > total:
            run.errors.append(f"{delivered - total} more normal messages arrived than"
                              " were said")
        m = {
            "delivered": delivered, "expected": total, "lost": max(0, total - delivered),
            "disconnected": sum(1 for c in users
                                if c.lost.called and not c.tally.done.called),
            "elapsed_s": round(elapsed, 3) if elapsed else None,
            "lines_per_s": round(delivered / elapsed, 1) if elapsed else None,
            "offered_lines_per_s": round(admitted * admitted * self.rate, 1),
        }
        m.update(latencies("delivery", run.deliveries))
        sentAt = run.worst[1]
        m["delivery_max_sent_at_s"] = None if sentAt is None else round(sentAt / 1e6, 2)
        m.update(latencies("echo", run.echoes))
        return m

    async def _grace(self, run, watch, unnamed):
        """After the load: wait (at most --grace s) for the attackers' outcomes still due."""
        waits = []
        if watch and not watch.closed.called:
            waits.append(watch.closed)
        if unnamed is not None and not unnamed.closed.called and self.settings.login_timeout > 0:
            waits.append(unnamed.closed)
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
        run.progress = lambda: "waiting (at most --grace) for the attackers' outcomes"
        try:
            await run.race(over)
        finally:
            if call.active():
                call.cancel()

    def _flooderMetrics(self, run, flooder, seen, told):
        if flooder is None:
            return {"flood_admitted": False, "flood_told": told}
        s = self.settings
        m = {"flood_admitted": True}
        m["flood_written"] = flooder.written
        m["flood_sent"] = flooder.written - flooder.unsent()  # not in the bench's buffer
        m["flood_echoed"] = len(flooder.echoTimes)
        m["flood_out_of_order"] = flooder.outOfOrder
        m["flood_rate_per_s"] = flooder.rateAfterBurst(s.flood_burst)
        m["flood_seen_min"] = min((c[b"F"] for c in seen), default=None)
        m["flood_seen_max"] = max((c[b"F"] for c in seen), default=None)
        if flooder.outOfOrder:
            run.errors.append(f"{flooder.outOfOrder} of the flooder's echoes came out of order")
        return m

    def _nonReaderMetrics(self, server, client, watch, pausedAt, pacer, told):
        if client is None:
            return {"nonreader_admitted": False, "nonreader_told": told}
        m = {"nonreader_admitted": True}
        closedAt = watch.closedAt if watch else None
        overflow = server.overflows.get(client.name)
        if closedAt is None and overflow is not None:  # seen in the server's log only
            closedAt = overflow[0]
        m["nonreader_disconnected"] = closedAt is not None
        start = pacer.start if pacer else pausedAt
        m["nonreader_after_s"] = None if closedAt is None else round(closedAt - pausedAt, 2)
        m["nonreader_at_s"] = None if closedAt is None else round(closedAt - start, 2)
        m["nonreader_bytes_its_way"] = watch.bytesItsWay() if watch else None
        m["nonreader_server_queued"] = overflow[1] if overflow else None
        m["nonreader_server_logged"] = overflow is not None
        return m

    def afterPhase(self, metrics, server, run, abused):
        """After the phase's server stopped: what its database holds."""
        try:
            counted = _countStored(server.db, run)
        except sqlite3.Error as e:
            run.errors.append(f"could not read the database after the run: {e}")
            return
        rows, flood, reconnected, rooms = counted
        metrics["rows_stored"] = rows
        said = metrics["admitted"] * self.messages
        if rows > said or rows < said and not metrics.get("disconnected"):
            run.errors.append(f"the database holds {rows} normal messages, not {said}")
        if "reconnector" in self.attackers and abused:
            metrics["reconnector_stored"] = reconnected
        if "roomspam" in self.attackers and abused:
            metrics["roomspam_rooms_stored"] = rooms
        if not abused or not metrics.get("flood_admitted"):
            return
        seqs = [int(t[1:].split(".", 1)[0]) for t in flood]
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


def maxClients(users, attackers, listers=1):
    """
    The servers' --max-clients: the normal users, the one who makes their
    room, the attackers that take a name (each of the listers), and two more
    for a reconnecting attacker's name that the server has not let go yet. A
    server sized for its people, so that its limits, not its size, are what
    is measured.
    """
    named = sum(1 for a in attackers if a in NAMED)
    if "lister" in attackers:
        named += listers - 1
    return users + 1 + named + 2


def maxRooms(preloaded):
    """The servers' --max-rooms with C{preloaded} rooms: as many more as they may have anyway."""
    return preloaded + Settings.max_rooms


def _countStored(db, run):
    """(normal messages, the flooder's texts in order, the reconnector's lines, spam rooms)."""
    connection = sqlite3.connect(db)
    try:
        def count(sql, *args):
            return connection.execute(sql, args).fetchone()[0]
        normal = count("SELECT COUNT(*) FROM messages WHERE sender GLOB ?",
                       run.name("u", "") + "*")
        flood = [t for (t,) in connection.execute(
            "SELECT text FROM messages WHERE sender = ? ORDER BY seq", (run.name("f", 1),))]
        reconnected = count("SELECT COUNT(*) FROM messages WHERE sender GLOB ?",
                            run.name("x", "") + "*")
        rooms = count("SELECT COUNT(*) FROM rooms WHERE name GLOB ?", run.room("-s") + "*")
    finally:
        connection.close()
    return normal, flood, reconnected, rooms


# The runs

class AbuseBench(Runner):
    """Runs L{Abuse}: per repeat, one server without attackers and one with them."""

    async def runAll(self) -> list:
        workdir = tempfile.mkdtemp(prefix="chatsvc-bench-abuse-")
        try:
            results = [await self.runOnce(workdir, i) for i in range(1, self.args.repeat + 1)]
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        abusetable.table(results, self.out)
        if self.args.json:
            report.append_json(self.args.json, results)
        return results

    async def runOnce(self, workdir, index):
        args, workload = self.args, self.workload
        result = report.Result(workload.name, workload.params(), run=index, runs=args.repeat,
                               run_id=self.runId(index))
        result.server = {"started": True, "limits": workload.limits()}
        for phase, _ in PHASES:
            metrics, complete, errors, info = await self._phase(workdir, index, phase)
            result.metrics.update({f"{phase}_{k}": v for k, v in metrics.items()
                                   if not k.startswith(PREFIXES)})
            result.metrics.update({k: v for k, v in metrics.items() if k.startswith(PREFIXES)})
            result.complete = result.complete and complete
            result.errors.extend(f"{phase}: {e}" for e in errors)
            result.server[phase] = info
        return result

    async def _phase(self, workdir, index, phase):
        args, workload = self.args, self.workload
        abused = phase == "abused"
        db = os.path.join(workdir, f"chat{index}-{phase}.sqlite3")
        started = time.perf_counter()
        workload.fillDatabase(db, self.runId(index))
        server = AbuseServer(self.reactor, db, workload.clientsNeeded(), workdir,
                             workload.serverArgs)
        info = {"args": server.command[3:]}
        if workload.rooms:
            info["preload_s"] = round(time.perf_counter() - started, 2)
        errors = []
        try:
            port = await server.start(timeout=min(60.0, args.timeout))
        except BenchError as e:
            await server.stop()
            return {}, False, [str(e)], info
        info.update({"address": f"127.0.0.1:{port}", "pid": server.pid,
                     "startup_s": round(server.startup, 3)})
        run = Run(self.reactor, "127.0.0.1", port, DIALECTS[args.protocol](), args.timeout,
                  server.pid, self.runId(index))
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

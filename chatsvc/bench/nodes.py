"""
Several nodes, one chat (``--nodes N``, with ``--postgres``). Each run gets a
throwaway PostgreSQL database, a redis-server of the bench's own on a spare
loopback port (L{chatsvc.bench.privateredis}) and N ``twistd chatroom`` nodes
with ``--db`` that database and ``--bus`` that Redis. Each role's clients go
round-robin over the nodes (sender 1 on node 1, sender 2 on node 2, ...;
receivers alike), so most copies of a message cross from one node to another.

``--restart-redis F`` kills that redis-server (SIGKILL, by its child's PID)
once a fraction F of the messages has been echoed, and starts it again on the
same port (after ``--redis-down`` seconds). Every copy the bench reads itself
is checked against its sender's order (a seq it had, or one skipped, is
counted), and the database afterwards for duplicate uids and holes in the
seqs; the delivery latency is given for the copies sent around the outage
and for the others (steady state) apart.
"""

import math
import time

from twisted.internet.defer import Deferred, FirstError, gatherResults
from twisted.internet.task import deferLater

from chatsvc.bench import report
from chatsvc.bench.cli import MAX_CLIENTS, Bench
from chatsvc.bench.client import Tally, newSamples
from chatsvc.bench.postgres import backendPids, checkRows, throwawayDatabase
from chatsvc.bench.privateredis import RedisProcess
from chatsvc.bench.report import latencies
from chatsvc.bench.run import CpuReading, Run
from chatsvc.bench.server import BenchError, ServerProcess, cpuSeconds, hostBusySeconds

# The outage window, by send time: from a little before the kill (a message
# sent then may still be between its commit and its PUBLISH) to a second
# after Redis accepts connections again (the nodes retry at most 1 s apart,
# RedisBus's reconnectDelay, and check their rooms' positions each second).
OUTAGE_BEFORE_US = 100_000
OUTAGE_AFTER_US = 1_000_000
PORT_ATTEMPTS = 3  # a spare port may be taken between choosing it and redis-server binding it


class Cluster:
    """
    The bench's redis-server and N nodes on one database: what L{ClusterBench}
    starts, measures and stops in place of one L{ServerProcess}.
    """

    def __init__(self, reactor, db, count, max_clients, workdir, extra=()):
        self.reactor, self.db, self.count = reactor, db, count
        self.max_clients, self.workdir, self.extra = max_clients, workdir, list(extra)
        self.redis = None
        self.nodes = []
        self.ports = []
        self.startup = None

    async def start(self, timeout=60.0):
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self.redis = RedisProcess(self.reactor, self.workdir)
            try:
                await self.redis.start(timeout)
                break
            except BenchError as e:
                if "in use" not in str(e) or attempt == PORT_ATTEMPTS:
                    raise
        began = time.perf_counter()
        self.nodes = [ServerProcess(self.reactor, self.db, self.max_clients, self.workdir,
                                    ["--bus", self.redis.url, *self.extra])
                      for _ in range(self.count)]
        try:
            self.ports = await gatherResults([n.start(timeout) for n in self.nodes],
                                             consumeErrors=True)
        except FirstError as e:
            e.subFailure.raiseException()
        self.startup = time.perf_counter() - began
        return self.ports

    @property
    def pids(self):
        return [node.pid for node in self.nodes]

    @property
    def running(self):
        return all(node.running for node in self.nodes)

    @property
    def tracebacks(self):
        return sum(node.tracebacks for node in self.nodes)

    def lastOutput(self):
        return " || ".join(f"node {i}: {node.lastOutput()}"
                           for i, node in enumerate(self.nodes, 1)
                           if node.tracebacks or not node.running)

    def describe(self):
        node = self.nodes[0]
        return {"kind": "chatsvc", "nodes": self.count, "started": True,
                "address": f"127.0.0.1:{self.ports[0]}",
                "addresses": [f"127.0.0.1:{port}" for port in self.ports],
                "pids": self.pids, "pid": node.pid, "startup_s": round(self.startup, 3),
                "args": node.argv()[3:], "extra": self.extra, "redis": self.redis.argv()}

    async def stop(self):
        await gatherResults([node.stop() for node in self.nodes])
        if self.redis is not None:
            await self.redis.kill()


class CheckedTally(Tally):
    """
    A native client's tally that also checks each sender's order: a copy whose
    seq it had already is counted as duplicated, one that skips ahead as
    skipped (an earlier one lost, or late). It keeps each copy's send time,
    beside its latency, for the outage window.
    """

    def __init__(self, run, expected, sender=None):
        super().__init__(run, expected, sender)
        self.run = run
        self.newest = {}  # sender's SID -> the highest seq of theirs received

    def count(self, found, now):
        super().count(found, now)
        run, newest, keep = self.run, self.newest, self.run.sentAt.append
        for sid, seq, sent in found:
            keep(int(sent))
            seq, last = int(seq), newest.get(sid, 0)
            if seq <= last:
                run.duplicated += 1
            else:
                if seq > last + 1:
                    run.skipped += 1
                newest[sid] = seq


class ClusterRun(Run):
    """A run against a L{Cluster}: clients spread over its nodes, Redis restarted on cue."""

    tallyClass = CheckedTally

    def __init__(self, reactor, cluster, dialect, timeout, runId, restartAt=None, down=0.0):
        super().__init__(reactor, "127.0.0.1", cluster.ports[0], dialect, timeout,
                         cluster.pids[0], runId)
        self.cluster = cluster
        self.restartAt, self.down = restartAt, down
        self.sentAt = newSamples()  # beside run.deliveries: when each timed copy was sent
        self.duplicated = self.skipped = 0
        self.settled = 0  # lines said by settle(), stored beside the bench's messages
        self.killedAt = self.backAt = None  # run clock, µs
        self.restarted = None  # fires once Redis is back (with --restart-redis)
        self.readings = []  # (when, redis pid, its CPU s, {backend pid: CPU s}) at each cpu()
        self._nodeOf = {}

    def name(self, role, index):
        name = super().name(role, index)
        self._nodeOf[name] = (index - 1) % len(self.cluster.ports)  # round-robin per role
        return name

    def portFor(self, name):
        return self.cluster.ports[self._nodeOf.get(name, 0)]

    async def settle(self, room, clients):
        """
        A node tells the others of a join over the bus, so a notice can come
        after the `who` barrier. Publishing is in order, so once one client
        on each node has said a line in the room and every client has all
        of them, every join notice has arrived too (these lines are stored:
        the database holds them beside the bench's messages).
        """
        d = self.dialect
        first = {}
        for client in clients:
            first.setdefault(self._nodeOf.get(client.name, 0), client)
        said = {f"settle-{self.runId}-{node}" for node in first}
        for node, client in first.items():
            client.send(f"settle-{self.runId}-{node}")
        self.settled = len(said)

        async def heard(client):
            missing = set(said)

            def seen(line):
                missing.discard(line.rpartition("> ")[2])
                return not missing
            await client.expect(seen, f"the settling lines in {room}")
        await self.gather([lambda c=c: heard(c) for c in clients])

    def measuring(self, senders):
        if self.restartAt is None:
            return
        at = max(1, math.ceil(self.restartAt * sum(s.count for s in senders)))
        echoes = [0]

        def counting(echoed):
            def echoedAndCounted(seq, latency):
                echoed(seq, latency)
                echoes[0] += 1
                if echoes[0] == at:
                    self.restarted = Deferred.fromCoroutine(self._restartRedis())
            return echoedAndCounted

        for sender in senders:
            sender.echoed = counting(sender.echoed)

    async def _restartRedis(self):
        self.killedAt = self.clock()
        await self.cluster.redis.kill()
        if self.down:
            await deferLater(self.reactor, self.down, lambda: None)
        await self.cluster.redis.start()
        self.backAt = self.clock()

    def cpu(self):
        """The nodes' CPU together; Redis's and the database backends' aside."""
        now = time.monotonic()
        nodes = [cpuSeconds(pid) for pid in self.cluster.pids]
        redis = self.cluster.redis.pid
        self.readings.append((now, redis, redis and (cpuSeconds(redis) or (None,))[0],
                              {pid: cpu[0] for pid in backendPids(self.cluster.db)
                               if (cpu := cpuSeconds(pid)) is not None}))
        known = None not in nodes
        return CpuReading(now, sum(n[0] for n in nodes) if known else None,
                          sum(n[1] for n in nodes) if known else None,
                          time.process_time(), hostBusySeconds(now=lambda: now))

    def sideShares(self):
        """Redis's and the database backends' CPU, % of one core, between the first two cpu()."""
        if len(self.readings) < 2:
            return {}
        (wall0, pid0, redis0, db0), (wall1, pid1, redis1, db1) = self.readings[:2]
        seconds = wall1 - wall0
        if seconds <= 0:
            return {}
        # A backend that appeared meanwhile counts whole; a restarted Redis is not known.
        db = sum(cpu - db0.get(pid, 0.0) for pid, cpu in db1.items())
        redis = redis1 - redis0 if pid0 == pid1 and None not in (redis0, redis1) else None
        return {"redis_cpu_pct": None if redis is None else round(100 * redis / seconds, 1),
                "db_cpu_pct": round(100 * db / seconds, 1)}

    def windows(self) -> dict:
        """The restart's times, and the delivery latency around the outage and outside it."""
        if self.killedAt is None:
            return {}
        low = self.killedAt - OUTAGE_BEFORE_US
        high = math.inf if self.backAt is None else self.backAt + OUTAGE_AFTER_US
        outage, steady = newSamples(), newSamples()
        for sent, latency in zip(self.sentAt, self.deliveries):
            (outage if low <= sent <= high else steady).append(latency)
        metrics = {"redis_killed_at_s": round(self.killedAt / 1e6, 3),
                   "redis_down_s": None if self.backAt is None
                   else round((self.backAt - self.killedAt) / 1e6, 3)}
        metrics.update(latencies("outage_delivery", outage))
        metrics["outage_timed"] = len(outage)
        metrics.update(latencies("steady_delivery", steady))
        metrics["steady_timed"] = len(steady)
        return metrics


class ClusterBench(Bench):
    """Each repeat on a fresh L{Cluster}, measured as one server."""

    run = None

    def newRun(self, host, port, pid, index, target):
        args = self.args
        self.run = ClusterRun(self.reactor, self.cluster, target.dialect(), args.timeout,
                              self.runId(index), args.restart_redis, args.redis_down)
        return self.run

    async def runOnce(self, workdir, index, target=None):
        args = self.args
        target = target or self.targets[0]
        workload = target.workload
        params = {**workload.params(), "nodes": args.nodes}
        if args.restart_redis is not None:
            params.update(restart_redis=args.restart_redis, redis_down_s=args.redis_down)
        if args.sinks and workload.name == "fanout":
            params.update(sinks=args.sinks, probes=args.probes)
        result = report.Result(workload.name, params, run=index, runs=args.repeat,
                               run_id=self.runId(index))
        db, drop = throwawayDatabase(args.postgres, self.runId(index))
        trigger = self.reactor.addSystemEventTrigger("before", "shutdown", drop)
        extra = list(args.server_arg)
        if args.cluster_ttl is not None:
            extra += ["--cluster-ttl", f"{args.cluster_ttl:g}"]
        self.cluster = Cluster(self.reactor, db, args.nodes,
                               min(MAX_CLIENTS, workload.clientsNeeded() + 10), workdir, extra)
        try:
            try:
                await self.cluster.start(timeout=min(60.0, args.timeout))
            except BenchError as e:
                result.complete = False
                result.errors.append(str(e))
                return result
            result.server = self.cluster.describe()
            await self._measure(result, "127.0.0.1", self.cluster.ports[0],
                                self.cluster.pids[0], index, target)
            await self._afterRestart(result)
            self._check(result)
            if not self.cluster.running:
                result.complete = False
                result.errors.append(f"a node exited during the run: {self.cluster.lastOutput()}")
        finally:
            await self.cluster.stop()
            if self.cluster.nodes:
                result.server["tracebacks"] = self.cluster.tracebacks
                if self.cluster.tracebacks:
                    result.errors.append(f"the nodes logged {self.cluster.tracebacks}"
                                         f" tracebacks: {self.cluster.lastOutput()}")
            if result.metrics:
                self._checkDatabase(result, db)
            drop()
            self.reactor.removeSystemEventTrigger(trigger)
        return result

    async def _afterRestart(self, result):
        """Wait for a Redis restart still under way, then say what it did to latency."""
        run = self.run
        if run is None or run.restartAt is None:
            return
        if run.restarted is None:
            result.errors.append("Redis was not restarted: the run ended before"
                                 f" {run.restartAt:g} of its messages were echoed")
            return
        try:
            await run.restarted
        except BenchError as e:
            result.complete = False
            result.errors.append(f"restarting Redis: {e}")
        elapsed = result.metrics.get("elapsed_s")
        if run.backAt is not None and elapsed is not None and run.backAt / 1e6 > elapsed:
            # Not an error (nothing was lost): the run measured less than was asked.
            self.warn(f"run {result.run}: it ended {elapsed:g} s in, before Redis was back"
                      f" ({run.backAt / 1e6:.3f} s): give more messages to measure after it")
        result.metrics.update(run.windows())

    def _check(self, result):
        """No copy duplicated or out of order, no line more than expected."""
        run, m = self.run, result.metrics
        if not m:
            return
        m["copies_duplicated"], m["copies_skipped"] = run.duplicated, run.skipped
        if run.duplicated or run.skipped:
            result.errors.append(f"{run.duplicated} copies arrived twice, {run.skipped} skipped"
                                 " ahead of their sender's order")
        if "lines" in m and m["lines"] > m["lines_expected"]:
            result.errors.append(f"{m['lines'] - m['lines_expected']} lines more than expected")
        m.update(run.sideShares())
        if m.get("other_cpu_pct") is not None and m.get("db_cpu_pct") is not None:
            # "other" is the machine's busy time less the nodes' and the bench's: the
            # database and Redis are part of the cluster, not a disturbance.
            m["other_cpu_pct"] = round(m["other_cpu_pct"] - m["db_cpu_pct"]
                                       - (m.get("redis_cpu_pct") or 0), 1)

    def _checkDatabase(self, result, db):
        rows, uids, holes = checkRows(db)
        m = result.metrics
        m.update(rows_stored=rows, rows_duplicate_uids=rows - uids, rows_seq_holes=holes)
        said = m.get("messages")
        if said is not None and rows != said + self.run.settled:
            result.errors.append(f"the database holds {rows} messages, {said} were echoed"
                                 f" (and {self.run.settled} said to settle)")
        if rows != uids or holes:
            result.errors.append(f"the database holds {rows - uids} duplicate uids and"
                                 f" {holes} holes in the seqs")

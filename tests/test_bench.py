"""
chatsvc-bench against a real server process on 127.0.0.1, with tiny
parameters: each workload's counts come out exact, results are written as
JSON lines, a run stops by itself at its timeout, and bad arguments exit 2
with one line.
"""

import io
import json
import os
from unittest import SkipTest
import re
import sqlite3
import sys
import time

from twisted.internet import reactor, utils
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import TestCase

from chatsvc.bench import cli, report
from chatsvc.bench.report import Result, percentile, summarize
from chatsvc.bench.run import CpuReading
from chatsvc.bench.server import (
    HOST_RESOLUTION,
    PROJECT_ROOT,
    ServerProcess,
    countMessages,
    cpuSeconds,
    findPidByPort,
    hostBusySeconds,
    preloadHistory,
)
from chatsvc.bench.workloads import cpuShares
from tests import e2e
from tests.support import benchRefusal, coroutine

# The unit a metric's name ends with, and what its label in the table must say.
UNITS = {"_ms": ", ms", "_s": ", s", "_pct": "% of one core", "_kib": ", KiB",
         "_bytes": ", bytes", "_per_s": "/s", "_per_line": ", µs"}


class BenchTestCase(TestCase):
    timeout = 60

    def setUp(self):
        self.json = os.path.abspath(self.mktemp())
        self.out = io.StringIO()
        self.err = io.StringIO()

    async def bench(self, *argv):
        """Run chatsvc-bench with C{argv} in this process; its results."""
        args, workload = cli.parseArgs([*argv, "--quiet", "--json", self.json])
        runner = cli.runnerFor(args, workload)
        return await runner(reactor, args, workload, out=self.out, err=self.err).runAll()

    def records(self):
        with open(self.json) as f:
            return [json.loads(line) for line in f]

    def assertComplete(self, result):
        self.assertEqual((result.complete, result.errors), (True, []))
        self.assertLabelled(result)

    def assertLabelled(self, result):
        """Every metric has a row label in the table, and a measure says its unit there."""
        table = self.out.getvalue()
        for key in result.metrics:
            self.assertIn(key, report.LABELS, f"{key} has no label")
            label = report.LABELS[key]
            self.assertIn(label, table)
            unit = unitOf(key)
            if unit is not None:
                self.assertIn(unit, label, f"{key}: {label!r} does not say {unit!r}")


def unitOf(key):
    """The unit a metric's name ends with (its longest suffix in UNITS), or None."""
    found = [suffix for suffix in UNITS if key.endswith(suffix)]
    return UNITS[max(found, key=len)] if found else None


class WorkloadTests(BenchTestCase):
    @coroutine
    async def test_fanout(self):
        """Every receiver and every sender gets every message once: (R+S)*S*M lines."""
        [result] = await self.bench("fanout", "-R", "3", "-S", "2", "-M", "5")
        self.assertComplete(result)
        m = result.metrics
        self.assertEqual((m["messages"], m["lines"], m["lines_expected"]), (10, 50, 50))
        self.assertGreater(m["lines_per_s"], 0)
        for key in ("echo_p50_ms", "echo_p99_ms", "echo_max_ms", "delivery_p99_ms"):
            self.assertGreater(m[key], 0)
        self.assertLessEqual(m["echo_p50_ms"], m["echo_max_ms"])
        self.assertEqual(result.server["tracebacks"], 0)
        [record] = self.records()
        self.assertEqual((record["bench"], record["metrics"]["lines"], record["complete"]),
                         ("fanout", 50, True))
        self.assertEqual(record["params"], {"receivers": 3, "senders": 2, "messages": 5,
                                            "window": 1, "payload": 64, "sinks": 1,
                                            "probes": 10})
        self.assertEqual(m["delivery_timed"], 50)  # R <= probes: the bench times every copy
        self.assertIn("delivery rate (all clients), lines/s", self.out.getvalue())

    @coroutine
    async def test_fanoutWindowAndRepeat(self):
        """A window above 1 pipelines; with --repeat each run is complete and summarized."""
        results = await self.bench("fanout", "-R", "1", "-S", "2", "-M", "7", "-W", "3",
                                   "-P", "200", "--repeat", "2")
        self.assertEqual([r.metrics["lines"] for r in results], [42, 42])
        for result in results:
            self.assertComplete(result)
        records = self.records()
        self.assertEqual([r.get("run") for r in records], [1, 2, None])
        self.assertEqual(records[2]["summary"]["lines"], {"median": 42, "min": 42, "max": 42})
        self.assertIn("median", self.out.getvalue())

    @coroutine
    async def test_joinOlderThanReplay(self):
        """60 stored messages: the join header, the 'older' line and 50 replayed lines."""
        [result] = await self.bench("join", "-H", "60", "-J", "3")
        self.assertComplete(result)
        m = result.metrics
        self.assertEqual((m["joins"], m["lines_per_join"], m["replay_lines"], m["older_reported"]),
                         (3, 52, 50, 10))
        self.assertGreater(m["bytes_p50"], 50 * 64)
        self.assertGreater(m["join_p50_ms"], 0)

    @coroutine
    async def test_joinShortHistory(self):
        [result] = await self.bench("join", "-H", "5", "-J", "2")
        self.assertComplete(result)
        m = result.metrics
        self.assertEqual((m["lines_per_join"], m["replay_lines"], m["older_reported"]), (6, 5, 0))

    @coroutine
    async def test_joinOneOlder(self):
        [result] = await self.bench("join", "-H", "51", "-J", "1")
        self.assertComplete(result)
        m = result.metrics
        self.assertEqual((m["lines_per_join"], m["replay_lines"], m["older_reported"]), (52, 50, 1))

    @coroutine
    async def test_serverArg(self):
        """--server-arg reaches the server the bench starts."""
        [result] = await self.bench("join", "-H", "30", "-J", "1",
                                    "--server-arg=--history-replay=10")
        self.assertComplete(result)
        m = result.metrics
        self.assertEqual((m["lines_per_join"], m["replay_lines"], m["older_reported"]), (12, 10, 20))
        self.assertIn("--history-replay=10", result.server["args"])

    @coroutine
    async def test_noServerThere(self):
        port = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        number = port.getHost().port
        await port.stopListening()
        [result] = await self.bench("store", "--connect", f"127.0.0.1:{number}")
        self.assertFalse(result.complete)
        self.assertEqual(len(result.errors), 1)
        self.assertTrue(result.errors[0].startswith(f"could not connect to 127.0.0.1:{number}"))

    @coroutine
    async def test_store(self):
        """Every echo is a stored message: the database holds exactly S*M of them."""
        [result] = await self.bench("store", "-S", "2", "-M", "5", "-W", "2")
        self.assertComplete(result)
        self.assertEqual((result.metrics["messages"], result.metrics["rows_stored"]), (10, 10))
        self.assertGreater(result.metrics["msgs_per_s"], 0)

    @coroutine
    async def test_storeOnPostgres(self):
        """--postgres: a database of the run's own, every echo a row in it, dropped afterwards."""
        from tests.test_store_contract import POSTGRES_URL, postgresReachable
        reachable, why = postgresReachable()
        if not reachable:
            if os.environ.get("CI") == "true":
                self.fail(f"CI=true, so the PostgreSQL tests must run, but {why}")
            raise SkipTest(why)
        [result] = await self.bench("store", "-S", "2", "-M", "5", "-W", "2",
                                    "--postgres", POSTGRES_URL)
        self.assertComplete(result)
        self.assertEqual((result.metrics["messages"], result.metrics["rows_stored"]), (10, 10))

    @coroutine
    async def test_twoNodesThroughARedisRestart(self):
        """
        --nodes 2 --restart-redis: two nodes on one PostgreSQL database and
        the bench's own Redis, killed and started again half-way; every copy
        arrives once and in order, and the database holds each message once.
        """
        from tests.test_bus import needRedisServer
        from tests.test_store_contract import POSTGRES_URL, postgresReachable
        needRedisServer(self)
        reachable, why = postgresReachable()
        if not reachable:
            if os.environ.get("CI") == "true":
                self.fail(f"CI=true, so the PostgreSQL tests must run, but {why}")
            raise SkipTest(why)
        [result] = await self.bench("fanout", "-R", "3", "-S", "2", "-M", "60",
                                    "--nodes", "2", "--restart-redis", "0.5",
                                    "--postgres", POSTGRES_URL)
        self.assertComplete(result)
        m = result.metrics
        self.assertEqual((m["messages"], m["lines"], m["lines_expected"]), (120, 600, 600))
        self.assertEqual((m["copies_duplicated"], m["copies_skipped"]), (0, 0))
        self.assertEqual((m["rows_duplicate_uids"], m["rows_seq_holes"]), (0, 0))
        self.assertEqual(m["rows_stored"], 120 + 2)  # and one settling line from each node
        self.assertEqual(m["outage_timed"] + m["steady_timed"], m["delivery_timed"])
        self.assertIsNotNone(m["redis_down_s"])  # it was killed, and came back
        self.assertEqual((len(result.server["pids"]), result.server["tracebacks"]), (2, 0))
        self.assertNotIn("6379", " ".join(result.server["redis"]))

    @coroutine
    async def test_connections(self):
        [result] = await self.bench("connections", "-N", "5")
        self.assertComplete(result)
        m = result.metrics
        self.assertEqual(m["connections"], 5)
        self.assertGreater(m["rss_before_kib"], 0)
        self.assertEqual(m["rss_per_conn_bytes"],
                         round((m["rss_after_kib"] - m["rss_before_kib"]) * 1024 / 5))

    @coroutine
    async def test_timeout(self):
        """A run that can't finish stops at --timeout and says it is incomplete."""
        [result] = await self.bench("fanout", "-R", "0", "-S", "1", "-M", "10000000",
                                    "-W", "50", "--timeout", "1")
        self.assertFalse(result.complete)
        self.assertIn("timeout (1 s) passed", result.errors[0])
        self.assertLess(result.metrics["messages"], 10_000_000)
        self.assertFalse(self.records()[0]["complete"])


class ConnectTests(BenchTestCase):
    """--connect drives a server the bench did not start."""

    @coroutine
    async def setUp(self):
        super().setUp()
        self.workdir = os.path.abspath(self.mktemp())
        os.makedirs(self.workdir)
        self.server = ServerProcess(reactor, os.path.join(self.workdir, "chat.sqlite3"),
                                    20, self.workdir)
        self.port = await self.server.start()

    def tearDown(self):
        return self.server.stop()

    @coroutine
    async def test_fanoutFindsThePid(self):
        [result] = await self.bench("fanout", "-R", "2", "-S", "1", "-M", "4",
                                    "--connect", f"localhost:{self.port}")
        self.assertComplete(result)
        self.assertEqual(result.metrics["lines"], 12)
        self.assertEqual(result.server, {"kind": "chatsvc", "address": f"127.0.0.1:{self.port}",
                                         "started": False,
                                         "pid": self.server.pid, "rss_kib": result.server["rss_kib"]})
        self.assertTrue(self.server.running)

    @coroutine
    async def test_saysWhatItLeavesInTheServer(self):
        """
        Before starting, even with --quiet, it says on stderr what the runs
        will write into the server's history; every run of --repeat drives
        that same server, and its room is named bench-RUNID, which the
        server lists afterwards.
        """
        results = await self.bench("fanout", "-R", "1", "-S", "2", "-M", "3", "--repeat", "2",
                                   "--connect", f"127.0.0.1:{self.port}")
        for result in results:
            self.assertComplete(result)
        self.assertEqual([(r.server["pid"], r.server["started"]) for r in results],
                         [(self.server.pid, False)] * 2)
        [said] = self.err.getvalue().splitlines()
        first, second = (r.run_id for r in results)
        self.assertRegex(first, r"^[0-9a-f]{6}-r1$")
        self.assertEqual(second, first[:-1] + "2")
        self.assertEqual(said, "chatsvc-bench fanout: --connect: each of the 2 runs writes 1 room"
                         f" and 6 messages into the history of the server at 127.0.0.1:{self.port},"
                         f" where they stay; their rooms are named bench-{first}... to"
                         f" bench-{second}...")
        self.assertEqual([r["run_id"] for r in self.records()[:2]], [first, second])
        client = await e2e.connect(self.port, "operator")
        client.send("list")
        client.send("who")
        lines = await client.waitFor("* Online (")
        await client.bye()
        listed = {m.group(0) for m in map(re.compile(r"bench-[0-9a-f]{6}-r\d+\b").search, lines)
                  if m}
        self.assertEqual(listed, {f"bench-{first}", f"bench-{second}"})

    @coroutine
    async def test_connectionsWriteNothing(self):
        """The connections workload stores nothing: nothing to warn of."""
        [result] = await self.bench("connections", "-N", "2", "--connect",
                                    f"127.0.0.1:{self.port}")
        self.assertComplete(result)
        self.assertEqual(self.err.getvalue(), "")

    @coroutine
    async def test_joinFeedsHistoryThroughTheProtocol(self):
        [result] = await self.bench("join", "-H", "3", "-J", "2",
                                    "--connect", f"127.0.0.1:{self.port}")
        self.assertComplete(result)
        self.assertEqual((result.metrics["lines_per_join"], result.metrics["replay_lines"]), (4, 3))


class CommandLineTests(TestCase):
    timeout = 60

    def badArguments(self, *argv):
        return benchRefusal(self, *argv)

    def test_badArguments(self):
        self.assertIn("from 1 to", self.badArguments("fanout", "-S", "0"))
        self.assertIn("'many'", self.badArguments("store", "-M", "many"))
        self.assertIn("only drives a server on 127.0.0.1",
                      self.badArguments("fanout", "--connect", "10.1.2.3:3000"))
        self.assertIn("--pid goes with --connect", self.badArguments("join", "--pid", "42"))
        self.assertIn("--postgres is for a server the bench starts",
                      self.badArguments("store", "--connect", "127.0.0.1:3000",
                                        "--postgres", "postgresql://x@127.0.0.1/y"))
        self.assertIn("invalid choice", self.badArguments("nosuch"))
        self.assertIn("required", self.badArguments())
        self.assertIn("takes seconds", self.badArguments("connections", "--timeout", "0"))
        self.assertIn("--nodes needs --postgres", self.badArguments("fanout", "--nodes", "2"))
        self.assertIn("--restart-redis goes with --nodes",
                      self.badArguments("fanout", "--restart-redis", "0.5"))
        self.assertIn("between 0 and 1", self.badArguments("fanout", "--restart-redis", "1.5"))
        self.assertIn("for the fanout and store workloads",
                      self.badArguments("join", "--nodes", "2", "--postgres", "postgresql://x@127.0.0.1/y"))

    def test_repeatHelp(self):
        """--repeat promises fresh servers only for the servers the bench starts."""
        parser, _ = cli.makeParser()
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        with self.assertRaises(SystemExit):
            parser.parse_args(["store", "--help"])
        text = " ".join(out.getvalue().split())
        self.assertIn("--repeat N run N times and give medians: each run on a fresh server the"
                      " bench starts, or with --connect all on that one server, whose history"
                      " keeps what every run wrote", text)
        self.assertIn("rooms (bench-RUNID...) and messages stay in that server's history", text)

    @coroutine
    async def test_consoleScript(self):
        """python -m chatsvc.bench: a table on stdout, a JSON line, exit 0; exit 2 on misuse."""
        path = os.path.abspath(self.mktemp())
        here = os.path.dirname(path)
        env = dict(os.environ, PYTHONPATH=PROJECT_ROOT)
        out, err, code = await utils.getProcessOutputAndValue(
            sys.executable, ["-m", "chatsvc.bench", "store", "-S", "1", "-M", "3",
                             "--json", path], env=env, path=here)
        self.assertEqual(code, 0, err)
        self.assertIn(b"messages/s", out)
        with open(path) as f:
            self.assertEqual(json.loads(f.read())["metrics"]["rows_stored"], 3)
        out, err, code = await utils.getProcessOutputAndValue(
            sys.executable, ["-m", "chatsvc.bench", "fanout", "-W", "-1"], env=env, path=here)
        self.assertEqual((code, out, len(err.splitlines())), (2, b"", 1))


class PartsTests(TestCase):
    def test_percentile(self):
        values = list(range(1, 101))
        self.assertEqual([percentile(values, p) for p in (50, 99, 100)], [50, 99, 100])
        self.assertEqual(percentile([7], 99), 7)
        self.assertIsNone(percentile([], 50))

    def test_summarize(self):
        runs = [Result("x", {}, {"a": v, "b": "text"}) for v in (3, 1, 2)]
        self.assertEqual(summarize(runs), {"a": {"median": 2, "min": 1, "max": 3}})

    def test_preloadHistory(self):
        path = os.path.abspath(self.mktemp())
        preloadHistory(path, "Big.Room", 1234, payload=40, batch=500)
        self.assertEqual(countMessages(path), 1234)
        connection = sqlite3.connect(path)
        self.addCleanup(connection.close)
        self.assertEqual(connection.execute("SELECT id, name, key FROM rooms").fetchall(),
                         [(1, "Big.Room", "big.room")])
        seqs, lengths, uids = connection.execute(
            "SELECT COUNT(DISTINCT seq), MAX(LENGTH(text)), COUNT(DISTINCT uid) FROM messages"
        ).fetchone()
        self.assertEqual((seqs, lengths, uids), (1234, 40, 1234))

    def test_hostBusyIsWhatIsNotIdle(self):
        """The machine's busy time: its cores' time less idle and I/O wait, whatever the ticks."""
        stat = self.mktemp()
        with open(stat, "w") as f:
            f.write("cpu  900 0 100 4000 50 0 7 3 0 0\n"
                    "cpu0 450 0 50 2000 25 0 3 2 0 0\n"
                    "cpu1 450 0 50 2000 25 0 4 1 0 0\n"
                    "intr 1 2 3\n")
        tick = os.sysconf("SC_CLK_TCK")
        self.assertAlmostEqual(hostBusySeconds(stat, now=lambda: 100.0), 200 - 4050 / tick)
        self.assertIsNone(hostBusySeconds(self.mktemp()))

    def test_hostBusyCountsShortWakeups(self):
        """
        A process that wakes for 50 µs at a time (as an event loop answering
        small messages does) escapes most timer ticks, and /proc/stat's busy
        ticks came out below its own CPU time. The machine's busy time is
        at least what this process used meanwhile.
        """
        before, mine = hostBusySeconds(), time.process_time()
        end = time.perf_counter() + 0.5
        while time.perf_counter() < end:
            spin = time.perf_counter() + 50e-6
            while time.perf_counter() < spin:
                pass
            time.sleep(200e-6)
        used, busy = time.process_time() - mine, hostBusySeconds() - before
        self.assertGreater(used, 0.02)
        self.assertGreaterEqual(busy, used - HOST_RESOLUTION)

    def test_cpuSecondsToTheNanosecond(self):
        """A process's CPU time is read to the nanosecond, not in 10 ms ticks."""
        for _ in range(5):
            before = time.process_time()
            total, kernel = cpuSeconds(os.getpid())
            after = time.process_time()
            self.assertLessEqual(before, total)
            self.assertLessEqual(total, after)
            self.assertLessEqual(kernel, total)
        self.assertIsNone(cpuSeconds(2**22 + 1))

    def test_cpuShares(self):
        """
        Shares of one core over the time between two readings; the
        tick-counted ones (kernel, other) only over a second or more.
        """
        before = CpuReading(wall=10.0, server=1.0, kernel=0.5, bench=2.0, host=50.0)
        after = CpuReading(wall=12.0, server=2.0, kernel=0.8, bench=2.5, host=52.0)
        self.assertEqual(cpuShares(before, after), {"server_cpu_pct": 50.0, "server_sys_pct": 15.0,
                                                    "bench_cpu_pct": 25.0, "other_cpu_pct": 25.0})
        short = after._replace(wall=10.5)
        self.assertEqual(cpuShares(before, short), {"server_cpu_pct": 200.0, "server_sys_pct": None,
                                                    "bench_cpu_pct": 100.0, "other_cpu_pct": None})
        unknown = cpuShares(before._replace(server=None), after)
        self.assertEqual((unknown["server_cpu_pct"], unknown["other_cpu_pct"]), (None, None))

    def test_findPidByPort(self):
        port = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.assertEqual(findPidByPort(port.getHost().port), os.getpid())

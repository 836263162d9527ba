"""
``chatsvc-bench``: the command line. Parses the arguments (a bad one exits 2
with one line), then for each repeat starts a server (or uses ``--connect``),
measures the workload, stops the server, and prints the table and JSON lines.
"""

import argparse
import os
import resource
import shutil
import sys
import tempfile

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectError
from twisted.internet.task import LoopingCall

from chatsvc.bench import irc, plot, report, web  # noqa: F401 (irc, web: their dialects)
from chatsvc.bench.abuse import Abuse, AbuseBench
from chatsvc.bench.abuseargs import addParser as addAbuseParser
from chatsvc.bench.client import DIALECTS
from chatsvc.bench.run import Run, Runner
from chatsvc.bench.server import BenchError, findPidByPort, rssKiB
from chatsvc.bench.workloads import Connections, Fanout, Join, Store

MAX_CLIENTS = 100_000  # the server's own limit for --max-clients


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _whole(low, high):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"takes a whole number from {low:,} to {high:,}, not {text!r}")
        return value
    return parse


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"takes seconds above 0 (at most 86400), not {text!r}")
    return value


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"takes a fraction between 0 and 1, not {text!r}")
    return value


def _downtime(text):
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"takes seconds from 0 to 3600, not {text!r}")
    return value


def _address(text):
    host, _, port = text.rpartition(":")
    if host == "localhost":
        host = "127.0.0.1"
    if host != "127.0.0.1":
        raise argparse.ArgumentTypeError(
            f"the bench only drives a server on 127.0.0.1, not {text!r}")
    return host, _whole(1, 65535)(port)


def makeParser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--connect", metavar="HOST:PORT", type=_address,
                        help="drive this running server (127.0.0.1 only) instead of starting"
                        " one; its runs' rooms (bench-RUNID...) and messages stay in that"
                        " server's history")
    common.add_argument("--pid", type=_whole(1, 2**22),
                        help="with --connect: the server's PID (else found from the port)")
    common.add_argument("--timeout", type=_seconds, default=120.0, metavar="SECONDS",
                        help="stop a run that takes longer than this (default 120)")
    common.add_argument("--repeat", type=_whole(1, 100), default=1, metavar="N",
                        help="run N times and give medians: each run on a fresh server"
                        " the bench starts, or with --connect all on that one server,"
                        " whose history keeps what every run wrote")
    common.add_argument("--json", metavar="FILE",
                        help="append one JSON line per run (and a summary line) to FILE")
    common.add_argument("--protocol", choices=sorted(DIALECTS), default="chatsvc",
                        help="the wire protocol the bench speaks to chatsvc: chatsvc (its"
                        " native door), irc (its IRC door, which the bench then starts"
                        " with --irc; or an IRC server such as ngircd given with --connect)"
                        " or web (IRC over WebSocket to its web door, started with --web;"
                        " with --connect, a WebSocket at /ws). ngircd and chatsvc-irc (see"
                        " --servers) are always driven over IRC, chatsvc-web over web")
    common.add_argument("--quiet", action="store_true", help="no progress on stderr")
    common.add_argument("--postgres", metavar="URL", default=None,
                        help="run the server it starts on PostgreSQL: URL is a server the"
                        " bench may create databases on (e.g."
                        " postgresql://postgres@127.0.0.1/postgres); each run gets a database"
                        " of its own, dropped afterwards (needs the postgres extra)")
    common.add_argument("--nodes", type=_whole(1, 16), default=None, metavar="N",
                        help="with --postgres, fanout and store: start a redis-server of the"
                        " bench's own (a spare port on 127.0.0.1, nothing saved) and N nodes"
                        " on the run's database with --bus on it, and spread each role's"
                        " clients round-robin over the nodes")
    common.add_argument("--cluster-ttl", type=_seconds, default=None, metavar="SECONDS",
                        help="with --nodes: the nodes' --cluster-ttl (default theirs, 15)")
    common.add_argument("--restart-redis", type=_fraction, default=None, metavar="FRACTION",
                        help="with --nodes: once this fraction of the messages (0 to 1) has"
                        " been echoed, kill the bench's redis-server (SIGKILL) and start it"
                        " again on the same port; the latency is then given for the copies"
                        " sent around the outage and for the rest apart")
    common.add_argument("--redis-down", type=_downtime, default=0.0, metavar="SECONDS",
                        help="with --restart-redis: how long Redis stays down (default 0: it"
                        " is started again as soon as it has exited)")
    common.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                        help="pass ARG on to the server the bench starts (repeatable),"
                        " e.g. --server-arg=--history-replay=100")
    irc.addOptions(common)
    common.add_argument("--sinks", type=_whole(0, 16), default=1, metavar="N",
                        help="fanout: N helper processes count the lines of all receivers"
                        " but the probes, reading in bulk, so that the load generator is"
                        " not the limit (default 1; 0: the bench reads and times every"
                        " receiver itself)")
    common.add_argument("--probes", type=_whole(0, MAX_CLIENTS), default=10, metavar="K",
                        help="fanout with sinks: K receivers, spread over the join order,"
                        " that the bench reads at once and times for the delivery latency"
                        " (default 10)")

    parser = _Parser(
        prog="chatsvc-bench",
        description="Benchmark a chatsvc server over TCP on 127.0.0.1.")
    sub = parser.add_subparsers(dest="workload", metavar="WORKLOAD", required=True)
    whole = _whole

    p = sub.add_parser("fanout", parents=[common], help="one room: R receivers, S senders",
                       description="R receivers and S senders in one room; each sender says"
                       " M messages keeping at most W unechoed.")
    p.add_argument("-R", "--receivers", type=whole(0, MAX_CLIENTS - 100), default=10)
    p.add_argument("-S", "--senders", type=whole(1, MAX_CLIENTS - 100), default=5)
    p.add_argument("-M", "--messages", type=whole(1, 10_000_000), default=1000,
                   help="messages per sender (default 1000)")
    p.add_argument("-W", "--window", type=whole(1, 100_000), default=1,
                   help="messages in flight per sender (1: wait for each echo)")
    p.add_argument("-P", "--payload", type=whole(32, 2048), default=64,
                   help="message size in bytes (default 64)")

    p = sub.add_parser("join", parents=[common], help="joins into a room with H messages",
                       description="Preload a room with H messages, then time J joins of"
                       " fresh users (from `join` to the replay's last line).")
    p.add_argument("-H", "--history", type=whole(0, 100_000_000), default=1000,
                   help="messages stored in the room (default 1000)")
    p.add_argument("-J", "--joins", type=whole(1, 10_000), default=50)
    p.add_argument("-P", "--payload", type=whole(32, 2048), default=64)

    p = sub.add_parser("store", parents=[common], help="durable messages/s, S senders",
                       description="S senders, each in a room of its own, say M messages"
                       " each at full speed with W in flight; an echo means stored.")
    p.add_argument("-S", "--senders", type=whole(1, MAX_CLIENTS - 100), default=20)
    p.add_argument("-M", "--messages", type=whole(1, 10_000_000), default=1000)
    p.add_argument("-W", "--window", type=whole(1, 100_000), default=32)
    p.add_argument("-P", "--payload", type=whole(32, 2048), default=64)

    p = sub.add_parser("connections", parents=[common], help="server RSS per idle connection",
                       description="Open N named idle connections and read the server's RSS"
                       " before and after.")
    p.add_argument("-N", "--connections", type=whole(1, MAX_CLIENTS - 100), default=1000)
    addAbuseParser(sub, common, whole)
    plot.addParser(sub)
    return parser, sub.choices


def parseArgs(argv):
    parser, subs = makeParser()
    args = parser.parse_args(argv)
    if args.workload == "plot":
        return args, None
    sub = subs[args.workload]
    if args.pid is not None and args.connect is None:
        sub.error("--pid goes with --connect (the bench knows the PID of a server it starts)")
    if args.server_arg and args.connect is not None:
        sub.error("--server-arg is for a server the bench starts, not one given by --connect")
    if args.connect and args.postgres:
        sub.error("--postgres is for a server the bench starts, not one given by --connect")
    _checkNodes(args, sub)
    if args.workload == "fanout":
        workload = Fanout(args.receivers, args.senders, args.messages, args.window, args.payload)
    elif args.workload == "join":
        workload = Join(args.history, args.joins, args.payload)
    elif args.workload == "store":
        workload = Store(args.senders, args.messages, args.window, args.payload)
    elif args.workload == "abuse":
        workload = Abuse.fromArgs(args, sub)
    else:
        workload = Connections(args.connections)
    irc.checkArgs(args, sub, workload)
    files = workload.clientsNeeded() + 64
    if files > resource.getrlimit(resource.RLIMIT_NOFILE)[1]:
        sub.error(f"{workload.clientsNeeded():,} connections need more open files than"
                  f" this shell allows ({resource.getrlimit(resource.RLIMIT_NOFILE)[1]:,})")
    return args, workload


def _checkNodes(args, sub):
    """--nodes and the options that go with it (a bad combination exits 2)."""
    if args.nodes is None:
        for option, value in (("--cluster-ttl", args.cluster_ttl),
                              ("--restart-redis", args.restart_redis)):
            if value is not None:
                sub.error(f"{option} goes with --nodes")
        if args.redis_down:
            sub.error("--redis-down goes with --restart-redis")
        return
    if args.workload not in ("fanout", "store"):
        sub.error("--nodes is for the fanout and store workloads")
    if not args.postgres:
        sub.error("--nodes needs --postgres: the nodes share a PostgreSQL database")
    if args.connect is not None:
        sub.error("--nodes starts its own nodes; --connect drives a running server")
    if args.protocol != "chatsvc" or args.servers or args.irc_server:
        sub.error("--nodes drives chatsvc's native door only (no --protocol, --servers)")
    if args.redis_down and args.restart_redis is None:
        sub.error("--redis-down goes with --restart-redis")
    from chatsvc.bench.privateredis import findRedisServer
    if findRedisServer() is None:
        sub.error("--nodes starts a redis-server of its own, and there is none on PATH"
                  " (Debian: apt-get install redis-server)")


class Bench(Runner):
    """Runs one workload as the arguments say (the reactor is already running)."""

    def __init__(self, reactor, args, workload, out=None, err=None):
        super().__init__(reactor, args, workload, out, err)
        self.targets = irc.targets(args, workload)  # the servers to measure, in turn

    async def runAll(self) -> list:
        if self.args.connect is not None:
            self.warnOfWrites()
        workdir = tempfile.mkdtemp(prefix="chatsvc-bench-")
        try:
            if self.args.connect is None and any(t.name == "chatsvc" for t in self.targets):
                self.workload.prepare(workdir, self.say)
            results, byTarget = [], {id(t): [] for t in self.targets}
            for index in range(1, self.args.repeat + 1):
                for target in self.targets:  # interleaved: A B A B ...
                    result = await self.runOnce(workdir, index, target)
                    results.append(result)
                    byTarget[id(target)].append(result)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        for target in self.targets:
            mine = byTarget[id(target)]
            report.table(mine, self.out)
            if self.args.json:
                report.append_json(self.args.json, mine)
        return results

    def warnOfWrites(self):
        """Before driving a server it did not start: what the runs will leave in it."""
        rooms, messages = self.targets[0].workload.writes()
        if not rooms and not messages:
            return
        runs, (host, port) = self.args.repeat, self.args.connect
        what = f"{rooms:,} {'room' if rooms == 1 else 'rooms'} and {messages:,} messages"
        where = f"the history of the server at {host}:{port}, where they stay"
        if runs == 1:
            self.warn(f"--connect: this run writes {what} into {where}; its rooms are named"
                      f" bench-{self.runId(1)}...")
        else:
            self.warn(f"--connect: each of the {runs} runs writes {what} into {where}; their"
                      f" rooms are named bench-{self.runId(1)}... to bench-{self.runId(runs)}...")

    async def runOnce(self, workdir, index, target=None):
        args = self.args
        target = target or self.targets[0]
        workload = target.workload
        result = report.Result(workload.name, workload.params(), run=index, runs=args.repeat,
                               run_id=self.runId(index))
        if args.sinks and workload.name == "fanout":
            result.params.update(sinks=args.sinks, probes=args.probes)
        server = drop = None
        if args.connect:
            host, port = args.connect
            pid = args.pid or findPidByPort(port, host)
            result.server = {"kind": target.name, "address": f"{host}:{port}", "pid": pid,
                             "started": False}
        else:
            db = workload.db or os.path.join(workdir, f"chat{index}.sqlite3")
            if args.postgres:
                from chatsvc.bench.postgres import throwawayDatabase
                db, drop = throwawayDatabase(args.postgres, self.runId(index))
                self.reactor.addSystemEventTrigger("before", "shutdown", drop)
            server = target.newServer(self.reactor, db,
                                      min(MAX_CLIENTS, workload.clientsNeeded() + 10),
                                      workdir, args.server_arg)
            try:
                port = await server.start(timeout=min(60.0, args.timeout))
            except BenchError as e:
                result.complete = False
                result.errors.append(str(e))
                await server.stop()
                return result
            host, pid = "127.0.0.1", server.pid
            result.server = {"kind": target.name, "address": f"{host}:{port}", "pid": pid,
                             "started": True, "startup_s": round(server.startup, 3),
                             **target.describe(server)}
        try:
            await self._measure(result, host, port, pid, index, target)
        except BaseException:
            if server is not None:
                await server.stop()
            raise
        if server is not None:
            if not server.running:
                result.complete = False
                result.errors.append(f"the server exited (status {server.exited}) during the"
                                     f" run; its last output: {server.lastOutput()}")
            await server.stop()
            result.server["tracebacks"] = server.tracebacks
            if server.tracebacks:
                result.errors.append(f"the server logged {server.tracebacks} tracebacks;"
                                     f" its last output: {server.lastOutput()}")
            if result.metrics:
                workload.afterServer(result.metrics, server)
        if drop is not None:
            drop()
        return result

    def newRun(self, host, port, pid, index, target):
        return Run(self.reactor, host, port, target.dialect(), self.args.timeout, pid,
                   self.runId(index))

    async def _measure(self, result, host, port, pid, index, target):
        args, workload = self.args, target.workload
        run = self.newRun(host, port, pid, index, target)
        run.sinks, run.probes = args.sinks, args.probes
        which = f"{target.name} " if len(self.targets) > 1 else ""
        progress = LoopingCall(lambda: self.say(
            f"{which}run {index}/{args.repeat}, {run.clock() / 1e6:.0f} s: {run.progress()}"))
        if not args.quiet:
            progress.start(2.0, now=False)
        try:
            result.metrics, result.complete = await workload.measure(run)
        except BenchError as e:
            result.complete = False
            result.errors.append(str(e))
        except ConnectError as e:  # no server there: one line, not a traceback
            result.complete = False
            result.errors.append(f"could not connect to {host}:{port}: {e}")
        finally:
            if progress.running:
                progress.stop()
            if pid:
                result.server["rss_kib"] = rssKiB(pid)
            await run.close()
        result.errors[:0] = [e for e in run.errors if e not in result.errors]


def runnerFor(args, workload):
    """What runs the repeats: one server, two (abuse) or a cluster (--nodes)."""
    if workload.name == "abuse":
        return AbuseBench
    if getattr(args, "nodes", None):
        from chatsvc.bench.nodes import ClusterBench
        return ClusterBench
    return Bench


def _raiseFileLimit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the server inherits it


def main(argv=None):
    """The console script ``chatsvc-bench``."""
    from twisted.internet.task import react

    args, workload = parseArgs(sys.argv[1:] if argv is None else argv)
    if workload is None:  # chatsvc-bench plot
        raise SystemExit(plot.run(args))
    _raiseFileLimit()

    async def go(reactor):
        results = await runnerFor(args, workload)(reactor, args, workload).runAll()
        if not all(r.complete for r in results):
            raise SystemExit(1)

    react(lambda reactor: Deferred.fromCoroutine(go(reactor)))

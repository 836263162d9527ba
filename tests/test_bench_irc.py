"""
chatsvc-bench over IRC (``--protocol irc``) against a tiny fake IRC server
written here with Twisted (no ngircd needed): exact counts with tiny
parameters, PING answered while counting, the witness releasing each sender's
window, echo-message asked for and the echo releasing it, connections; the
options that do not go together; the plot. chatsvc's own IRC door is driven
as the bench starts it, and one test also runs ngircd beside chatsvc when
ngircd is installed.
"""

import importlib.util
import io
import json
import os
import sys

from twisted.internet import reactor
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineOnlyReceiver
from twisted.trial.unittest import SkipTest, TestCase

from chatsvc.bench import cli, main, plot, sink
from chatsvc.bench.irc import IRC, IRC_LISTEN, findNgircd, ngircdConfig, targets
from chatsvc.bench.run import Run
from tests.support import benchRefusal, coroutine


class FakeIrcClient(LineOnlyReceiver):
    """One client of L{FakeIrcServer}: just enough of RFC 2812 for the bench."""

    delimiter = b"\n"
    MAX_LENGTH = 1024

    def connectionMade(self):
        self.nick = None
        self.channel = None
        self.unwitnessed = 0
        self.caps = set()

    def out(self, line):
        self.transport.write(line.encode("utf-8") + b"\r\n")

    def lineReceived(self, line):
        line = line.rstrip(b"\r").decode("utf-8")
        server = self.factory
        command, _, rest = line.partition(" ")
        server.commands.append(command)
        if command == "CAP":
            sub, _, asked = rest.partition(" ")
            asked = asked.lstrip(":")
            if sub == "REQ":
                granted = asked in server.caps
                if granted:
                    self.caps.add(asked)
                self.out(f":fake.irc CAP * {'ACK' if granted else 'NAK'} :{asked}")
        elif command == "NICK":
            if server.refuse(rest):
                self.out(f":fake.irc 433 * {rest} :Nickname already in use")
                return
            self.nick = rest
        elif command == "USER":
            for n, text in (("001", "Welcome"), ("375", "- motd"), ("372", "- hi"),
                            ("376", "End of MOTD")):
                self.out(f":fake.irc {n} {self.nick} :{text}")
        elif command == "JOIN":
            self.channel = rest
            members = server.channels.setdefault(rest, [])
            members.append(self)
            for member in members:
                member.out(f":{self.nick}!u@127.0.0.1 JOIN :{rest}")
            self.out(f":fake.irc 353 {self.nick} = {rest} :{' '.join(m.nick for m in members)}")
            self.out(f":fake.irc 366 {self.nick} {rest} :End of NAMES list")
        elif command == "PING":
            self.out(f":fake.irc PONG fake.irc {rest}")
        elif command == "PONG":
            server.pongs.append(rest)
        elif command == "PRIVMSG":
            target, _, text = rest.partition(" ")
            members = server.channels.get(target, [])
            if server.pingOnce and not server.pinged:
                server.pinged = True
                for member in members:
                    member.out("PING :probe")
            server.privmsgs.append(self.nick)
            for member in members:
                # An IRC server does not echo to the sender unless it asked for echo-message.
                if member is not self or "echo-message" in self.caps:
                    member.out(f":{self.nick}!u@127.0.0.1 PRIVMSG {target} {text}")


class FakeIrcServer(Factory):
    protocol = FakeIrcClient

    def __init__(self, pingOnce=False, refuse=lambda nick: False, caps=()):
        self.caps = set(caps)  # what CAP REQ may turn on
        self.pingOnce = pingOnce
        self.pinged = False
        self.refuse = refuse
        self.commands = []
        self.pongs = []
        self.privmsgs = []
        self.channels = {}


class IrcBenchTestCase(TestCase):
    timeout = 30

    def setUp(self):
        self.json = os.path.abspath(self.mktemp())
        self.out = io.StringIO()

    def serve(self, **options):
        self.server = FakeIrcServer(**options)
        port = reactor.listenTCP(0, self.server, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return f"127.0.0.1:{port.getHost().port}"

    async def bench(self, *argv, **options):
        address = self.serve(**options)
        args, workload = cli.parseArgs([*argv, "--protocol", "irc", "--connect", address,
                                        "--quiet", "--json", self.json])
        return await cli.Bench(reactor, args, workload, out=self.out).runAll()

    def assertComplete(self, result):
        self.assertEqual((result.complete, result.errors), (True, []))


class FanoutTests(IrcBenchTestCase):
    @coroutine
    async def test_exactCounts(self):
        """
        Every PRIVMSG reaches every other client once: (R+S-1)*S*M lines, each
        timed; the senders' windows are released by their witnesses.
        """
        [result] = await self.bench("fanout", "-R", "3", "-S", "2", "-M", "5")
        self.assertComplete(result)
        m = result.metrics
        self.assertEqual((m["messages"], m["messages_expected"], m["lines"], m["lines_expected"]),
                         (10, 10, 40, 40))
        self.assertEqual(m["pings_answered"], 0)
        for key in ("lines_per_s", "msgs_per_s", "echo_p50_ms", "delivery_p99_ms"):
            self.assertGreater(m[key], 0)
        self.assertEqual(self.server.commands.count("PRIVMSG"), 10)
        self.assertEqual(self.server.commands.count("NICK"), 5)
        [channel] = self.server.channels
        self.assertTrue(channel.startswith("#bench-"), channel)
        self.assertEqual(result.params["protocol"], "irc")
        self.assertEqual(result.server["kind"], "irc")
        [record, *rest] = self._records()
        self.assertEqual((record["metrics"]["lines"], record["server"]["kind"], rest), (40, "irc", []))
        self.assertIn("witness latency p99", self.out.getvalue())

    @coroutine
    async def test_sendersOnly(self):
        """With no receivers each sender's witness is the next sender."""
        [result] = await self.bench("fanout", "-R", "0", "-S", "3", "-M", "4")
        self.assertComplete(result)
        self.assertEqual((result.metrics["messages"], result.metrics["lines"]), (12, 24))

    @coroutine
    async def test_window(self):
        """W=3: still exact, and every message acknowledged in order."""
        results = await self.bench("fanout", "-R", "1", "-S", "1", "-M", "7", "-W", "3",
                                   "--repeat", "2")
        for result in results:
            self.assertComplete(result)
            self.assertEqual((result.metrics["messages"], result.metrics["lines"]), (7, 7))
        self.assertEqual(len(self.server.privmsgs), 14)
        summary = self._records()[-1]
        self.assertEqual((summary["server"], summary["summary"]["lines"]["median"]), ("irc", 7))

    @coroutine
    async def test_pingWhileCounting(self):
        """A server PING in the middle of the run gets a PONG and is not a delivered line."""
        [result] = await self.bench("fanout", "-R", "2", "-S", "2", "-M", "6", pingOnce=True)
        self.assertComplete(result)
        self.assertEqual(result.metrics["lines"], (2 + 2 - 1) * 2 * 6)
        self.assertEqual(result.metrics["pings_answered"], 4)
        self.assertEqual(self.server.pongs, [":probe"] * 4)

    @coroutine
    async def test_refusedNick(self):
        """An error numeric while logging in ends the run with one clear error."""
        [result] = await self.bench("fanout", "-R", "1", "-S", "1", "-M", "2",
                                    refuse=lambda nick: nick.endswith("s1"))
        self.assertFalse(result.complete)
        self.assertEqual(len(result.errors), 1, result.errors)
        self.assertIn("433", result.errors[0])

    @coroutine
    async def test_echo(self):
        """
        --irc-ack echo: each client asks for echo-message; everyone gets every
        message, (R+S)*S*M lines, and a sender's own copy releases its window.
        """
        [result] = await self.bench("fanout", "-R", "2", "-S", "2", "-M", "5", "-W", "2",
                                    "--irc-ack", "echo", caps=["echo-message"])
        self.assertComplete(result)
        m = result.metrics
        self.assertEqual((m["messages"], m["lines"], m["lines_expected"]), (10, 40, 40))
        self.assertEqual(result.params["ack"], "echo")
        self.assertEqual(self.server.commands.count("CAP"), 2 * 4)  # REQ and END each
        self.assertGreater(m["echo_p50_ms"], 0)
        self.assertIn("echo latency p99", self.out.getvalue())
        self.assertNotIn("witness", self.out.getvalue())

    @coroutine
    async def test_echoAlone(self):
        """With echo-message one sender alone is a run: its echoes are its lines."""
        [result] = await self.bench("fanout", "-R", "0", "-S", "1", "-M", "4",
                                    "--irc-ack", "echo", caps=["echo-message"])
        self.assertComplete(result)
        self.assertEqual((result.metrics["messages"], result.metrics["lines"]), (4, 4))

    @coroutine
    async def test_echoRefused(self):
        """A server that does not grant echo-message: one clear error, no run."""
        [result] = await self.bench("fanout", "-R", "1", "-S", "1", "-M", "2",
                                    "--irc-ack", "echo")
        self.assertFalse(result.complete)
        self.assertEqual(len(result.errors), 1, result.errors)
        self.assertIn("did not grant the echo-message capability", result.errors[0])
        self.assertIn("CAP * NAK", result.errors[0])

    def _records(self):
        with open(self.json) as f:
            return [json.loads(line) for line in f]


class ChatsvcIrcTests(TestCase):
    """--protocol irc without --connect: chatsvc started with its IRC door, driven over IRC."""

    timeout = 60

    async def bench(self, *argv):
        out = io.StringIO()
        args, workload = cli.parseArgs([*argv, "--protocol", "irc", "--quiet",
                                        "--json", os.path.abspath(self.mktemp())])
        results = await cli.Bench(reactor, args, workload, out=out).runAll()
        return results, out.getvalue()

    @coroutine
    async def test_echo(self):
        """
        The default: echo-message, so (R+S)*S*M lines as natively; the
        receivers a sink counts are counted by the same tag; the server was
        started with the IRC door on loopback and the capacity options.
        """
        [result], out = await self.bench("fanout", "-R", "4", "-S", "2", "-M", "5",
                                         "--sinks", "1", "--probes", "1")
        self.assertEqual((result.complete, result.errors), (True, []))
        m = result.metrics
        self.assertEqual((m["messages"], m["lines"], m["pings_answered"]), (10, (4 + 2) * 10, 0))
        self.assertEqual(m["delivery_timed"], (1 + 2) * 10)  # one probe and the senders
        self.assertEqual((result.server["kind"], result.params["protocol"],
                          result.params["ack"]), ("chatsvc-irc", "irc", "echo"))
        args = result.server["args"]
        self.assertIn(IRC_LISTEN, args[args.index("--irc") + 1:][:1])
        for option, value in (("--flood-rate", "0"), ("--exempt", "127.0.0.0/8"),
                              ("--max-clients", "16"), ("--irc-server-name", "bench.invalid")):
            self.assertEqual(args[args.index(option) + 1], value, option)
        self.assertEqual(result.server["tracebacks"], 0)
        self.assertIn("(server chatsvc-irc 127.0.0.1:", out)
        self.assertIn("server_us_per_line", m)

    @coroutine
    async def test_witness(self):
        """--irc-ack witness: driven exactly as ngircd is, (R+S-1)*S*M lines."""
        [result], out = await self.bench("fanout", "-R", "2", "-S", "2", "-M", "5",
                                         "--irc-ack", "witness")
        self.assertEqual((result.complete, result.errors), (True, []))
        self.assertEqual((result.metrics["messages"], result.metrics["lines"]), (10, 30))
        self.assertEqual(result.params["ack"], "witness")
        self.assertIn("witness latency p99", out)


class SinkTests(IrcBenchTestCase):
    """--sinks: helper processes count most receivers' lines; the counts stay exact."""

    @coroutine
    async def test_irc(self):
        """Witnesses stay in the bench (timed); a sink also answers PING."""
        [result] = await self.bench("fanout", "-R", "5", "-S", "2", "-M", "6", "--sinks", "1",
                                    "--probes", "0", pingOnce=True)
        self.assertComplete(result)
        m = result.metrics
        self.assertEqual((m["messages"], m["lines"], m["pings_answered"]),
                         (12, (5 + 2 - 1) * 2 * 6, 7))
        self.assertEqual(self.server.pongs, [":probe"] * 7)
        # Timed: the two witnesses' copies (12 each) and each sender's 6 of the other's.
        self.assertEqual(m["delivery_timed"], 2 * 12 + 2 * 6)
        self.assertGreater(m["delivery_p99_ms"], 0)

    @coroutine
    async def test_chatsvc(self):
        """Against our server, started by the bench: two sinks, two probes."""
        path = os.path.abspath(self.mktemp())
        args, workload = cli.parseArgs(["fanout", "-R", "6", "-S", "2", "-M", "5", "--sinks", "2",
                                        "--probes", "2", "--quiet", "--json", path])
        [result] = await cli.Bench(reactor, args, workload, out=self.out).runAll()
        self.assertComplete(result)
        m = result.metrics
        self.assertEqual((m["messages"], m["lines"]), (10, (6 + 2) * 10))
        self.assertEqual(m["delivery_timed"], (2 + 2) * 10)  # probes and senders only
        self.assertEqual((result.params["sinks"], result.params["probes"]), (2, 2))
        self.assertIn("server_us_per_line", result.metrics)  # None when no CPU tick passed

    def test_probesSpreadOverTheJoinOrder(self):
        run = Run(reactor, "127.0.0.1", 1, None, 1)
        run._deadline.cancel()
        run.sinks, run.probes = 1, 3
        receivers = [object() for _ in range(10)]
        kept, moved = sink.split(run, receivers, pinned={id(receivers[1])})
        self.assertEqual([receivers.index(c) for c in kept], [0, 1, 4, 9])
        self.assertEqual(len(moved), 6)
        run.sinks = 0
        self.assertEqual(sink.split(run, receivers), (receivers, []))


class ConnectionsTests(IrcBenchTestCase):
    @coroutine
    async def test_connections(self):
        """N registered idle connections (plus one warm-up), RSS read from /proc."""
        [result] = await self.bench("connections", "-N", "4")
        self.assertComplete(result)
        self.assertEqual(result.metrics["connections"], 4)
        self.assertEqual(self.server.commands.count("USER"), 5)
        self.assertIn("rss_per_conn_bytes", result.metrics)


class DialectTests(TestCase):
    def test_lines(self):
        d = IRC()
        self.assertEqual(d.create("bench-ab"), "JOIN #bench-ab")
        self.assertEqual(d.say(b"@1.2.3xx"), b"PRIVMSG #bench-ab :@1.2.3xx\r\n")
        self.assertTrue(d.joined("bench-ab")(":s 366 me #bench-ab :End of NAMES list"))
        self.assertFalse(d.joined("bench-ab")(":s 366 me #other :End of NAMES list"))
        self.assertTrue(d.synced()(":s PONG s :chatsvc-bench-sync"))
        self.assertTrue(d.isError(":s 433 * me :Nickname already in use"))
        self.assertTrue(d.isError("ERROR :Closing connection"))
        self.assertFalse(d.isError(":s 422 me :MOTD File is missing"))
        self.assertFalse(d.isError(":s 001 me :Welcome"))
        found = d.marker.findall(b":a!u@h PRIVMSG #r :@3.14.1592xx\r\n:s NOTICE me :hi\r\n")
        self.assertEqual(found, [(b"3", b"14", b"1592")])

    def test_ngircdConfig(self):
        text = ngircdConfig(6999, "/tmp/x")
        for line in ("Listen = 127.0.0.1", "Ports = 6999", "MaxConnections = 0",
                     "MaxConnectionsIP = 0", "MaxJoins = 0", "MaxPenaltyTime = 0",
                     "DNS = no", "Ident = no", "PAM = no", "IncludeDir = /tmp/x"):
            self.assertIn(f"\n{line}\n", text)


class CommandLineTests(TestCase):
    def badArguments(self, *argv):
        return benchRefusal(self, *argv)

    def test_badCombinations(self):
        self.assertIn("ngircd does not offer echo-message", self.badArguments(
            "fanout", "--servers", "chatsvc,ngircd", "--protocol", "irc", "--irc-ack", "echo",
            "--ngircd", sys.executable))
        self.assertIn("--irc-ack is for runs over IRC", self.badArguments(
            "fanout", "--irc-ack", "witness"))
        self.assertIn("chatsvc is chatsvc-irc", self.badArguments(
            "fanout", "--servers", "chatsvc,chatsvc-irc", "--protocol", "irc"))
        self.assertIn("does not apply over IRC", self.badArguments(
            "store", "--servers", "chatsvc,chatsvc-irc"))
        self.assertIn("at least two clients", self.badArguments(
            "fanout", "-R", "0", "-S", "1", "--protocol", "irc", "--irc-ack", "witness"))
        self.assertIn("does not apply over IRC", self.badArguments(
            "join", "--protocol", "irc", "--connect", "127.0.0.1:6667"))
        self.assertIn("does not apply over IRC", self.badArguments(
            "store", "--servers", "chatsvc,ngircd", "--ngircd", sys.executable))
        self.assertIn("at least two clients", self.badArguments(
            "fanout", "-R", "0", "-S", "1", "--protocol", "irc", "--connect", "127.0.0.1:6667"))
        self.assertIn("at most 400", self.badArguments(
            "fanout", "-P", "500", "--protocol", "irc", "--connect", "127.0.0.1:6667"))
        self.assertIn("comma-separated", self.badArguments("fanout", "--servers", "chatsvc,foo"))
        self.assertIn("--connect drives", self.badArguments(
            "fanout", "--irc-server", "ngircd", "--connect", "127.0.0.1:6667"))
        self.assertIn("ngircd not found", self.badArguments(
            "fanout", "--irc-server", "ngircd", "--ngircd", "/nonexistent/ngircd"))
        self.assertIn("for chatsvc", self.badArguments(
            "fanout", "--irc-server", "ngircd", "--ngircd", sys.executable,
            "--server-arg=--history-replay=1"))


    def test_targets(self):
        """Which servers an invocation measures, over which protocol, acknowledged how."""
        def made(*argv):
            args, workload = cli.parseArgs(["fanout", *argv])
            return [(t.name, getattr(t.workload, "ack", None)) for t in targets(args, workload)]

        ngircd = ("--ngircd", sys.executable)
        self.assertEqual(made("--protocol", "irc"), [("chatsvc-irc", "echo")])
        self.assertEqual(made("--protocol", "irc", "-R", "0", "-S", "1"), [("chatsvc-irc", "echo")])
        self.assertEqual(made("--servers", "chatsvc,ngircd", "--protocol", "irc", *ngircd),
                         [("chatsvc-irc", "echo"), ("ngircd", "witness")])
        self.assertEqual(made("--servers", "chatsvc,ngircd", "--protocol", "irc",
                              "--irc-ack", "witness", *ngircd),
                         [("chatsvc-irc", "witness"), ("ngircd", "witness")])
        self.assertEqual(made("--servers", "chatsvc,ngircd", *ngircd),
                         [("chatsvc", None), ("ngircd", "witness")])
        self.assertEqual(made("--servers", "chatsvc,chatsvc-irc,ngircd", *ngircd),
                         [("chatsvc", None), ("chatsvc-irc", "echo"), ("ngircd", "witness")])
        self.assertEqual(made("--protocol", "irc", "--connect", "127.0.0.1:6667"),
                         [("irc", "witness")])
        self.assertEqual(made("--protocol", "irc", "--connect", "127.0.0.1:6667",
                              "--irc-ack", "echo"), [("irc", "echo")])


def _record(server, receivers, lines, p99, complete=True, bench="fanout"):
    return {"bench": bench, "params": {"receivers": receivers, "senders": 5, "window": 1,
                                       "payload": 64}, "complete": complete,
            "metrics": {"lines_per_s": lines, "delivery_p99_ms": p99},
            "server": {"kind": server}}


class PlotTests(TestCase):
    def records(self):
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            records = (_record("chatsvc", 10, 100, 2.0), _record("chatsvc", 10, 300, 4.0),
                       _record("chatsvc", 10, 200, 3.0), _record("chatsvc", 50, 400, 5.0),
                       _record("ngircd", 10, 900, 1.0),
                       _record("ngircd", 50, 1, 1.0, complete=False),
                       _record("chatsvc", 10, 1, 1.0, bench="store"))
            f.writelines(json.dumps(record) + "\n" for record in records)
            f.write(json.dumps({"bench": "fanout", "summary": {}, "runs": 3}) + "\n")
        return path

    def test_series(self):
        """Medians per server and R of the completed fanout runs; min-max kept."""
        found = plot.series(plot.load([self.records()]))
        self.assertEqual([s.server for s in found], ["chatsvc", "ngircd"])
        self.assertEqual(found[0].rows("lines_per_s"), [(10, 200, 100, 300, 3), (50, 400, 400, 400, 1)])
        self.assertEqual(found[0].rows("delivery_p99_ms")[0][1], 3.0)
        self.assertEqual(found[1].rows("lines_per_s"), [(10, 900, 900, 900, 1)])

    def test_sinksApart(self):
        """Runs made with --sinks are a line of their own, or the only ones with --sinks."""
        path = self.records()
        with open(path, "a") as f:
            record = _record("chatsvc", 10, 5000, 9.0)
            record["params"]["sinks"] = 1
            f.write(json.dumps(record) + "\n")
        records = plot.load([path])
        self.assertEqual([(s.server, s.sinks) for s in plot.series(records)],
                         [("chatsvc", 0), ("chatsvc", 1), ("ngircd", 0)])
        [only] = plot.series(records, sinks=1)
        self.assertEqual(only.rows("lines_per_s"), [(10, 5000, 5000, 5000, 1)])

    def test_serverArgsApart(self):
        """A server started with --server-arg values is a line of its own, named by them."""
        path = self.records()
        with open(path, "a") as f:
            record = _record("chatsvc", 10, 7000, 2.0)
            record["server"]["extra"] = ["--durability=crash"]
            f.write(json.dumps(record) + "\n")
        found = plot.series(plot.load([path]))
        self.assertEqual([s.server for s in found],
                         ["chatsvc", "chatsvc --durability=crash", "ngircd"])
        self.assertEqual(found[1].rows("lines_per_s"), [(10, 7000, 7000, 7000, 1)])

    def test_writesPng(self):
        if importlib.util.find_spec("matplotlib") is None:
            raise SkipTest("matplotlib is not installed (the optional extra 'plot')")
        output = os.path.abspath(self.mktemp()) + ".png"
        err = io.StringIO()
        self.patch(sys, "stderr", err)
        with self.assertRaises(SystemExit) as caught:
            main(["plot", self.records(), "-o", output, "--title", "test"])
        self.assertEqual(caught.exception.code, 0)
        with open(output, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        self.assertIn("wrote", err.getvalue())

    def test_withoutMatplotlib(self):
        """One clear line, exit 1, when matplotlib is missing."""
        self.patch(sys, "modules", {**sys.modules, "matplotlib": None})
        err = io.StringIO()
        args, _ = cli.parseArgs(["plot", self.records(), "-o", "x.png"])
        self.assertEqual(plot.run(args, err), 1)
        self.assertEqual(err.getvalue().splitlines(),
                         [("chatsvc-bench plot: matplotlib is not installed:"
                           " pip install 'chatsvc[plot]' (or pip install matplotlib)")])

    def test_nothingToPlot(self):
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write(json.dumps(_record("chatsvc", 10, 1, 1.0, bench="store")) + "\n")
        err = io.StringIO()
        args, _ = cli.parseArgs(["plot", path, "-o", "x.png"])
        self.assertEqual(plot.run(args, err), 1)
        self.assertIn("no completed fanout runs", err.getvalue())


class NgircdTests(TestCase):
    """The real thing, when the ngircd package is installed."""

    timeout = 60

    @coroutine
    async def test_sideBySide(self):
        if findNgircd() is None:
            raise SkipTest("ngircd is not installed (apt-get install ngircd)")
        path = os.path.abspath(self.mktemp())
        out = io.StringIO()
        args, workload = cli.parseArgs(["fanout", "-R", "2", "-S", "2", "-M", "5", "--servers",
                                        "chatsvc,ngircd", "--quiet", "--json", path])
        results = await cli.Bench(reactor, args, workload, out=out).runAll()
        self.assertEqual([(r.server["kind"], r.complete, r.errors, r.metrics["lines"])
                          for r in results],
                         [("chatsvc", True, [], 40), ("ngircd", True, [], 30)])
        self.assertIn("MaxPenaltyTime = 0", results[1].server["config"])
        self.assertIn("(server ngircd 127.0.0.1:", out.getvalue())
        with open(path) as f:
            kinds = [json.loads(line)["server"]["kind"] for line in f]
        self.assertEqual(kinds, ["chatsvc", "ngircd"])

    @coroutine
    async def test_sideBySideOverIrc(self):
        """--protocol irc: chatsvc's IRC door (echo-message) beside ngircd (witness)."""
        if findNgircd() is None:
            raise SkipTest("ngircd is not installed (apt-get install ngircd)")
        path = os.path.abspath(self.mktemp())
        args, workload = cli.parseArgs(["fanout", "-R", "2", "-S", "2", "-M", "5", "--servers",
                                        "chatsvc,ngircd", "--protocol", "irc", "--quiet",
                                        "--json", path])
        results = await cli.Bench(reactor, args, workload, out=io.StringIO()).runAll()
        self.assertEqual([(r.server["kind"], r.complete, r.errors, r.metrics["lines"],
                           r.params["ack"]) for r in results],
                         [("chatsvc-irc", True, [], 40, "echo"),
                          ("ngircd", True, [], 30, "witness")])

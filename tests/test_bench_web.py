"""
chatsvc-bench over WebSocket (``--protocol web``): the IRC dialect carried by
chatsvc's web door. Against the tiny fake IRC server of test_bench_irc behind
the web door's own WebSocket resource, in this process: exact counts, the
echo and the witness, an IRC PING and a WebSocket ping answered while
counting (by the bench and by a sink), the upgrade as the bench sends it
(the subprotocol, no Origin) and a server that does not choose the
subprotocol. Then chatsvc's web door as the bench starts it, the sink's
frame reader, and the options.
"""

import io
import json
import os

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from twisted.web.server import Site
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import Ping, TextMessage

from chatsvc.bench import cli, sink
from chatsvc.bench.irc import targets
from chatsvc.bench.web import WEB_LISTEN, WebIRC
from chatsvc.doors.web import websocket
from chatsvc.doors.web.websocket import PING_INTERVAL, IRCWebSocketResource
from tests.support import benchRefusal, coroutine
from tests.test_bench_irc import FakeIrcClient, FakeIrcServer


class FakeWebIrcClient(FakeIrcClient):
    """A FakeIrcClient that can also make the web door ping every WebSocket once."""

    def lineReceived(self, line):
        server = self.factory
        if server.wsPingOnce and not server.wsPinged and line.startswith(b"PRIVMSG"):
            server.wsPinged = True
            server.clock.advance(PING_INTERVAL)  # every socket's keep-alive ping, now
        super().lineReceived(line)


class FakeWebIrcServer(FakeIrcServer):
    """FakeIrcServer as the web door's IRC factory: its clock times the door's pings."""

    protocol = FakeWebIrcClient

    def __init__(self, wsPingOnce=False, **options):
        super().__init__(**options)
        self.clock = Clock()
        self.wsPingOnce = wsPingOnce
        self.wsPinged = False


class RecordingResource(IRCWebSocketResource):
    """The web door's WebSocket resource, keeping the headers of each upgrade."""

    def __init__(self, factory):
        super().__init__(factory)
        self.upgrades = []

    def render_GET(self, request):
        self.upgrades.append({k.lower(): v for k, v in
                              request.requestHeaders.getAllRawHeaders()})
        return super().render_GET(request)


class WebBenchTestCase(TestCase):
    timeout = 30

    def setUp(self):
        self.json = os.path.abspath(self.mktemp())
        self.out = io.StringIO()
        self.pongs = []
        self.patch(websocket.IRCSocket, "pongReceived",
                   lambda socket, payload: self.pongs.append(payload))

    def serve(self, **options):
        self.server = FakeWebIrcServer(**options)
        self.resource = RecordingResource(self.server)
        port = reactor.listenTCP(0, Site(self.resource), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return f"127.0.0.1:{port.getHost().port}"

    async def bench(self, *argv, **options):
        address = self.serve(**options)
        args, workload = cli.parseArgs([*argv, "--protocol", "web", "--connect", address,
                                        "--quiet", "--json", self.json])
        return await cli.Bench(reactor, args, workload, out=self.out).runAll()

    def assertComplete(self, result):
        self.assertEqual((result.complete, result.errors), (True, []))


class FanoutTests(WebBenchTestCase):
    @coroutine
    async def test_exactCounts(self):
        """
        Every PRIVMSG reaches every other client once over its WebSocket,
        (R+S-1)*S*M lines; each client asked for text.ircv3.net at /ws and
        sent no Origin.
        """
        [result] = await self.bench("fanout", "-R", "3", "-S", "2", "-M", "5", "--sinks", "0")
        self.assertComplete(result)
        m = result.metrics
        self.assertEqual((m["messages"], m["lines"], m["lines_expected"]), (10, 40, 40))
        self.assertEqual((m["pings_answered"], m["ws_pings_answered"]), (0, 0))
        self.assertEqual(self.server.commands.count("PRIVMSG"), 10)
        self.assertEqual((result.params["protocol"], result.params["ack"]), ("web", "witness"))
        self.assertEqual(result.server["kind"], "web")
        self.assertEqual(len(self.resource.upgrades), 5)
        for headers in self.resource.upgrades:
            self.assertEqual(headers[b"sec-websocket-protocol"], [b"text.ircv3.net"])
            self.assertNotIn(b"origin", headers)
        self.assertIn("witness latency p99", self.out.getvalue())
        with open(self.json) as f:
            [record] = [json.loads(line) for line in f]
        self.assertEqual((record["metrics"]["lines"], record["server"]["kind"]), (40, "web"))

    @coroutine
    async def test_echo(self):
        """--irc-ack echo: echo-message asked for; (R+S)*S*M lines, the echo releases."""
        [result] = await self.bench("fanout", "-R", "2", "-S", "2", "-M", "5", "-W", "2",
                                    "--irc-ack", "echo", caps=["echo-message"])
        self.assertComplete(result)
        m = result.metrics
        self.assertEqual((m["messages"], m["lines"], m["lines_expected"]), (10, 40, 40))
        self.assertIn("echo latency p99", self.out.getvalue())

    @coroutine
    async def test_pingsWhileCounting(self):
        """
        Mid-run, an IRC PING and a WebSocket ping to everyone: each answered
        once, by the bench (senders, the witnesses) or by the sink (the
        others), none counted as a line.
        """
        [result] = await self.bench("fanout", "-R", "5", "-S", "2", "-M", "6", "--sinks", "1",
                                    "--probes", "0", pingOnce=True, wsPingOnce=True)
        self.assertComplete(result)
        m = result.metrics
        self.assertEqual((m["messages"], m["lines"]), (12, (5 + 2 - 1) * 2 * 6))
        self.assertEqual((m["pings_answered"], m["ws_pings_answered"]), (7, 7))
        self.assertEqual(self.server.pongs, [":probe"] * 7)
        self.assertEqual(self.pongs, [b"chatsvc"] * 7)
        self.assertEqual(m["delivery_timed"], 2 * 12 + 2 * 6)  # witnesses and senders

    @coroutine
    async def test_subprotocolNotChosen(self):
        """A WebSocket server that does not choose text.ircv3.net: one clear error."""
        self.patch(websocket, "SUBPROTOCOLS", ("binary.ircv3.net",))
        [result] = await self.bench("fanout", "-R", "1", "-S", "1", "-M", "2")
        self.assertFalse(result.complete)
        self.assertEqual(len(result.errors), 1, result.errors)
        self.assertIn("chose the subprotocol None, not text.ircv3.net", result.errors[0])

    @coroutine
    async def test_refused(self):
        """An upgrade the server refuses (HTTP 403 here): its status and text."""
        self.patch(websocket, "originAllowed", lambda request, allowed: False)
        [result] = await self.bench("fanout", "-R", "1", "-S", "1", "-M", "2")
        self.assertFalse(result.complete)
        self.assertEqual(len(result.errors), 1, result.errors)
        self.assertIn("was refused: HTTP 403 This chat's WebSocket is only for pages of"
                      " this server.", result.errors[0])


class ChatsvcWebTests(TestCase):
    """--protocol web without --connect: chatsvc started with its web door."""

    timeout = 60

    @coroutine
    async def test_echo(self):
        """
        The default: echo-message, (R+S)*S*M lines as natively, the sink's
        receivers counted frame by frame; the server started with the web door
        on loopback and the capacity options, and no traceback when the bench
        closes every WebSocket at once.
        """
        out = io.StringIO()
        args, workload = cli.parseArgs(["fanout", "-R", "4", "-S", "2", "-M", "5", "--sinks",
                                        "1", "--probes", "1", "--protocol", "web", "--quiet",
                                        "--json", os.path.abspath(self.mktemp())])
        [result] = await cli.Bench(reactor, args, workload, out=out).runAll()
        self.assertEqual((result.complete, result.errors), (True, []))
        m = result.metrics
        self.assertEqual((m["messages"], m["lines"], m["pings_answered"]), (10, (4 + 2) * 10, 0))
        self.assertEqual(m["delivery_timed"], (1 + 2) * 10)
        self.assertEqual((result.server["kind"], result.params["protocol"],
                          result.params["ack"]), ("chatsvc-web", "web", "echo"))
        args = result.server["args"]
        self.assertEqual(args[args.index("--web") + 1], WEB_LISTEN)
        self.assertNotIn("--irc", args)
        for option, value in (("--flood-rate", "0"), ("--exempt", "127.0.0.0/8"),
                              ("--irc-server-name", "bench.invalid")):
            self.assertEqual(args[args.index(option) + 1], value, option)
        self.assertEqual(result.server["tracebacks"], 0)
        self.assertIn("(server chatsvc-web 127.0.0.1:", out.getvalue())


class FrameTests(TestCase):
    """The sink's reading of a server's WebSocket frames, and its own masked frames."""

    def serverFrames(self, *events):
        server = Connection(ConnectionType.SERVER)
        return b"".join(server.send(event) for event in events)

    def test_frames(self):
        short, long = "PRIVMSG #r :@1.2.3 x", "x" * 300
        data = self.serverFrames(TextMessage(short), Ping(b"chatsvc"), TextMessage(long))
        end, texts, spans = sink._frames(data)
        self.assertEqual((end, texts), (len(data), 2))
        [(first, start, stop)] = spans
        self.assertEqual((first, data[start:stop]), (0x89, b"chatsvc"))
        for cut in range(1, len(data)):  # a frame cut anywhere waits for the rest
            end, texts, _ = sink._frames(data[:cut])
            self.assertLessEqual(end, cut)
            self.assertEqual(sink._frames(data[:end])[:2], (end, texts))
        found = list(sink._oddFrames(data, len(data), b" :@", spans, True))
        self.assertEqual(found, [(sink.WS_PING, b"chatsvc"), (sink.LINE, long.encode())])

    def test_clientFrame(self):
        """What a sink sends is a masked frame a server reads (here wsproto's)."""
        server = Connection(ConnectionType.SERVER)
        for payload in (b"", b"PONG :probe", b"y" * 200):
            server.receive_data(sink.clientFrame(1, payload))
            [event] = server.events()
            self.assertEqual(event.data, payload.decode())
        server.receive_data(sink.clientFrame(10, b"chatsvc"))
        [pong] = server.events()
        self.assertEqual(pong.payload, b"chatsvc")


class CommandLineTests(TestCase):
    def test_targets(self):
        def made(*argv):
            args, workload = cli.parseArgs(["fanout", *argv])
            return [(t.name, getattr(t.workload, "ack", None)) for t in targets(args, workload)]

        self.assertEqual(made("--protocol", "web"), [("chatsvc-web", "echo")])
        self.assertEqual(made("--servers", "chatsvc,chatsvc-irc,chatsvc-web"),
                         [("chatsvc", None), ("chatsvc-irc", "echo"), ("chatsvc-web", "echo")])
        self.assertEqual(made("--servers", "chatsvc,chatsvc-irc", "--protocol", "web"),
                         [("chatsvc-web", "echo"), ("chatsvc-irc", "echo")])
        self.assertEqual(made("--servers", "chatsvc-irc,chatsvc-web", "--irc-ack", "witness"),
                         [("chatsvc-irc", "witness"), ("chatsvc-web", "witness")])
        self.assertEqual(made("--protocol", "web", "--connect", "127.0.0.1:8080"),
                         [("web", "witness")])
        args, workload = cli.parseArgs(["fanout", "--protocol", "web"])
        self.assertIsInstance(targets(args, workload)[0].dialect(), WebIRC)

    def test_badCombinations(self):
        self.assertIn("chatsvc is chatsvc-web", benchRefusal(
            self, "fanout", "--servers", "chatsvc,chatsvc-web", "--protocol", "web"))
        self.assertIn("does not apply over IRC", benchRefusal(
            self, "store", "--protocol", "web"))
        self.assertIn("at most 400", benchRefusal(
            self, "fanout", "-P", "500", "--servers", "chatsvc,chatsvc-web"))

"""
The web door over real loopback TCP (the browser tests are in
test_web_browser.py): the page and its headers, IRC over WebSocket with the
subprotocol chosen, the Origin check, the bound on one message; and
--metrics.
"""

from urllib.request import urlopen

from twisted.internet import defer, endpoints, protocol, reactor, threads
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from wsproto import ConnectionType, WSConnection
from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection, RejectConnection,
                            RejectData, Request, TextMessage)

from chatsvc.doors.irc.message import parse
from tests.e2e import LOOPBACK, ServerProcessTests, source


class WebSocketClient(protocol.Protocol):
    """An IRC-over-WebSocket client (wsproto), as a browser or gamja would be."""

    def __init__(self, path="/ws", subprotocols=(), origin=None, host="127.0.0.1"):
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.request = Request(host=host, target=path, subprotocols=list(subprotocols),
                               extra_headers=[(b"origin", origin.encode())] if origin else [])
        self.accepted = defer.Deferred()  # the subprotocol chosen, or a refusal's status
        self.lines = []
        self.closed = defer.Deferred()
        self._waiting = None
        self._partial = []

    def connectionMade(self):
        self.transport.write(self.ws.send(self.request))

    def dataReceived(self, data):
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, AcceptConnection):
                self.accepted.callback(event.subprotocol)
            elif isinstance(event, RejectConnection):
                self.accepted.errback(AssertionError(event.status_code))
            elif isinstance(event, RejectData):
                pass
            elif isinstance(event, (TextMessage, BytesMessage)):
                self._partial.append(event.data)
                if event.message_finished:
                    data = self._partial[0][:0].join(self._partial)
                    self._partial = []
                    self.lines.append(data if isinstance(data, str) else data.decode())
                    self._check()
            elif isinstance(event, CloseConnection):
                self.transport.loseConnection()

    def connectionLost(self, reason):
        if not self.accepted.called:
            self.accepted.errback(AssertionError("closed before the handshake"))
        self.closed.callback(None)

    def send(self, line):
        self.transport.write(self.ws.send(TextMessage(line)))

    def waitFor(self, command):
        d = defer.Deferred()
        self._waiting = (command, d)
        self._check()
        return d

    def _check(self):
        if self._waiting is None:
            return
        command, d = self._waiting
        for i, line in enumerate(self.lines):
            if parse(line).command == command:
                seen, self.lines = self.lines[:i + 1], self.lines[i + 1:]
                self._waiting = None
                d.callback(seen)
                return


class WebDoorTests(ServerProcessTests, TestCase):
    @defer.inlineCallbacks
    def startServer(self, *options):
        server, _ = yield super().startServer(
            "--web", LOOPBACK, "--metrics", LOOPBACK, "--irc-server-name", "web.test",
            "--flood-rate", "0", *options)
        native, web, metrics = yield server.listening(3)
        self.native, self.web, self.metricsPort = native, web, metrics
        return server

    def get(self, port, path):
        def fetch():
            try:
                response = urlopen(f"http://127.0.0.1:{port}{path}", timeout=10)
            except Exception as e:  # HTTPError: a response too
                response = e
            return response.status if hasattr(response, "status") else response.code, \
                dict(response.headers), response.read()
        return threads.deferToThread(fetch)

    @defer.inlineCallbacks
    def socket(self, **kwargs):
        client = WebSocketClient(**kwargs)
        endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", self.web,
                                                bindAddress=(source(), 0))
        yield endpoints.connectProtocol(endpoint, client)
        self.clients.append(client)
        return client

    @defer.inlineCallbacks
    def test_thePageAndItsHeaders(self):
        yield self.startServer()
        status, headers, body = yield self.get(self.web, "/")
        self.assertEqual(status, 200)
        self.assertIn(b"<html", body.lower())
        self.assertEqual(headers["Content-Security-Policy"],
                         "default-src 'self'; frame-ancestors 'none'; base-uri 'none';"
                         " form-action 'none'")
        self.assertEqual(headers["X-Content-Type-Options"], "nosniff")
        self.assertEqual(headers["Referrer-Policy"], "no-referrer")
        status, headers, _ = yield self.get(self.web, "/app.js")
        self.assertEqual((status, headers["Content-Type"]),
                         (200, "text/javascript; charset=utf-8"))
        status, _, body = yield self.get(self.web, "/nothing-here/")
        self.assertEqual(status, 404)  # and never a directory listing
        self.assertNotIn(b"Directory listing", body)

    @defer.inlineCallbacks
    def test_ircOverWebSocketBesideTheNativeDoor(self):
        yield self.startServer()
        client = yield self.socket(subprotocols=["text.ircv3.net"],
                                   origin=f"http://127.0.0.1:{self.web}",
                                   host=f"127.0.0.1:{self.web}")
        chosen = yield client.accepted
        self.assertEqual(chosen, "text.ircv3.net")
        for line in ["CAP LS 302", "CAP REQ :echo-message", "NICK webby",
                     "USER w 0 * :Web", "CAP END", "JOIN #kitchen"]:
            client.send(line)
        yield client.waitFor("366")
        bob = yield self.connect(self.native, "bob")
        bob.send("join kitchen")
        yield bob.waitFor("* You joined kitchen.")
        client.send("PRIVMSG #kitchen :hello from a browser")
        echo = yield client.waitFor("PRIVMSG")
        self.assertEqual(parse(echo[-1]).params, ["#kitchen", "hello from a browser"])
        yield bob.waitFor("<webby> hello from a browser")
        bob.send("hi back")
        said = yield client.waitFor("PRIVMSG")
        self.assertTrue(parse(said[-1]).source.startswith("bob!"))
        client.send("WHOIS webby")
        whois = yield client.waitFor("311")
        self.assertEqual(parse(whois[-1]).params[3], "web.chatsvc")  # the door, not an address
        _, _, body = yield self.get(self.metricsPort, "/metrics")
        self.assertIn(b'chatsvc_users_online{door="web"} 1.0', body)
        self.assertIn(b'chatsvc_users_online{door="native"} 1.0', body)
        self.assertIn(b"chatsvc_messages_stored_total 2.0", body)

    @defer.inlineCallbacks
    def test_otherSitesPagesAreRefused(self):
        yield self.startServer("--web-origin", "https://chat.example.org")
        evil = yield self.socket(origin="https://evil.example", host=f"127.0.0.1:{self.web}")
        failure = yield self.assertFailure(evil.accepted, AssertionError)
        self.assertEqual(failure.args, (403,))
        proxied = yield self.socket(origin="https://chat.example.org")  # behind a proxy
        yield proxied.accepted
        tool = yield self.socket()  # no Origin: not a browser (gamja's bouncer, irctest)
        chosen = yield tool.accepted
        self.assertIsNone(chosen)
        _, _, body = yield self.get(self.metricsPort, "/metrics")
        self.assertIn(b"chatsvc_connections 2.0", body)

    @defer.inlineCallbacks
    def test_aHugeMessageCutsOnlyItsConnection(self):
        yield self.startServer()
        fine = yield self.socket()
        yield fine.accepted
        huge = yield self.socket()
        yield huge.accepted
        huge.send("PRIVMSG x :" + "a" * 1_000_000)
        yield huge.closed
        fine.send("PING still-here")
        pong = yield fine.waitFor("PONG")
        self.assertEqual(parse(pong[-1]).params[-1], "still-here")


class _Browser:
    """
    One WebSocket client of the web door in this process (wsproto over a
    StringTransport): what it sends is read by the door at once, and the
    door's clock is advanced so that what it starts finishes.
    """

    def __init__(self, site, clock, port):
        self.clock = clock
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
        self.channel = site.buildProtocol(self.transport.getPeer())
        self.channel.makeConnection(self.transport)
        self.feed(self.ws.send(Request(host="127.0.0.1", target="/ws",
                                       subprotocols=["text.ircv3.net"])))
        self.events = self.read()

    def feed(self, data):
        self.channel.dataReceived(data)
        self.clock.advance(0)

    def send(self, *lines):
        self.feed(b"".join(self.ws.send(TextMessage(line)) for line in lines))

    def read(self):
        """The events of what the door sent since the last read."""
        self.ws.receive_data(self.transport.value())
        self.transport.clear()
        return list(self.ws.events())

    def lines(self):
        return [e.data for e in self.read() if isinstance(e, TextMessage)]


class ClosingTests(TestCase):
    """The web door in this process, over StringTransport, on a Lobby with a fake clock."""

    def setUp(self):
        from twisted.web.server import Site

        from chatsvc.doors.irc.protocol import IRCFactory
        from chatsvc.doors.web.websocket import BrowserIRC, IRCWebSocketResource
        from tests.support import makeLobby

        self.lobby = makeLobby()
        factory = IRCFactory(self.lobby, serverName="web.test")
        factory.protocol = BrowserIRC
        self.site = Site(IRCWebSocketResource(factory))

    def browser(self, nick, port):
        browser = _Browser(self.site, self.lobby.clock, port)
        [accepted] = browser.events
        self.assertEqual(accepted.subprotocol, "text.ircv3.net")
        browser.send("CAP REQ :echo-message", f"NICK {nick}", f"USER {nick} 0 * :{nick}",
                     "CAP END", "JOIN #kitchen")
        self.assertTrue(any(" 366 " in line for line in browser.lines()))
        return browser

    def test_nothingIsSentAfterTheClosingHandshake(self):
        """
        A browser closes its WebSocket with a close frame; the door answers
        it and closes the connection, which ends a moment later. What the
        room says meanwhile is not sent (wsproto refuses to once the
        WebSocket is closed) and is no error: the user leaves when the
        connection ends, as over TCP.
        """
        alice = self.browser("alice", 50001)
        bob = self.browser("bob", 50002)
        alice.lines()
        alice.feed(alice.ws.send(CloseConnection(code=1000)))
        self.assertEqual([type(e) for e in alice.read()], [CloseConnection])
        self.assertTrue(alice.transport.disconnecting)
        bob.send("PRIVMSG #kitchen :still there?")
        self.assertEqual(bob.lines()[-1:], [":bob!~bob@web.chatsvc PRIVMSG #kitchen"
                                            " :still there?"])
        self.assertEqual(alice.transport.value(), b"")
        self.assertFalse(self.flushLoggedErrors())
        alice.channel.connectionLost(Failure(ConnectionDone()))
        self.lobby.clock.advance(0)
        self.assertTrue(any("QUIT" in line for line in bob.lines()))


class FramingTests(TestCase):
    """
    The door frames IRC lines itself: the bytes wsproto made, one message per
    line, whatever the writes' sizes and cuts, text or binary.
    """

    def lines(self, binary=False):
        from types import SimpleNamespace

        from wsproto import ConnectionType as Type
        from wsproto.connection import Connection

        from chatsvc.doors.web.websocket import _Lines

        wire = SimpleNamespace(_wsconn=Connection(Type.SERVER), transport=StringTransport())
        return _Lines(wire, binary, None, None), wire.transport

    def expected(self, lines, binary=False):
        from wsproto import ConnectionType as Type
        from wsproto.connection import Connection

        reference = Connection(Type.SERVER)
        return b"".join(reference.send(BytesMessage(line) if binary
                                       else TextMessage(line.decode("utf-8")))
                        for line in lines)

    def test_sameBytesAsWsproto(self):
        writes = [b"one\r\ntwo\r\n", b"a cut", b" line\r\n\r\n", "déjà vu\r\n".encode(),
                  b"x" * 125 + b"\r\n" + b"y" * 126 + b"\r\n", b"z" * 65535 + b"\r\n",
                  b"w" * 65536 + b"\r\n", b"tail without an end"]
        lines = b"".join(writes).split(b"\r\n")[:-1]
        for binary in (False, True):
            transport, tcp = self.lines(binary)
            for data in writes:
                transport.write(data)
            self.assertEqual(tcp.value(), self.expected(lines, binary))
            self.assertEqual(transport._partial, b"tail without an end")

    def test_aBroadcastFramedOnceForEveryone(self):
        """The same bytes to members of both kinds: each its own frames."""
        data = b":a!~a@h PRIVMSG #r :hi\r\n:b!~b@h PRIVMSG #r :ho\r\n"
        members = [self.lines(binary) for binary in (False, False, True, False)]
        for transport, _ in members:
            transport.write(data)
        lines = data.split(b"\r\n")[:-1]
        self.assertEqual([tcp.value() for _, tcp in members],
                         [self.expected(lines, binary) for binary in (False, False, True, False)])

    def test_notUtf8(self):
        """As wsproto did: the lines before it go, then the error."""
        transport, tcp = self.lines()
        with self.assertRaises(UnicodeDecodeError):
            transport.write(b"fine\r\n\xff\xfe\r\nlater\r\n")
        self.assertEqual(tcp.value(), self.expected([b"fine"]))

"""
IRC over WebSocket for chatsvc-bench (``--protocol web``): the IRC dialect of
L{chatsvc.bench.irc}, carried over chatsvc's web door as a browser carries it
(the IRCv3 WebSocket transport: one IRC line per text message, subprotocol
``text.ircv3.net``, at ``/ws``). Only the transport differs: logging in,
joining, the PING barrier, echo-message acknowledgements (or witnesses) and
the counts are the IRC dialect's.

 - The client is wsproto over a Twisted TCP connection. Its upgrade request
   carries no Origin header, as a client that is not a browser sends none
   (the door lets those in), and asks for ``text.ircv3.net``; a server that
   does not choose it fails the client's login with one clear error.
 - Everything the IRC dialect writes to a client's transport (its commands,
   the senders' ``PRIVMSG``, a ``PONG``) goes through L{_Framed}, which sends
   each line as one masked text message; every text message received is
   handed on as one line ending in CR LF, so the IRC client code, its tallies
   and its ``expect`` see the lines they would over TCP. A WebSocket ping is
   answered with a pong and is not a line.
 - A copy is timed from the arrival of its chunk, before wsproto decodes
   it, as over TCP; the decoding is the bench's own CPU (more than over TCP:
   wsproto, for the senders and the probes).
 - The sinks (L{chatsvc.bench.sink}) read a receiver's socket themselves: for
   this dialect (C{framing = "websocket"}) they count whole WebSocket frames
   instead of newlines, and answer an IRC ``PING`` or a WebSocket ping with a
   masked frame. The handover happens right after the sync barrier, when
   nothing is on its way to the receivers, so no frame is split between the
   bench and a sink.
 - ``chatsvc-web`` (in ``--servers``; or chatsvc with ``--protocol web``) is
   chatsvc started with ``--web tcp:port=0:interface=127.0.0.1`` and the
   options every run gets; its port is the one the web door's "Hosting at"
   line gives.
"""

from twisted.internet.defer import Deferred
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from chatsvc.bench import report
from chatsvc.bench.client import DIALECTS
from chatsvc.bench.irc import (
    IRC,
    IRC_LISTEN,
    SERVER_NAME,
    ChatsvcIrcProcess,
    ChatsvcTarget,
    IrcClient,
    ircWorkload,
)
from chatsvc.bench.server import BenchError, ServerProcess, serverCommand

PATH = "/ws"  # where chatsvc's web door serves its WebSocket (also at /)
SUBPROTOCOL = "text.ircv3.net"
# The web door on its own loopback port, spelt as the IRC door's is: a web
# run starts no IRC door, so the line that says where it is hosting is the
# web door's (the native door's is "tcp:0:interface=127.0.0.1").
WEB_LISTEN = IRC_LISTEN


class WebIRC(IRC):
    """The IRC dialect over WebSocket: L{IRC}'s lines, L{WebIrcClient}'s transport."""

    name = "web"
    framing = "websocket"  # how a sink finds the lines of a socket it reads

    def newClient(self, name):
        return WebIrcClient(self, name)

    async def login(self, client, name):
        await client.opened  # the upgrade, answered with the subprotocol
        await super().login(client, name)


DIALECTS["web"] = WebIRC
report.PROTOCOL_LABELS[("web", "witness")] = report.PROTOCOL_LABELS[("irc", "witness")]


class _Framed:
    """
    A client's transport as the IRC dialect sees it: what it writes is IRC
    lines (each ending in LF, or CR LF), and each goes out as one WebSocket
    text message; everything else is the TCP connection's.
    """

    def __init__(self, client, tcp):
        self._client = client
        self.tcp = tcp
        self._partial = b""

    def write(self, data):
        if self._partial:
            data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        if not lines:
            return
        send = self._client.ws.send
        self.tcp.write(b"".join(send(TextMessage(line.rstrip(b"\r").decode("utf-8")))
                                for line in lines))

    def writeSequence(self, data):
        self.write(b"".join(data))

    def loseConnection(self):
        """Close the WebSocket (a close frame), then the connection."""
        ws = self._client.ws
        if ws.state == ConnectionState.OPEN and self.tcp.connected:
            self.tcp.write(ws.send(CloseConnection(code=1000)))
        self.tcp.loseConnection()

    def __getattr__(self, name):  # connected, abortConnection, stopReading, fileno, ...
        return getattr(self.tcp, name)


class WebIrcClient(IrcClient):
    """An L{IrcClient} whose lines are WebSocket messages (wsproto, over TCP)."""

    def __init__(self, dialect, name):
        super().__init__(dialect, name)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.opened = Deferred()  # fires once the server accepted the upgrade
        self.subprotocol = None
        self.wsPings = 0  # WebSocket pings from the server, answered
        self._text = []  # the fragments of a message not yet finished
        self._refusal = []

    def makeConnection(self, transport):
        super().makeConnection(_Framed(self, transport))

    def connectionMade(self):
        super().connectionMade()
        tcp = self.transport.tcp
        peer = tcp.getPeer()
        # No Origin: a client that is not a browser sends none.
        tcp.write(self.ws.send(Request(host=f"{peer.host}:{peer.port}", target=PATH,
                                       subprotocols=[SUBPROTOCOL])))

    def dataReceived(self, data):
        tally = self.tally
        arrived = tally.clock() if tally is not None else None  # before wsproto decodes it
        ws = self.ws
        ws.receive_data(data)
        lines = []
        for event in ws.events():
            if type(event) is TextMessage:
                if event.message_finished and not self._text:
                    lines.append(event.data)
                else:
                    self._text.append(event.data)
                    if event.message_finished:
                        lines.append("".join(self._text))
                        self._text = []
            else:
                self._event(event, lines)
        if not lines:
            return
        lines.append("")
        data = "\r\n".join(lines).encode("utf-8")
        if tally is None:
            super().dataReceived(data)
        else:  # timed from its arrival, as over TCP
            self.bytesReceived += len(data)
            tally.feed(data, arrived)

    def _event(self, event, lines):
        tcp = self.transport.tcp
        if isinstance(event, Ping):
            self.wsPings += 1
            tcp.write(self.ws.send(event.response()))
        elif isinstance(event, AcceptConnection):
            self.subprotocol = event.subprotocol
            if event.subprotocol != SUBPROTOCOL:
                self._refuse(f"the server chose the subprotocol {event.subprotocol!r},"
                             f" not {SUBPROTOCOL}")
            elif not self.opened.called:
                self.opened.callback(None)
        elif isinstance(event, RejectConnection):
            self._refusal.append(f"HTTP {event.status_code}")
            if not event.has_body:
                self._refuse(self._refusal[0])
        elif isinstance(event, RejectData):
            self._refusal.append(bytes(event.data).decode("utf-8", "replace").strip())
            if event.body_finished:
                self._refuse(" ".join(self._refusal))
        elif isinstance(event, CloseConnection):
            self.recent.append(f"(WebSocket closed: {event.code} {event.reason})")
            if self.ws.state not in (ConnectionState.CLOSED, ConnectionState.LOCAL_CLOSING):
                tcp.write(self.ws.send(event.response()))
            tcp.loseConnection()
        elif isinstance(event, BytesMessage):  # not asked for: counted as a line
            lines.append(bytes(event.data).decode("utf-8", "replace"))

    def _refuse(self, why):
        if not self.opened.called:
            self.opened.errback(BenchError(f"{self.name}: the WebSocket upgrade to {PATH}"
                                           f" was refused: {why}"))
        self.transport.tcp.loseConnection()

    def connectionLost(self, reason):
        if not self.opened.called:
            self.opened.errback(BenchError(f"{self.name}: the connection closed before the"
                                           f" WebSocket upgrade was answered"))
        super().connectionLost(reason)


# chatsvc's web door, started by the bench

def chatsvcWebArgs():
    """
    What the bench adds for chatsvc's web door, besides the capacity options
    every chatsvc run gets: the door on a loopback port, and the IRC options
    its connections share with the IRC door's (the server name ngircd gets
    too; pings only after an hour of silence).
    """
    return ["--web", WEB_LISTEN, "--irc-server-name", SERVER_NAME,
            "--irc-ping-interval", "3600"]


class ChatsvcWebProcess(ServerProcess):
    """``twistd chatroom ... --web ...``; its port is the web door's."""

    hosting = ChatsvcIrcProcess.hosting  # "Hosting at ... (tcp:port=0:...)"

    def argv(self):
        return serverCommand(self.db, self.max_clients, [*chatsvcWebArgs(), *self.extra])


class ChatsvcWebTarget(ChatsvcTarget):
    """Our server, started by the bench with its web door, driven over IRC over WebSocket."""

    name = "chatsvc-web"

    def __init__(self, workload, ack="echo"):
        self.ack = ack
        self.workload = ircWorkload(workload, ack, protocol="web")

    def dialect(self):
        return WebIRC(echo=self.ack == "echo")

    def newServer(self, reactor, db, max_clients, workdir, extra):
        return ChatsvcWebProcess(reactor, db, max_clients, workdir, extra)

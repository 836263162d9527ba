"""
IRC over WebSocket (the IRCv3 WebSocket transport): one IRC line per
message, ``text.ircv3.net`` or ``binary.ircv3.net``. Each WebSocket carries
an ordinary L{IRCProtocol} over a transport that turns its lines into
messages, so everything the IRC door does (CAPs, CHATHISTORY, echoes, the
per-address limits, flood pacing, bounded output) holds here unchanged.

What C{twisted.web.websocket} lacks and this adds: the subprotocol choice, a
check of the page's Origin, a bound on how big one message may grow, and a
ping that keeps proxies from cutting an idle connection.
"""

import struct
from urllib.parse import urlsplit

from twisted.internet import tcp
from twisted.internet.interfaces import IPushProducer

from chatsvc.doors.flow import sendNow
from chatsvc.doors.irc.protocol import IRCProtocol
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

try:  # twisted.web.websocket, with the Twisted[websocket] extra (wsproto)
    from twisted.web._websocket_impl import _WebSocketWireProtocol, serverBootstrap
    from wsproto.events import AcceptConnection
    from wsproto.handshake import H11Handshake
    from wsproto.connection import ConnectionState, ConnectionType
    from wsproto.utilities import RemoteProtocolError
except ImportError as e:  # noqa: F841 (the door says so when it starts)
    missing = str(e)
else:
    missing = None

SUBPROTOCOLS = ("text.ircv3.net", "binary.ircv3.net")
PING_INTERVAL = 30.0  # seconds: proxies cut WebSockets idle for 60
TAGS_AND_LINE = 4096 + 512  # an IRC line with its tags; a message may be no longer


def originAllowed(request, allowed) -> bool:
    """
    A browser says which page opened the socket: only pages of this server
    (or of the origins named by --web-origin) may. Clients that are not
    browsers send no Origin and may connect.
    """
    origin = request.getHeader("origin")
    if origin is None:
        return True
    if origin in allowed:
        return True
    host = request.getHeader("host")
    parts = urlsplit(origin)
    return host is not None and parts.scheme in ("http", "https") and parts.netloc == host


class BrowserIRC(IRCProtocol):
    """An IRC connection that came by the web door (a browser, gamja, Kiwi IRC)."""

    door = "web"


def frame(first, payload):
    """
    One WebSocket frame from the server (unmasked), as wsproto makes it when
    no extension is in use (the door accepts none): C{first} is its first
    byte, FIN and the opcode (0x81 text, 0x82 binary).
    """
    size = len(payload)
    if size < 126:
        return bytes((first, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", first, 126, size) + payload
    return struct.pack("!BBQ", first, 127, size) + payload


@implementer(IPushProducer)
class _Lines:
    """
    The transport an L{IRCProtocol} writes to: each IRC line it writes goes
    out as one WebSocket message; pausing and resuming it pause the socket.

    It frames the lines itself, all those of one write in one piece, rather
    than through wsproto one message at a time (the same bytes: a text
    message is the line, checked to be UTF-8, as wsproto checks it): the IRC
    door writes one broadcast to every member of a room, and wsproto's
    framing, once per line and member, cost several times what the rest of
    the delivery did. What one write framed is kept for the next (L{_last}):
    the door writes the same bytes object to every member of a kind, so a
    broadcast is framed once. And, as L{chatsvc.doors.flow.OutputGuard} does
    for the IRC door, a write goes straight to the socket when nothing is
    queued in Twisted's buffer (which Twisted's own pings and close frames
    use), so the order is kept; the rest is queued the usual way.
    """

    # (what was written, its first byte, its frames): the last write's.
    _last = (None, None, None)

    def __init__(self, socket, binary, peer, host):
        self.socket = socket  # the WebSocket's wire protocol
        self.tcp = socket.transport
        self.binary = binary
        self.first = 0x82 if binary else 0x81  # FIN and the opcode of each message
        self.peer = peer
        self.host = host
        self.disconnecting = False
        self.connected = True
        self._partial = b""
        self.producer = None
        # TLS wraps the socket in a protocol: its transport is not a
        # tcp.Connection and always takes the usual path.
        self._socket = self.tcp.getHandle() if isinstance(self.tcp, tcp.Connection) else None

    # What OutputGuard and the IRC door use of a transport

    def write(self, data):
        if self.disconnecting:
            return
        if self.socket._wsconn.state is not ConnectionState.OPEN:
            # The browser closed the WebSocket (a close frame, answered by
            # Twisted, which then closes the connection): wsproto sends
            # nothing more. The user leaves when the connection has ended.
            self.disconnecting = True
            return
        last = _Lines._last
        if data is last[0] and self.first == last[1] and not self._partial:
            self._send(last[2])
            return
        whole = self._partial + data if self._partial else data
        *lines, self._partial = whole.split(b"\r\n")
        first, text = self.first, not self.binary
        framed = []
        try:
            for line in lines:
                if text:
                    line.decode("utf-8")  # what wsproto would refuse to send
                framed.append(frame(first, line))
        finally:  # the lines before one that is not UTF-8 still go, as they did
            out = b"".join(framed)
            if out:
                self._send(out)
        if not self._partial and whole is data:
            _Lines._last = (data, first, out)

    def _send(self, data):
        if self._socket is not None:
            data = sendNow(self.tcp, self._socket, data)
            if not data:
                return
        self.tcp.write(data)

    def writeSequence(self, data):
        self.write(b"".join(data))

    def registerProducer(self, producer, streaming):
        self.producer = producer
        self.tcp.registerProducer(producer, streaming)

    def unregisterProducer(self):
        if self.producer is not None:
            self.producer = None
            self.tcp.unregisterProducer()

    @property
    def dataBuffer(self):  # read by OutputGuard only for TCP transports
        return b""

    def loseConnection(self):
        if not self.disconnecting:
            self.disconnecting = True
            self.socket.loseConnection(1000)

    def abortConnection(self):
        self.disconnecting = True
        self.tcp.abortConnection()

    def getPeer(self):
        return self.peer

    def getHost(self):
        return self.host

    def pauseProducing(self):
        self.tcp.pauseProducing()

    def resumeProducing(self):
        self.tcp.resumeProducing()

    def stopProducing(self):
        self.tcp.stopProducing()


class IRCSocket:
    """One WebSocket: its IRC connection, its ping, the bound on its messages."""

    log = Logger()

    def __init__(self, factory, request, subprotocol):
        self.factory = factory  # the IRCFactory every IRC connection shares
        self.request = request
        self.binary = subprotocol == "binary.ircv3.net"
        self.irc = None
        self._ping = None

    # WebSocketProtocol

    def negotiationStarted(self, transport):
        self.socket = transport

    def negotiationFinished(self):
        channel = self.request.channel.transport
        channel.unregisterProducer()  # the HTTP channel's: the IRC connection's now
        self.irc = self.factory.buildProtocol(channel.getPeer())
        self.irc.makeConnection(_Lines(self.socket, self.binary, channel.getPeer(),
                                       channel.getHost()))
        self._ping = self.factory.clock.callLater(PING_INTERVAL, self._keepAlive)

    def _keepAlive(self):
        self.socket.ping(b"chatsvc")
        self._ping = self.factory.clock.callLater(PING_INTERVAL, self._keepAlive)

    def textMessageReceived(self, message):
        self._line(message.encode("utf-8"))

    def bytesMessageReceived(self, data):
        self._line(bytes(data))

    def _line(self, data):
        if self.irc is None or self.irc.transport.disconnecting:
            return
        # LineReceiver holds lines while the door reads nothing (flood, store).
        self.irc.dataReceived(data.rstrip(b"\r\n") + b"\r\n")

    def pongReceived(self, payload):
        pass

    def connectionLost(self, reason):
        if self._ping is not None and self._ping.active():
            self._ping.cancel()
        if self.irc is not None:
            self.irc.transport.connected = False
            self.irc.connectionLost(reason)


class IRCWebSocketResource(Resource):
    """
    The WebSocket endpoint: checks the Origin, chooses the IRCv3
    subprotocol, and upgrades the HTTP connection to an L{IRCSocket}.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, factory, origins=(), maxMessage=TAGS_AND_LINE):
        super().__init__()
        self.factory = factory
        self.origins = set(origins)
        self.maxMessage = maxMessage

    def render_GET(self, request):
        if not originAllowed(request, self.origins):
            self.log.info("Refused a WebSocket from {origin}: not this server's page",
                          origin=request.getHeader("origin"))
            request.setResponseCode(403)
            request.setHeader("content-type", "text/plain; charset=utf-8")
            return b"This chat's WebSocket is only for pages of this server.\n"
        handshake = H11Handshake(ConnectionType.SERVER)
        headers = [(k, v) for k, vs in request.requestHeaders.getAllRawHeaders() for v in vs]
        try:
            handshake.initiate_upgrade_connection(headers, request.uri)
            upgrade = next(iter(handshake.events()))  # the Request it read
        except (RemoteProtocolError, StopIteration):
            request.setResponseCode(400)
            request.setHeader("content-type", "text/plain; charset=utf-8")
            return b"This is the chat's WebSocket: connect with a WebSocket client.\n"
        offered = [p for p in getattr(upgrade, "subprotocols", []) if p in SUBPROTOCOLS]
        chosen = offered[0] if offered else None
        socket = IRCSocket(self.factory, request, chosen)
        data = handshake.send(AcceptConnection(subprotocol=chosen))
        wire = _WebSocketWireProtocol(handshake.connection, serverBootstrap, socket)
        _bound(wire, self.maxMessage)
        transport = request.channel.transport
        request.channel._protocolUpgradeForWebsockets(wire)
        transport.write(data)
        socket.negotiationFinished()
        return NOT_DONE_YET


def _bound(wire, limit):
    """
    Cut a connection whose message grows past C{limit} bytes: Twisted
    reassembles a message however big (and in quadratic time), and a huge
    one would hold the reactor, and so everyone, while it did. The socket is
    read 64 KiB at a time, so no more than that is ever taken in past the limit.
    """
    received = wire.dataReceived

    def bounded(data):
        received(data)
        pending = len(wire._textBuffer.data) + len(wire._bytesBuffer.data)
        if pending > limit:
            wire._wsp.log.warn("Closing a WebSocket: a message of over {limit} bytes",
                               limit=limit)
            wire.transport.abortConnection()
    wire.dataReceived = bounded

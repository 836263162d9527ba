"""
What every front door does with a connection, whatever it speaks: admit it
(per-address limits, the Lobby's places), bound what waits to be sent to it,
pace what it sends, time out a silent one, close it cleanly, and send long
runs of output only as fast as it reads. A door subclasses L{Connection} and
says how each of these sounds in its own protocol.
"""

from twisted.internet.interfaces import ISSLTransport
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.protocols.policies import TimeoutMixin

from chatsvc import errors
from chatsvc.doors import sockets
from chatsvc.doors.addresses import Addresses
from chatsvc.doors.flow import OutputGuard, Pacer
from chatsvc.events import Killed, MadeWay, Stopping

PAGE_CHUNK = 16 * 1024  # replay, history and lists go out in pieces this big, as read
PAGE_SCAN = 2000  # items a piece may pass over (rooms a pattern skips) before it is sent
CLOSE_GRACE = 10.0  # seconds a connection closed from this side has to go


def chunks(lines, encode):
    """
    Encode lines into pieces of about PAGE_CHUNK bytes. A None among the
    lines is an item passed over; after PAGE_SCAN items a piece goes out
    even if it is empty, so that no turn of the reactor does unbounded work.
    """
    piece, size, scanned = [], 0, 0
    for line in lines:
        scanned += 1
        if line is not None:
            data = encode(line)
            piece.append(data)
            size += len(data)
        if size >= PAGE_CHUNK or scanned >= PAGE_SCAN:
            yield b"".join(piece)
            piece, size, scanned = [], 0, 0
    if piece:
        yield b"".join(piece)


class Connection(LineReceiver, TimeoutMixin):
    """
    One client's connection to a front door. Subclasses say what is sent:
    L{greet}, L{refuse}, L{tooLong}, L{slowed}, L{timedOut}, L{failed}, and
    handle each decoded line in L{textReceived}.
    """

    delimiter = b"\n"  # a trailing \r is stripped in lineReceived
    door = None  # the door's name, for whoever looks at its users
    log = Logger()

    def __init__(self):
        self.user = None
        self.visitor = None  # what this client's address may still do
        self.guard = None  # bounds what waits to be sent to this client
        self.bucket = None  # bounds how fast this client's address may send lines
        self._toldSlow = False  # told that flood control is pacing it
        self._heard = False  # a line arrived since a timer last judged this client
        self._holds = set()  # why reading from this client is paused
        self._timers = {}  # reason -> DelayedCall: "login", "judge", "flood", "close"
        self._closing = False  # aborted: nothing more is written
        self._leaving = False  # closed from this side: nothing more is read
        self._discarding = False  # skipping the rest of an over-long line
        self._leftover = None  # bytes after an over-long line, still to parse

    # What a door says (overridden)

    def greet(self):
        """The connection is admitted."""

    def refuse(self, refusal):
        """The connection is refused (C{refusal} a ChatError); it closes next."""
        raise NotImplementedError

    def tooLong(self, replaced=False):
        """A line was longer than the limit (C{replaced}: once its invalid UTF-8 was)."""
        raise NotImplementedError

    def slowed(self):
        """Told once when flood control starts pacing this client."""

    def timedOut(self, what):
        """C{what} is "login" (no name chosen in time) or "idle"; it closes next."""

    def failed(self):
        """Something went wrong in the server, not the request."""

    def textReceived(self, text):
        raise NotImplementedError

    def undecodable(self, raw) -> bool:
        """A line that is not UTF-8: True if refused, False to read it with U+FFFD for each bad byte."""
        return False

    def encode(self, line: str) -> bytes:
        return line.encode("utf-8") + b"\n"

    @property
    def peer(self):
        return self.transport.getPeer()

    # Connection

    def connectionMade(self):
        lobby, clock = self.factory.lobby, self.factory.clock
        settings = self.settings = lobby.settings
        self.maxLine = settings.max_line
        self.MAX_LENGTH = self.maxLine + 1  # room for the \r of a \r\n ending
        peer = self.transport.getPeer()
        try:
            self.visitor = self.factory.addresses.arrive(peer)
            try:
                self.user = lobby.connect(
                    self, None if self.visitor.exempt else self.visitor.address,
                    getattr(peer, "host", None))
            except errors.ChatError:
                self.factory.addresses.depart(self.visitor)
                self.visitor = None
                raise
        except errors.ChatError as refusal:
            self.factory.addresses.refused(peer, refusal)
            self.refuse(refusal)
            if ISSLTransport.providedBy(self.transport):
                # A TLS close waits for the peer's handshake and close_notify,
                # which a flood never sends: refused, it must hold nothing.
                self.transport.abortConnection()
            else:
                self.transport.loseConnection()
            return
        self.user.door = self.door
        self.user.host = getattr(peer, "host", None) or "localhost"  # UNIX sockets have none
        sockets.tune(self.transport, settings.keepalive)  # once admitted: refusals are many
        self.guard = OutputGuard(self.transport, settings.max_output_buffer, self._overflowed)
        if settings.flood_rate > 0:
            self.bucket = self.visitor.lines  # shared by every connection from the address
        self.callLater = clock.callLater  # for TimeoutMixin
        if settings.login_timeout > 0:
            self._timers["login"] = clock.callLater(settings.login_timeout, self._loginTimedOut)
        self.greet()

    # A timer can fire before the reactor reads what arrived meanwhile (after
    # the process was stopped or starved, say): a verdict on silence waits one
    # turn, so that what is waiting is read first.

    def _judge(self, verdict):
        self._heard = False
        self._timers["judge"] = self.factory.clock.callLater(0, self._verdict, verdict)

    def _verdict(self, verdict):
        del self._timers["judge"]
        verdict()

    def _loginTimedOut(self):
        del self._timers["login"]
        self._judge(self._choseNoName)

    def _choseNoName(self):
        if self.user is None or self.user.name is not None or self._leaving:
            return
        self.log.info("{peer} chose no name in time", peer=self.transport.getPeer())
        self.timedOut("login")
        self._close()

    def named(self):
        """The user has chosen a name: the login timer stops, the idle one starts."""
        login = self._timers.pop("login", None)
        if login is not None:
            login.cancel()
        if self.settings.idle_timeout > 0:
            self.setTimeout(self.settings.idle_timeout)

    def timeoutConnection(self):
        self._judge(self._silent)

    def isSilent(self) -> bool:
        # A client whose lines wait for us (flood control, the store) is not
        # silent; one whose paced output waits for it to read is.
        waitingForUs = self._holds - {"paging"} or (
            "paging" in self._holds and not self.guard.backlogged)
        return not (self._heard or waitingForUs)

    def _silent(self):
        if self.user is None or self._leaving:
            return
        if not self.isSilent():
            self.setTimeout(self.settings.idle_timeout)
            return
        self.log.info("{user} was idle too long", user=self.user)
        self.timedOut("idle")
        self._close()

    def _close(self):
        """Close from this side, once what is queued has been sent; read nothing more."""
        if self._leaving:
            return
        self._leaving = True
        if self.guard is not None:
            # A TLS transport starts its shutdown only once no producer is registered.
            self.guard.release()
        self.transport.loseConnection()
        # A TLS peer that never answers the close alert keeps the connection
        # open, and Twisted keeps handing us what it sends: cut it off.
        self._timers["close"] = self.factory.clock.callLater(
            CLOSE_GRACE, self.transport.abortConnection)

    def _overflowed(self, queued):
        if self._closing:
            return
        self._closing = True
        self.log.warn("Disconnecting {user} from {peer}: {queued} bytes wait to be sent,"
                      " over the limit of {limit}", user=self.user,
                      peer=self.transport.getPeer(), queued=queued, limit=self.guard.limit)
        self.transport.abortConnection()

    def connectionLost(self, reason):
        for timer in self._timers.values():
            if timer.active():
                timer.cancel()
        self._timers.clear()
        self.setTimeout(None)
        if self.visitor is not None:
            self.factory.addresses.depart(self.visitor)
            self.visitor = None
        if self.user is not None:
            self.factory.lobby.disconnect(self.user)  # after a quit, nothing more to do
            if self.user.name is not None:
                self.log.info("{name} left", name=self.user.name)
            self.user = None

    # Reading lines

    def dataReceived(self, data):
        while True:
            if self._discarding:
                newline = data.find(b"\n")
                if newline == -1:
                    return
                self._discarding = False
                data = data[newline + 1:]
            LineReceiver.dataReceived(self, data)
            if self._leftover is None:
                return
            data, self._leftover = self._leftover, None

    def lineLengthExceeded(self, data):
        # Answer, skip up to the end of this line, and carry on with the next.
        self.tooLong()
        newline = data.find(b"\n")
        if newline == -1:
            self._discarding = True
        else:
            self._leftover = data[newline + 1:]

    def lineReceived(self, raw):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if self.user is None or self._leaving or self._closing:  # refused or closing
            return
        self.resetTimeout()
        self._heard = True
        if self.bucket is not None:
            wait = self.bucket.take()
            if wait:  # over its rate: read nothing more from it until it may send again
                self._hold("flood")
                self._timers["flood"] = self.factory.clock.callLater(wait, self._unflood)
                if not self._toldSlow:
                    self._toldSlow = True
                    self.slowed()
        if len(raw) > self.maxLine:
            return self.tooLong()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            if self.undecodable(raw):
                return
            # Each invalid byte becomes U+FFFD, three bytes: bound what is
            # stored and sent, not only what is read.
            text = raw.decode("utf-8", "replace")
            if len(text.encode("utf-8")) > self.maxLine:
                return self.tooLong(replaced=True)
        try:
            self.textReceived(text)
        except Exception:
            self.log.failure("Line from {user} failed", user=self.user)
            self.failed()

    def _unflood(self):
        del self._timers["flood"]
        self._release("flood")

    def createRoom(self, name, exclusive=True):
        """
        The Lobby's createRoom, within the address's allowance of new rooms
        (whichever door or connection asks): L{errors.CreatingTooOften} past
        it, and a refused creation (the name is taken, say) spends none.
        """
        rooms = self.visitor.rooms
        limited = self.settings.create_rate > 0
        if limited:
            wait = rooms.allow()
            if wait:
                raise errors.CreatingTooOften(wait)
        try:
            return self.factory.lobby.createRoom(self.user, name, exclusive=exclusive)
        except errors.ChatError:
            if limited:
                rooms.tokens += 1  # it created nothing
            raise

    # Waiting for the store, and holding input meanwhile

    def waitFor(self, d, refused):
        """
        Read no further lines until C{d} (a store round trip) is done, so this
        connection's commands take effect and answer in the order sent;
        C{refused} shows its failure, if any.
        """
        d.addErrback(self._refusedBy, refused)
        if not d.called:
            self._hold("store")
            d.addBoth(lambda _: self._release("store"))
        return d

    def _refusedBy(self, failure, refused):
        if self.user is None:
            return
        if not failure.check(errors.ChatError):
            self.log.failure("Request from {user} failed", failure, user=self.user)
        refused(failure)

    def _hold(self, reason):
        """Stop reading from this client (nothing is lost: it waits in the socket)."""
        if not self._holds:
            self.pauseProducing()
        self._holds.add(reason)

    def _release(self, reason):
        self._holds.discard(reason)
        if (not self._holds and self.user is not None and not self._closing
                and not self.transport.disconnecting):
            self.resumeProducing()

    # Sending

    def sendPaced(self, lines, done=None):
        """
        Send a long run of lines (replay, history, lists) only as fast as the
        client reads them, taking turns with everyone else's (L{Pacer}), and
        reading no commands meanwhile: it never piles up past the output
        limit, however slow the client, and never holds up anyone else.
        C{done}, if given, is called once the last piece is sent.
        """
        self._hold("paging")
        pieces = chunks(lines, self.encode)
        ahead = [next(pieces, None)]  # the next piece, read ahead (see _pace)
        self.factory.pacer.add(lambda: self._pace(ahead, pieces, done))

    def _pace(self, ahead, pieces, done) -> bool:
        if self.user is None:
            return False
        if ahead[0] is not None and self.guard.backlogged:  # on again once read
            self.guard.whenDrained().addCallback(
                lambda _: self.factory.pacer.add(lambda: self._pace(ahead, pieces, done)))
            return False
        if ahead[0]:
            self.write(ahead[0])
        # Read the next piece now, so that after the last one the hold is
        # released at once, not a turn (and a pause) later.
        ahead[0] = next(pieces, None) if ahead[0] is not None else None
        if ahead[0] is None:
            if done is not None:
                done()
            self._release("paging")
            return False
        return True

    def closing(self, event):
        """After delivering C{event}: a Stopping, Killed or MadeWay closes the connection."""
        if type(event) is Stopping:
            self._close()
        elif type(event) is Killed:  # the Lobby has let this user go
            self.user = None
            self._close()
        elif type(event) is MadeWay:  # the Lobby has let this user go
            self.log.info("{peer} made way for a newer connection",
                          peer=self.transport.getPeer())
            self.user = None
            login = self._timers.pop("login", None)
            if login is not None:
                login.cancel()
            self._close()

    def disconnect(self, reason):
        self.log.info("Disconnecting {user}: {reason}", user=self.user, reason=reason)
        self._closing = True
        self.transport.abortConnection()

    def write(self, data):
        if self._closing:
            return
        if self.guard is None:  # refused at the door
            self.transport.write(data)
        else:
            self.guard.write(data)

    def line(self, text):
        self.write(self.encode(text))

    def lines(self, texts):
        self.write(b"".join(self.encode(t) for t in texts))


class DoorFactory:
    """
    What each door's factory carries: the Lobby, and the one L{Addresses}
    and one L{Pacer} that every front door of the server shares.
    """

    noisy = False  # the protocol logs arrivals itself

    def __init__(self, lobby, addresses=None, pacer=None):
        self.lobby = lobby
        self.clock = lobby.clock  # timers: flood control, login and idle timeouts
        self.addresses = addresses or Addresses(lobby.settings, lobby.clock)
        self.pacer = pacer or Pacer(lobby.clock)


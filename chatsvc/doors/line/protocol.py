"""
The native front door: a line protocol a person can use with ``nc``. Turns
lines into calls on the Lobby and the Lobby's events into marked lines
(see protocol.md: ``<name>`` said, ``*`` notice, ``!`` error, ``->``/``<-`` private).
"""

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.protocol import ServerFactory
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.protocols.policies import TimeoutMixin
from zope.interface import implementer

from chatsvc import errors
from chatsvc.doors.line import wording
from chatsvc.doors.line.commands import Chat, parse
from chatsvc.doors import sockets
from chatsvc.doors.addresses import Addresses
from chatsvc.doors.flow import OutputGuard, Pacer
from chatsvc.events import IChatClient, MadeWay, Said, Stopping
from chatsvc.text import clean

PAGE_CHUNK = 16 * 1024  # replay, history and lists go out in pieces this big, as read
PAGE_SCAN = 2000  # items a piece may pass over (rooms a pattern skips) before it is sent
LEGACY_QUIT = b"#quit"  # what the original chatClient.py waits for to leave
LEAVING = {"create", "join", "leave", "quit"}  # commands that take you out of your room
CLOSE_GRACE = 10.0  # seconds a connection closed from this side has to go
NAME_WORDS = {"quit": "quit", "/quit": "quit", "help": "help", "/help": "help",
              "commands": "help", "/commands": "help"}  # understood at the name prompt


def _chunks(lines):
    """
    Encode lines into pieces of about PAGE_CHUNK bytes. A None among the
    lines is an item passed over; after PAGE_SCAN items a piece goes out
    even if it is empty, so that no turn of the reactor does unbounded work.
    """
    piece, size, scanned = [], 0, 0
    for line in lines:
        scanned += 1
        if line is not None:
            data = line.encode("utf-8") + b"\n"
            piece.append(data)
            size += len(data)
        if size >= PAGE_CHUNK or scanned >= PAGE_SCAN:
            yield b"".join(piece)
            piece, size, scanned = [], 0, 0
    if piece:
        yield b"".join(piece)


@implementer(IChatClient)
class ChatProtocol(LineReceiver, TimeoutMixin):
    delimiter = b"\n"  # a trailing \r is stripped in lineReceived
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
        self.legacy = False  # the peer is the original chatClient.py
        self._discarding = False  # skipping the rest of an over-long line
        self._leftover = None  # bytes after an over-long line, still to parse
        self._unconfirmed = 0  # messages said but not yet stored and echoed
        self._whenConfirmed = None  # a quit waiting for them

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
                    self, None if self.visitor.exempt else self.visitor.address)
            except errors.ChatError:
                self.factory.addresses.depart(self.visitor)
                self.visitor = None
                raise
        except errors.ChatError as refusal:
            self.factory.addresses.refused(peer, refusal)
            self.error(str(refusal))
            if ISSLTransport.providedBy(self.transport):
                # A TLS close waits for the peer's handshake and close_notify,
                # which a flood never sends: refused, it must hold nothing.
                self.transport.abortConnection()
            else:
                self.transport.loseConnection()
            return
        sockets.tune(self.transport, settings.keepalive)  # once admitted: refusals are many
        self.guard = OutputGuard(self.transport, settings.max_output_buffer, self._overflowed)
        if settings.flood_rate > 0:
            self.bucket = self.visitor.lines  # shared by every connection from the address
        self.callLater = clock.callLater  # for TimeoutMixin
        if settings.login_timeout > 0:
            self._timers["login"] = clock.callLater(settings.login_timeout, self._loginTimedOut)
        self.notice(f"Welcome to chatsvc! {wording.NAME_PROMPT}")

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
        self.error(f"You did not choose a screen name within "
                   f"{self.settings.login_timeout:g} seconds. Goodbye.")
        self._close()

    def timeoutConnection(self):
        self._judge(self._silent)

    def _silent(self):
        if self.user is None or self._leaving:
            return
        # A client whose lines wait for us (flood control, the store) is not
        # silent; one whose paced output waits for it to read is.
        waitingForUs = self._holds - {"paging"} or (
            "paging" in self._holds and not self.guard.backlogged)
        if self._heard or waitingForUs:
            self.setTimeout(self.settings.idle_timeout)
            return
        self.log.info("{user} was idle too long", user=self.user)
        self.notice(f"You were silent for {self.settings.idle_timeout:g} seconds."
                    " Closing the connection.")
        self._close()

    def _close(self):
        """Close from this side, once what is queued has been sent; read nothing more."""
        if self._leaving:
            return
        self._leaving = True
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

    @property
    def room(self):
        """The room this user is in (the native door keeps them in one at most)."""
        return next(iter(self.user.rooms.values()), None)

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
        self._tooLong()
        newline = data.find(b"\n")
        if newline == -1:
            self._discarding = True
        else:
            self._leftover = data[newline + 1:]

    def _tooLong(self):
        self.error(f"That line is longer than {self.maxLine} bytes; it was discarded.")

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
                    self.line(wording.slowed(self.settings.flood_rate,
                                             self.settings.flood_burst))
        if len(raw) > self.maxLine:
            return self._tooLong()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            # Each invalid byte becomes U+FFFD, three bytes: bound what is
            # stored and sent, not only what is read.
            text = raw.decode("utf-8", "replace")
            if len(text.encode("utf-8")) > self.maxLine:
                return self.error(
                    f"That line is longer than {self.maxLine} bytes once its invalid"
                    " UTF-8 bytes are replaced (each by 3 bytes); it was discarded.")
        # Clean at the edge: no control character or escape goes any further,
        # not even back to its sender inside an error message.
        line = clean(text)
        if self.legacy and line.startswith("> "):
            line = line[2:]  # the original client's prompt rides on every line
        try:
            if self.user.name is None:
                self.nameReceived(line)
            else:
                self.commandReceived(line)
        except errors.ChatError as refusal:
            self.error(str(refusal))
        except Exception:
            self.log.failure("Line from {user} failed", user=self.user)
            self.error("Sorry, the server failed to do that. Please tell its operator.")

    def _unflood(self):
        del self._timers["flood"]
        self._release("flood")

    def nameReceived(self, line):
        if self.user.name is None and line.startswith("name:") and not self.legacy:
            self.legacy = True
            line = line[len("name:"):]
        word = NAME_WORDS.get(line.strip().lower())
        if word == "quit":
            return self._goodbye("Goodbye.")
        if word == "help":
            self.notice(wording.NAME_HELP.format(limit=self.settings.name_max))
            self.notice(wording.NAME_PROMPT)
            return
        try:
            name = self.factory.lobby.chooseName(self.user, line)
        except errors.ChatError as refusal:
            self.error(str(refusal))
            self.notice(wording.NAME_PROMPT)
            return
        self.log.info("{name} arrived from {peer}", name=name, peer=self.transport.getPeer())
        login = self._timers.pop("login", None)
        if login is not None:
            login.cancel()
        if self.settings.idle_timeout > 0:
            self.setTimeout(self.settings.idle_timeout)
        self.lines(wording.welcome(name))

    def commandReceived(self, line):
        parsed = parse(line)
        if isinstance(parsed, Chat):
            self.cmd_say(parsed.text)
        elif parsed.name in LEAVING and self._unconfirmed:
            # Let the echoes of what was said here arrive before leaving it.
            self._whenConfirmed = Deferred()
            self._whenConfirmed.addCallback(lambda _: self.commandReceived(line))
            self._waitFor(self._whenConfirmed)
        else:
            getattr(self, "cmd_" + parsed.name)(*parsed.args)

    # Commands

    def cmd_commands(self):
        self.lines(wording.commands())

    def cmd_create(self, name):
        rooms = self.visitor.rooms
        if self.settings.create_rate > 0:
            wait = rooms.allow()  # the address's allowance, whichever connection asks
            if wait:
                raise errors.CreatingTooOften(wait)
        try:
            d = self.factory.lobby.createRoom(self.user, name)
        except errors.ChatError:
            if self.settings.create_rate > 0:
                rooms.tokens += 1  # refused: it created nothing
            raise
        d.addCallback(self.arrived)
        self._waitFor(d)

    def cmd_list(self, pattern):
        lobby = self.factory.lobby
        here = self.room.name if self.room else None
        self._sendPaced(wording.roomList(lobby.roomList(pattern), len(lobby.rooms),
                                         here, pattern))

    def cmd_join(self, name):
        d = self.factory.lobby.join(self.user, name)
        d.addCallback(self._joined)
        self._waitFor(d)

    def _joined(self, arrival):
        if arrival is None:
            if self.room is not None:
                self.notice(f"You are in {self.room.name} already.")
        else:
            self.arrived(arrival)

    def cmd_online(self):
        self._sendPaced(wording.online(self.factory.lobby.online()))

    def cmd_leave(self):
        room = self._currentRoom("leave one")
        self.factory.lobby.leave(self.user, room)
        self.notice(f"You left {room.name}. You are in the Lobby.")

    def cmd_who(self):
        room = self.room
        if room is None:
            names = self.factory.lobby.online()
            self.notice(f"Online ({len(names)}): {', '.join(names)}. You are in the Lobby.")
        else:
            names = [u.name for u in room.members]
            self.notice(f"In {room.name} ({len(names)}): {', '.join(names)}.")

    def cmd_history(self, count):
        room = self._currentRoom("read a room's history")
        d = self.factory.lobby.history(self.user, room, count)
        d.addCallback(self.paged)
        self._waitFor(d)

    def cmd_msg(self, name, text):
        event = self.factory.lobby.whisper(self.user, name, text)
        self.line(f"-> {event.recipient}: {event.text}")

    def cmd_say(self, text):
        room = self._currentRoom("talk: no one would hear that")
        # The echo, delivered with everyone else's copy, is the acknowledgement.
        # Messages are pipelined (a paste of many lines shares transactions), so
        # the answers to commands typed after one may arrive before its echo.
        d = self.factory.lobby.say(self.user, room, text)
        self._unconfirmed += 1
        d.addErrback(self._refused)
        d.addBoth(self._confirmed)

    def _confirmed(self, _):
        self._unconfirmed -= 1
        if not self._unconfirmed and self._whenConfirmed is not None:
            waiting, self._whenConfirmed = self._whenConfirmed, None
            waiting.callback(None)

    def cmd_quit(self):
        self._goodbye(f"Goodbye, {self.user.name}.")

    def _goodbye(self, text):
        if self.legacy:
            self._write(LEGACY_QUIT)
        else:
            self.notice(text)
        self.factory.lobby.disconnect(self.user, "quit")  # the room hears it now
        self._close()

    def _currentRoom(self, what):
        room = self.room
        if room is None:
            raise errors.NotInRoom(what)
        return room

    def _waitFor(self, d):
        """
        Read no further lines until C{d} (a store round trip) is done, so this
        connection's commands take effect and answer in the order sent.
        """
        d.addErrback(self._refused)
        if not d.called:
            self._hold("store")
            d.addBoth(lambda _: self._release("store"))

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

    def _refused(self, failure):
        if self.user is None:
            return
        if failure.check(errors.ChatError):
            self.error(str(failure.value))
        else:
            self.log.failure("Request from {user} failed", failure, user=self.user)
            self.error("Sorry, the server failed to do that. Please tell its operator.")

    # Showing what happened

    def arrived(self, arrival):
        if arrival is not None:  # None: disconnected while the room was being made
            self._sendPaced(wording.arrival(arrival))

    def paged(self, page):
        self._sendPaced(wording.page(page))

    def _sendPaced(self, lines):
        """
        Send a long run of lines (replay, history, lists) only as fast as the
        client reads them, taking turns with everyone else's (L{Pacer}), and
        reading no commands meanwhile: it never piles up past the output
        limit, however slow the client, and never holds up anyone else.
        """
        self._hold("paging")
        chunks = _chunks(lines)
        ahead = [next(chunks, None)]  # the next piece, read ahead (see _pace)
        self.factory.pacer.add(lambda: self._pace(ahead, chunks))

    def _pace(self, ahead, chunks) -> bool:
        if self.user is None:
            return False
        if ahead[0] is not None and self.guard.backlogged:  # on again once read
            self.guard.whenDrained().addCallback(
                lambda _: self.factory.pacer.add(lambda: self._pace(ahead, chunks)))
            return False
        if ahead[0]:
            self._write(ahead[0])
        # Read the next piece now, so that after the last one the hold is
        # released at once, not a turn (and a pause) later.
        ahead[0] = next(chunks, None) if ahead[0] is not None else None
        if ahead[0] is None:
            self._release("paging")
            return False
        return True

    def deliver(self, event):
        if type(event) is Said:
            data = event.rendered.get("native")
            if data is None:  # once per event, not once per member
                data = event.rendered["native"] = wording.said(event.messages)
            self._write(data)
        else:
            self.line(wording.event(event))
            if type(event) is Stopping:
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

    def _write(self, data):
        if self._closing:
            return
        if self.guard is None:  # refused at the door
            self.transport.write(data)
        else:
            self.guard.write(data)

    def line(self, text):
        self._write(text.encode("utf-8") + b"\n")

    def lines(self, texts):
        self._write("".join(t + "\n" for t in texts).encode("utf-8"))

    def notice(self, text):
        self.line("* " + text)

    def error(self, text):
        self.line("! " + text)


class ChatFactory(ServerFactory):
    """
    Makes one L{ChatProtocol} per connection, all sharing one Lobby, and one
    L{Addresses} and one L{Pacer}, which every front door of the server shares.
    """

    protocol = ChatProtocol
    noisy = False  # the protocol logs arrivals itself

    def __init__(self, lobby, addresses=None, pacer=None):
        self.lobby = lobby
        self.clock = lobby.clock  # timers: flood control, login and idle timeouts
        self.addresses = addresses or Addresses(lobby.settings, lobby.clock)
        self.pacer = pacer or Pacer(lobby.clock)

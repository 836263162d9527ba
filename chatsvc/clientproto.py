"""
The client's side of the chatsvc line protocol (see protocol.md): the
connection to the server and one person's session across reconnections.

A front end (L{chatsvc.clientpipe.PipeDisplay} for pipes and scripts,
L{chatsvc.clientterm.TerminalDisplay} for a terminal) shows lines and feeds typed lines to L{ChatClient}; it provides
C{start(client)}, C{serverConnected()}, C{show(line)}, C{status(text, problem)},
C{changed()} and C{stop()} (which returns a Deferred).
"""

import re
from collections import Counter, deque, namedtuple

from twisted.internet import error
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import (
    IHandshakeListener, INegotiated, ITCPTransport)
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from chatsvc.doors.line.commands import Invocation, parse
from chatsvc.errors import ChatError
from chatsvc.text import clean

# What the server's lines start with (protocol.md, "Lines the server sends").
SAID, REPLAYED, NOTICE, ERROR, SENT_PRIVATE, GOT_PRIVATE, OTHER = (
    "said", "replayed", "notice", "error", "sent-private", "got-private", "other")
_SAID = re.compile(r"<([^\s<>]+)> ")
_REPLAYED = re.compile(r"\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}\] <([^\s<>]+)> ")
_PREFIXES = (("* ", NOTICE), ("! ", ERROR), ("-> ", SENT_PRIVATE), ("<- ", GOT_PRIVATE))

# The lines the client reads its state from.
NAME_PROMPT = "Enter your screen name:"
_REPROMPT = "* " + NAME_PROMPT  # the prompt again, after a refused name
_WELCOME = re.compile(r"\* Welcome, ([^\s.]+)\.")
_JOINED = re.compile(r"\* You joined (\S+?)\.(?: |$)")
_LEFT = re.compile(r"\* You left (\S+?)\.(?: |$)")
_GOODBYE = "* Goodbye, "
_TAKEN = re.compile(r"! The name \S+ is taken")
_OLDER = re.compile(r"\* \d+ older messages?:")
_IDLE = re.compile(r"\* You were silent for .*Closing the connection")
_HELP_LINE = "*   "  # the command list that follows a welcome

NAME_RETRIES = (1, 2)  # seconds before asking again for a name that is taken
NAME_MAX = 20
RETRY_FIRST, RETRY_MAX = 1, 30  # reconnection backoff, in seconds


def classify(line):
    """The kind of a line from the server, by its marker."""
    for prefix, kind in _PREFIXES:
        if line.startswith(prefix):
            return kind
    if _SAID.match(line):
        return SAID
    if _REPLAYED.match(line):
        return REPLAYED
    return OTHER


def spoken(line):
    """C{(sender, text)} of a said or replayed message, else None."""
    match = _SAID.match(line) or _REPLAYED.match(line)
    return (match.group(1), line[match.end():]) if match else None


def isQuit(line):
    """Whether the server will take C{line} (from a named user) as C{quit}."""
    try:
        parsed = parse(line)
    except ChatError:
        return False
    return isinstance(parsed, Invocation) and parsed.name == "quit"


def backoff(failures):
    """Seconds to wait before the next attempt: 1 s, doubling, at most 30 s."""
    return min(RETRY_MAX, RETRY_FIRST * 2 ** min(failures, 10))


def describe(reason):
    """A person's words for why a connection failed or ended."""
    if reason.check(error.ConnectionRefusedError):
        return "connection refused (is the server running?)"
    if reason.check(error.DNSLookupError):
        return "no such host"
    if reason.check(error.TimeoutError):
        return "timed out"
    if reason.check(error.ConnectionDone):
        return "the server closed the connection"
    if reason.check(error.ConnectionLost):
        return "the connection was lost"
    if reason.check(TLSProblem):
        return str(reason.value)
    if reason.type.__module__.startswith("OpenSSL"):
        return f"the TLS handshake failed ({reason.getErrorMessage()})"
    return reason.getErrorMessage()


class TLSProblem(Exception):
    """A TLS failure, already in a person's words (see L{chatsvc.clienttls})."""


@implementer(IHandshakeListener)
class ServerConnection(LineReceiver):
    """The connection to the server: lines in and out, UTF-8 at the edge."""

    delimiter = b"\n"  # the server sends \n; a stray \r is stripped
    MAX_LENGTH = 1 << 20  # the server's own lines (room lists) can be long
    _ready = False

    def connectionMade(self):
        if ITCPTransport.providedBy(self.transport):
            self.transport.setTcpNoDelay(True)
        if not INegotiated.providedBy(self.transport):  # not TLS: ready now
            self.handshakeCompleted()

    def handshakeCompleted(self):
        """Connected, and over TLS the server's certificate is verified."""
        self._ready = True
        self.factory.client.connected(self)

    def lineReceived(self, raw):
        self.factory.client.serverLine(raw.rstrip(b"\r").decode("utf-8", "replace"))

    def sendText(self, text):
        self.sendLine(text.replace("\r", "").replace("\n", " ").encode("utf-8"))

    def connectionLost(self, reason):
        check = self.factory.client.tls
        if check is not None:
            handle = getattr(self.transport, "getHandle", None)  # the pyOpenSSL connection
            words = check.explain(reason, handle() if handle else None, self._ready)
            if words is not None:
                reason = Failure(TLSProblem(words))
        if self._ready:
            self.factory.client.disconnected(reason)
        else:  # the TLS handshake failed
            self.factory.client.connectFailed(reason)


class ServerAddress(namedtuple("ServerAddress", "endpoint where tls")):
    """
    One server the client can connect to: its endpoint, the words that name
    it in the client's lines, and (for TLS) its L{chatsvc.clienttls.TLSCheck}.
    """


class ServerConnectionFactory(Factory):
    protocol = ServerConnection
    noisy = False

    def __init__(self, client):
        self.client = client


class _Restore:
    """Signing in again after a reconnection: the name to ask for, the room."""

    def __init__(self, name, room, seen):
        self.wanted = name
        self.candidate = name
        self.room = room
        self.seen = seen  # Counter of (sender, text) already shown in that room
        self.taken = 0  # refusals so far
        self.hideHelp = False
        self.joining = False
        self.replaying = False
        self.shownNew = False

    def nextName(self):
        """The name to try after a refusal, and the delay before; None: give up."""
        retries = len(NAME_RETRIES)
        if self.taken <= retries:
            return self.wanted, NAME_RETRIES[self.taken - 1]
        n = self.taken - retries + 1  # 2, 3, ...
        if n > 9:
            return None
        suffix = str(n)
        return self.wanted[:NAME_MAX - len(suffix)] + suffix, 0


class ChatClient:
    """
    One person's session with a server, across reconnections: sends what
    they type, shows what the server sends, and remembers the name the server
    confirmed and the room they are in, so that a new connection restores both.

    C{others} are more L{ServerAddress}es of the same chat (other nodes of a
    cluster): the client connects to the first that answers, in order, and
    with C{reconnect} each new attempt after a drop is at the next address
    after the one before: the first after a drop is at the next node.

    L{finished} fires with the exit code: 0 after C{quit} or when the person
    leaves, 1 when no server can be reached or (without C{reconnect}) the
    connection is lost.
    """

    log = Logger()

    def __init__(self, endpoint, where, display, *, reconnect, clock, tls=None, others=()):
        # tls: a clienttls.TLSCheck for a TLS endpoint, to explain its failures
        self.addresses = [ServerAddress(endpoint, where, tls), *others]
        self._at = 0  # the index in addresses of the connection or attempt
        self.display = display
        self.reconnect = reconnect
        self.clock = clock
        self.finished = Deferred()
        self.connection = None
        self.named = False  # on this connection
        self.name = None  # the name the server confirmed last
        self.wantedName = None  # the name to sign in with again
        self.room = None
        self._seen = deque(maxlen=200)  # (sender, text) shown in this room
        self._everConnected = False
        self._failures = 0  # failed attempts to reconnect, in a row
        self._connecting = None  # the Deferred of an attempt under way
        self._timer = None  # the next attempt, or the next name to send
        self._restoring = None
        self._quitting = False
        self._leaving = False
        self._idle = False  # the server closes this connection for silence
        self._inputEnded = False
        self._unnamedLines = []  # sent before a name was taken, not yet answered
        self.done = False  # ending (or ended)
        self._ended = False  # ended: the display is stopped, finished has fired
        self._waiters = []

    @property
    def endpoint(self):
        return self.addresses[self._at].endpoint

    @property
    def where(self):
        return self.addresses[self._at].where

    @property
    def tls(self):
        return self.addresses[self._at].tls

    def start(self):
        self.display.start(self)
        self._connect()
        return self.finished

    def prompt(self):
        if self.connection is None:
            return "(offline)> "
        if not self.named:
            return "name: " if self._restoring is None else "(signing in)> "
        return f"{self.room}> " if self.room else "> "

    # Connecting

    def _connect(self):
        self._timer = None
        if self._everConnected:  # each attempt at the next address, in turn
            self._at = (self._at + 1) % len(self.addresses)
            self.display.status(
                f"Reconnecting to {self.where} (attempt {self._failures + 1})...")
        self._connecting = self.endpoint.connect(ServerConnectionFactory(self))
        self._connecting.addCallbacks(self._attempted, self.connectFailed)

    def _attempted(self, connection):
        self._connecting = None

    def connectFailed(self, reason):
        self._connecting = None
        if self.done:
            return
        if not self._everConnected:
            failed = f"Could not connect to {self.where}: {describe(reason)}."
            if self._at + 1 == len(self.addresses):
                self._finish(1, failed)
                return
            self._at += 1
            self.display.status(f"{failed} Trying {self.where}...", problem=True)
            self._connect()
            return
        self._failures += 1
        delay = backoff(self._failures)
        self.display.status(
            f"Could not reconnect: {describe(reason)}. Next attempt in {delay} s.",
            problem=True)
        self._timer = self.clock.callLater(delay, self._connect)

    def connected(self, connection):
        self._connecting = None
        self.connection = connection
        self._everConnected = True
        self._failures = 0
        self._unnamedLines = []
        self.display.status(f"Connected to server {self.where}")
        if self.wantedName is not None:
            self._restoring = _Restore(self.wantedName, self.room, Counter(self._seen))
            self.room = None  # until the server says we are back in it
        self.display.serverConnected()
        self.display.changed()

    def disconnected(self, reason):
        self.connection = None
        self.named = False
        self._restoring = None
        self._cancelTimer()
        if self.done:
            return
        if self._quitting or self._leaving:
            self._finish(0)
            return
        if self._idle:  # coming back by itself would defeat the server's idle timeout
            self._finish(1, f"The server at {self.where} closed the idle connection.")
            return
        lost = f"Lost the connection to {self.where}: {describe(reason)}."
        if not self.reconnect or self.wantedName is None:
            # Nothing to restore before the first sign-in (and the server may
            # have closed it for taking too long to choose a name).
            self._finish(1, lost)
            return
        self.display.status(f"{lost} Reconnecting in {backoff(0)} s.", problem=True)
        self.display.changed()
        self._timer = self.clock.callLater(backoff(0), self._connect)

    # Lines from the person

    def lineTyped(self, text):
        """Send a typed line. False if it could not be sent (keep it)."""
        if self.done:
            return False
        if self.connection is None:
            self.display.status(
                "Not connected, so that was not sent: press Enter again once reconnected.",
                problem=True)
            return False
        if self._restoring is not None and not self.named:
            self.display.status(
                "Still signing in again: press Enter again in a moment.", problem=True)
            return False
        if self.named:
            self._quitting = self._quitting or isQuit(text)
        else:
            self._unnamedLines.append(text)
        self.connection.sendText(text)
        return True

    def inputEnded(self):
        """No more input (end of stdin, or Ctrl-D): say quit, then leave."""
        self._inputEnded = True
        if self.connection is None:
            self._finish(0)
        elif self.named:
            self._quit()
        elif not self._unnamedLines:
            self.leave()
        # else: a name is on its way; its answer decides (see _track)

    def leave(self):
        """Leave now (Ctrl-C, stdout gone, shutting down); see L{whenDone}."""
        self._leaving = True
        if self.connection is not None:
            self.connection.transport.loseConnection()
        elif not self.done:
            self._finish(0)
        return self.whenDone()

    def whenDone(self):
        """A Deferred that fires (with None) once the session has ended."""
        d = Deferred()
        if self._ended:
            d.callback(None)
        else:
            self._waiters.append(d)
        return d

    def _quit(self):
        if not self._quitting:
            self._quitting = True
            self.connection.sendText("quit")

    # Lines from the server

    def serverLine(self, line):
        line = clean(line)
        if self._restoring is not None and self._restoreLine(line):
            return
        self._track(line)
        self.display.show(line)

    def _track(self, line):
        """Follow the session's state in what the server says."""
        if not self.named:
            welcome = _WELCOME.match(line)
            if welcome:
                self.named = True
                self.name = welcome.group(1)
                if self._restoring is None:  # the person chose it
                    self.wantedName = self.name
                # The first line still unanswered was the name; any after it,
                # sent before this welcome, are commands.
                commands, self._unnamedLines = self._unnamedLines[1:], []
                self._quitting = self._quitting or any(map(isQuit, commands))
                self.display.changed()
                if self._inputEnded:
                    self._quit()
            elif line == _REPROMPT:
                del self._unnamedLines[:1]  # that name was refused
                if self._inputEnded and not self._unnamedLines:
                    self.leave()
            return
        if line.startswith("* "):
            joined = _JOINED.match(line)
            if joined:
                if joined.group(1) != self.room:
                    self._seen.clear()
                self.room = joined.group(1)
                self.display.changed()
            elif _LEFT.match(line):
                self.room = None
                self._seen.clear()
                self.display.changed()
            elif line.startswith(_GOODBYE):  # the server's last line: close our side too
                self._quitting = True
                self.connection.transport.loseConnection()
            elif _IDLE.match(line):
                self._idle = True
        else:
            message = spoken(line)
            if message is not None:
                self._seen.append(message)

    def _restoreLine(self, line):
        """
        Sign in again with the remembered name and room; True for a line of
        the server's that says nothing new to the person (hide it).
        """
        r = self._restoring
        if r.hideHelp:
            if line.startswith(_HELP_LINE):
                return True
            r.hideHelp = False
            if not r.joining:
                self._restoring = None
                return False
        if not self.named:
            return self._restoreName(line, r)
        if r.joining:
            if _JOINED.match(line):
                r.joining, r.replaying = False, True
            elif line.startswith("! "):
                self.display.status(f"Could not rejoin {r.room}.", problem=True)
                self.room = None
                self._restoring = None
            return False
        if r.replaying:
            if _OLDER.match(line):
                return True
            if classify(line) == REPLAYED:
                message = spoken(line)
                if not r.shownNew and r.seen[message] > 0:
                    r.seen[message] -= 1  # shown before the connection dropped
                    return True
                r.shownNew = True
                return False
        self._restoring = None  # the replay is over
        return False

    def _restoreName(self, line, r):
        if line.startswith("* ") and NAME_PROMPT in line:
            if r.taken:
                attempt = r.nextName()
                if attempt is None:
                    self._restoring = None
                    self.display.status(
                        f"Could not sign in again as {r.wanted}: type a screen name.",
                        problem=True)
                    self.display.changed()
                    return False
                r.candidate, delay = attempt
                if delay:
                    self._timer = self.clock.callLater(delay, self._sendName, r.candidate)
                else:
                    self._sendName(r.candidate)
            else:
                self._sendName(r.candidate)
            return True
        if _TAKEN.match(line):
            r.taken += 1
            attempt = r.nextName()
            if attempt is not None and attempt[0] == r.wanted:
                self.display.status(
                    f"The name {r.wanted} is still taken, probably by the connection"
                    f" that dropped; asking again in {attempt[1]} s.", problem=True)
            elif attempt is not None:
                self.display.status(
                    f"{r.candidate} is still taken; signing in as {attempt[0]} instead.",
                    problem=True)
            return True
        if _WELCOME.match(line):
            self._track(line)
            how = "" if self.name == r.wanted else f" ({r.wanted} is still taken)"
            self.display.status(f"Signed in again as {self.name}{how}.")
            r.hideHelp = True
            if r.room is not None:
                r.joining = True
                self.connection.sendText(f"join {r.room}")
            return True
        if line.startswith("! "):  # refused for another reason: the person decides
            self._restoring = None
            self.display.status(f"Could not sign in again as {r.candidate}.", problem=True)
            self.display.changed()
        return False

    def _sendName(self, name):
        self._timer = None
        if self.connection is not None:
            self.connection.sendText(name)

    # Ending

    def _cancelTimer(self):
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _finish(self, code, problem=None):
        if self.done:
            return
        self.done = True
        self._cancelTimer()
        if self._connecting is not None:
            self._connecting.cancel()
        if problem:
            self.display.status(problem, problem=True)
        if self.connection is not None:
            self.connection.transport.loseConnection()
        d = maybeDeferred(self.display.stop)
        d.addErrback(lambda f: self.log.failure("Stopping the display failed", f))
        d.addCallback(self._end, code)

    def _end(self, _, code):
        self._ended = True
        waiters, self._waiters = self._waiters, []
        self.finished.callback(code)
        for waiter in waiters:
            waiter.callback(None)

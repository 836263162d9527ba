"""
How ``twistd chatroom`` refuses to start: one line on the terminal that names
the option and says what is wrong, and a non-zero exit status (2 for a bad
option, 1 when the server cannot start), with or without ``-n``.

twistd itself prints its whole help before a bad option's error, and reports
an error raised while services start as a traceback (``-n``) or, when it
daemonizes, as a repr cut at 100 bytes (the parent process prints what the
daemon sent it through a pipe, in words of its own). So what can be checked
while parsing is, and the listening sockets are opened as twistd adopts the
service tree: before it starts logging or forks, while the terminal is still
ours.
"""

import errno
import sys

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet import endpoints
from twisted.internet.error import CannotListenError
from twisted.python import usage

from chatsvc import logs

COMMAND = "twistd chatroom"
BAD_OPTION = 2  # as getopt-style tools exit (chatsvc-bench too)
CANNOT_START = 1


def refuse(message, status):
    """Say C{message} on one line of stderr, as the command, and exit with C{status}."""
    sys.stderr.write(f"{COMMAND}: {message}\n")
    sys.stderr.flush()
    raise SystemExit(status)


class OneLineRefusals:
    """
    Options that, run by twistd, refuse a bad value in one line instead of
    letting twistd print its whole help first (what app.run does with a
    UsageError). Parsed on their own (tests, other programs), they raise the
    UsageError as usual.
    """

    def parseOptions(self, options=None):
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            if self.parent is None:
                raise
            text = str(e).rstrip(".")
            refuse(f"{text}. Try {COMMAND} --help.", BAD_OPTION)


def checkListen(reactor, description, option="--listen"):
    """
    The endpoint C{description} describes, without listening; a UsageError
    naming C{option} if it cannot be one, or its TCP or TLS port is out of range
    (which otherwise surfaces only when listening, as an OverflowError).
    """
    try:
        endpoint = endpoints.serverFromString(reactor, description)
    except ImportError as e:  # ssl: without pyOpenSSL
        raise usage.UsageError(
            f"{option} {description}: TLS needs the tls extra ({e}):"
            " pip install 'chatsvc[tls]'")
    except Exception as e:
        raise usage.UsageError(f"{option} {description!r} is not usable: {e}")
    port = getattr(endpoint, "_port", None)  # where TCP and TLS endpoints keep it
    if isinstance(port, int) and not 0 <= port <= 65535:
        raise usage.UsageError(
            f"{option} {description}: a port is from 0 to 65535, not {port}.")
    return endpoint


_REASONS = {
    errno.EADDRINUSE: "the address is in use (is another server running?)",
    errno.EADDRNOTAVAIL: "this machine has no such address",
    errno.EACCES: "permission denied",
}


def _why(error):
    """What is wrong, in a few words, when listening failed with C{error}."""
    if isinstance(error, CannotListenError):
        cause = error.socketError
        reason = _REASONS.get(getattr(cause, "errno", None))
        if reason is None:
            return getattr(cause, "strerror", None) or str(cause)
        if cause.errno == errno.EACCES and isinstance(error.port, int):
            reason += " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        return reason
    return str(error) or type(error).__name__


class CannotStart(Exception):
    """The server cannot start; the message names the option and says why."""


class Listener(StreamServerEndpointService):
    """
    One --listen (or --irc) address. It listens once, when twistd adopts the tree
    (L{Server}) or at privilegedStartService, whichever comes first; failing
    to listen raises L{CannotStart} naming the address as it was given.
    """

    _raiseSynchronously = True  # fail start-up rather than only log (as strports.service)

    def __init__(self, endpoint, factory, description, option="--listen"):
        super().__init__(endpoint, factory)
        self.description = description
        self.option = option

    def listenNow(self):
        try:
            super().privilegedStartService()
        except Exception as e:
            raise CannotStart(f"{self.option} {self.description}: {_why(e)}") from e

    def privilegedStartService(self):
        if self._waitingForPort is None:
            self.listenNow()


class Server(MultiService):
    """
    The server's service tree. Adopted by twistd (made the child of its
    Application, before twistd starts logging or daemonizes), it listens on
    every address and runs its C{checks} (the database can be opened),
    refusing in one line if one fails, and gives the
    Application the bounded log file (L{chatsvc.logs}). Outside twistd
    (C{options.parent} is None) it is a plain MultiService.
    """

    def __init__(self, options):
        super().__init__()
        self.options = options
        self.checks = []  # (option as given, callable raising what is wrong with it)

    def setServiceParent(self, parent):
        super().setServiceParent(parent)
        twistd = self.options.parent
        if twistd is None:
            return
        try:
            for listener in self:
                if isinstance(listener, Listener):
                    listener.listenNow()
            for option, check in self.checks:
                try:
                    check()
                except Exception as e:
                    raise CannotStart(f"{option}: {e}") from e
            logs.install(parent, twistd, self.options)
        except (CannotStart, logs.CannotOpen) as e:
            refuse(str(e), CANNOT_START)

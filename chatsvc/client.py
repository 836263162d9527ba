"""
The chatsvc client: C{chatsvc-client [HOST] [PORT]} and C{twistd -n
chatclient --server tcp:HOST:PORT} (C{--server} again for more nodes). The
command line and the service; the session is L{chatsvc.clientproto}, the
front ends L{chatsvc.clientterm} (a terminal) and L{chatsvc.clientpipe}
(pipes and scripts).
"""

import os
import sys

from twisted.application.service import Service
from twisted.internet import endpoints, task
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    Logger,
    formatEvent,
    globalLogBeginner,
    textFileLogObserver,
)
from twisted.python import usage
from twisted.python.components import Componentized
from twisted.python.logfile import LogFile

import chatsvc
from chatsvc.clientpipe import PipeDisplay
from chatsvc.clientproto import ChatClient, ServerAddress
from chatsvc.clienttls import TLSCheck, tlsMissing, verifiedTLS

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
TWISTD_LOG = "chatclient.log"


class Options(usage.Options):
    synopsis = "[options] [HOST [PORT]]"
    longdesc = f"""\
Chat on a chatsvc server: connect to HOST (default {DEFAULT_HOST}) on PORT
(default {DEFAULT_PORT}), or to the endpoint given with --server (given several
times, for nodes of one chat: to the first that answers, in order), then show
every line the server sends and send every line you type. First type a screen
name (Enter alone makes you a guest), then commands: list, create ROOM, join
ROOM, help, quit...

In a terminal (stdin and stdout both terminals, TERM not "dumb", no --plain)
lines arrive above the input line, which keeps what you are typing.
  Left/Right, Ctrl-B/F    move          Alt-B/F, Ctrl-Left/Right  by word
  Home/End, Ctrl-A/E      line start/end
  Backspace, Delete       delete        Ctrl-W, Alt-Backspace     word back
  Ctrl-U / Ctrl-K         delete to the start / to the end of the line
  Up/Down, Ctrl-P/N       the lines you sent before
  Ctrl-L                  clear the screen
  Ctrl-D                  on an empty line: send quit and leave
  Ctrl-C                  leave at once
Colours by marker: <name> messages (yours green), "* " notices yellow, "! "
errors red, "->"/"<-" private messages magenta, history replayed as
"[YYYY-MM-DD HH:MM] <name> ..." dim, the client's own lines cyan. No colour
with --no-color, or when the NO_COLOR environment variable is set (non-empty).
If the connection drops, the client says so and reconnects after 1 s, then 2,
4, ... up to 30 s between attempts, announcing each (with several --server,
each attempt is at the next one, starting after the one lost); then it signs
in again with your name and rejoins your room. If your old connection still
holds the name, it asks again twice, then signs in as NAME2 (NAME3, ...) and
says so.

Otherwise (pipes, scripts, --plain): plain lines in and out. stdout gets the
server's lines and the client's own "Connected to server ..."; the one line
saying why the client failed goes to stderr (with several --server, one line
for each that could not be reached). At the end of input the client sends quit
(after everything before it) and exits once the server closes.

Exit status: 0 after quit, Ctrl-D or Ctrl-C; 1 if the server cannot be reached
or the connection is lost (a terminal session reconnects instead); 2 for a bad
command line.

Logging: chatsvc-client keeps no log unless --log FILE is given; its own
errors are shown as lines of its own. Under twistd run it in the foreground,
twistd -n --pidfile= chatclient [options]; the log then goes to the --log
file, else to twistd's --logfile or --syslog if given, else to
{TWISTD_LOG} in the current directory, never into the chat. The exit
status under twistd is twistd's own."""

    optParameters = [
        ["log", None, None,
         f"Append the client's log to this file (under twistd the default is {TWISTD_LOG})."],
    ]
    optFlags = [
        ["plain", "p", "Plain lines in and out even in a terminal: no line editing,"
                       " no colour, no reconnecting."],
        ["no-color", None, "Do not colour lines (as when NO_COLOR is set)."],
    ]

    def __init__(self):
        super().__init__()
        self["server"] = []  # every --server, in order

    def opt_server(self, description):
        # A method, not an optParameter, so that it can be given several times.
        self["server"].append(description)

    opt_server.__doc__ = (  # one paragraph: usage.Options keeps a docstring's indentation
        "Connect to this client endpoint description instead of HOST PORT, e.g."
        " tcp:chat.example.org:3000 or ssl:chat.example.org:3443 (ssl needs the tls"
        " extra: pip install 'chatsvc[tls]'; the server's certificate is checked against"
        " the system's CAs, or the .pem files in caCertsDir=DIR, for the host or"
        " hostname=). Give it again for other nodes of the same chat: the first that"
        " answers is used, and a terminal session reconnects to the next one.")
    opt_s = opt_server

    def getUsage(self, width=None):
        # usage.Options would re-wrap longdesc into one paragraph.
        self.longdesc, text = "", self.longdesc
        try:
            return super().getUsage(width) + "\n" + text + "\n"
        finally:
            del self.longdesc

    def opt_version(self):
        """Print the version and exit."""
        print(f"chatsvc-client {chatsvc.__version__}")
        sys.exit(0)

    def parseArgs(self, *args):
        if len(args) > 2:
            raise usage.UsageError(
                f"expected at most HOST and PORT, got {len(args)} arguments: {' '.join(args)}")
        self["host"] = args[0] if args else None
        self["port"] = args[1] if len(args) > 1 else None

    def postOptions(self):
        from twisted.internet import reactor

        if self["server"]:
            if self["host"] is not None:
                raise usage.UsageError("give either HOST [PORT] or --server, not both")
            self.servers = [_address(reactor, given) for given in self["server"]]
        else:
            host = self["host"] or DEFAULT_HOST
            port = _port(self["port"])
            description = (f"tcp:host={endpoints.quoteStringArgument(host)}"
                           f":port={port}:timeout=10")
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            self.servers = [_address(reactor, description, where)]
        # The first server; the others are tried after it (see ChatClient).
        self.endpoint, self.where, self.tls = self.servers[0]


def _address(reactor, given, where=None):
    """The L{ServerAddress} for a --server description (or HOST PORT's)."""
    if where is None:
        missing = tlsMissing(given)
        if missing:  # else Twisted says "name 'optionsForClientTLS' is not defined"
            raise usage.UsageError(missing)
        description = verifiedTLS(given)
    else:
        description = given
    try:
        endpoint = endpoints.clientFromString(reactor, description)
    except Exception as e:
        raise usage.UsageError(f"--server {description!r} is not usable: {e}")
    return ServerAddress(endpoint, where or given, TLSCheck.fromDescription(description))


def _port(text):
    if text is None:
        return DEFAULT_PORT
    if text.isdigit() and 1 <= int(text) <= 65535:
        return int(text)
    raise usage.UsageError(f"PORT must be a whole number from 1 to 65535, not {text!r}")


def inTerminal(options, environ=os.environ):
    """Whether to run the terminal front end (it needs POSIX termios)."""
    return (not options["plain"] and os.name == "posix" and os.isatty(0) and os.isatty(1)
            and environ.get("TERM") != "dumb")


def buildClient(options, reactor, environ=os.environ):
    """A L{ChatClient} with the front end that suits stdin and stdout."""
    terminal = inTerminal(options, environ)
    if terminal:
        from chatsvc.clientterm import TerminalDisplay, wantColour
        display = TerminalDisplay(wantColour(environ, options["no-color"]))
    else:
        display = PipeDisplay()
    return ChatClient(options.endpoint, options.where, display, reconnect=terminal,
                      clock=reactor, tls=options.tls, others=options.servers[1:])


# twistd chatclient

def makeService(options):
    return ChatClientService(options)


class ChatClientService(Service):
    """One chat session under twistd; stops the reactor when it ends."""

    log = Logger()

    def __init__(self, options):
        self.options = options
        self.client = None
        self.exitCode = None

    def setServiceParent(self, parent):
        super().setServiceParent(parent)
        # twistd starts logging after making the application and before
        # starting it: a log observer set on it now keeps the log off the chat.
        twistd = getattr(self.options, "parent", None)
        if isinstance(parent, Componentized) and twistd is not None:
            chosen = twistd.get("logfile") or twistd.get("syslog") or twistd.get("logger")
            if self.options["log"] or not chosen:
                path = self.options["log"] or TWISTD_LOG
                parent.setComponent(ILogObserver, textFileLogObserver(LogFile.fromFullPath(path)))

    def startService(self):
        from twisted.internet import reactor

        super().startService()
        self.client = buildClient(self.options, reactor)
        self.client.start().addCallback(self._ended, reactor)

    def _ended(self, code, reactor):
        self.exitCode = code
        self.log.info("The chat session ended (exit status {code})", code=code)
        if reactor.running:
            reactor.stop()

    def stopService(self):
        super().stopService()
        if self.client is not None:
            return self.client.whenDone()


# chatsvc-client

def main(argv=None):
    """The C{chatsvc-client} console script."""
    options = Options()
    options.synopsis = "Usage: chatsvc-client " + Options.synopsis
    try:
        options.parseOptions(sys.argv[1:] if argv is None else argv)
    except usage.UsageError as e:
        sys.stderr.write(f"chatsvc-client: {e} (see chatsvc-client --help)\n")
        sys.exit(2)
    task.react(_run, (options,))


def _run(reactor, options):
    client = buildClient(options, reactor)
    _startLogging(options["log"], client.display)
    reactor.addSystemEventTrigger("before", "shutdown", client.leave)  # SIGINT, SIGTERM
    d = client.start()
    d.addCallback(_exit)
    return d


def _exit(code):
    if code:
        raise SystemExit(code)


def _startLogging(path, display):
    if path:
        observer = textFileLogObserver(open(path, "a", encoding="utf-8"))
    else:  # no log: show the client's own errors as problems, and nothing else
        def problem(event):
            text = (formatEvent(event).splitlines() or ["?"])[0]
            failure = event.get("log_failure")
            if failure is not None:
                text += f": {failure.getErrorMessage()}"
            display.status(f"Client error: {text} (run with --log FILE for details)",
                           problem=True)

        observer = FilteringLogObserver(
            problem, [LogLevelFilterPredicate(defaultLogLevel=LogLevel.error)])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


if __name__ == "__main__":
    main()

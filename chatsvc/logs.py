"""
The server's log file, bounded. twistd's own log file rotates at 1 MB and
keeps every rotated file, so a flood of connections can fill the disk; this
one rotates at --log-size and keeps --log-keep rotated files. twistd looks
for an ILogObserver on its Application before it builds its own observer,
so that is where this one goes; the terminal (-n), --syslog, --logfile -
and --logger are left to twistd.
"""

import signal

from twisted.logger import ILogObserver, textFileLogObserver
from twisted.python import usage
from twisted.python.logfile import LogFile

MEGABYTE = 1_000_000  # as twistd counts its 1 MB


def _whole(name, low, high):
    def coerce(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise usage.UsageError(
                f"--{name} takes a whole number from {low} to {high}, not {text!r}.")
        return value
    return coerce


class LogOptions:
    """The options of the log file, for an Options class to inherit."""

    optParameters = [
        ["log-size", None, 10,
         "Megabytes the log file grows to before it is rotated (1-100000).",
         _whole("log-size", 1, 100_000)],
        ["log-keep", None, 5,
         "Rotated log files kept (1-1000); older ones are deleted. The log file is"
         " twistd's --logfile (twistd.log when daemonized); -n without --logfile"
         " logs to the terminal.",
         _whole("log-keep", 1, 1000)],
    ]


class CannotOpen(Exception):
    """The log file cannot be opened; the message names --logfile."""


def logFileFor(twistd, options):
    """
    The bounded log file twistd's options (C{twistd}) ask for, or None where
    twistd's own choice should stand.
    """
    path = twistd.get("logfile") or ""
    if twistd.get("logger") or twistd.get("syslog") or path == "-":
        return None
    if not path:
        if twistd.get("nodaemon"):
            return None  # the terminal
        path = "twistd.log"
    try:
        return LogFile.fromFullPath(path, rotateLength=options["log-size"] * MEGABYTE,
                                    maxRotatedFiles=options["log-keep"])
    except OSError as e:
        raise CannotOpen(f"--logfile {path}: {e.strerror or e}") from e


def install(application, twistd, options):
    """Give C{application} the bounded log file, if twistd's options want a file."""
    logFile = logFileFor(twistd, options)
    if logFile is None:
        return
    application.setComponent(ILogObserver, textFileLogObserver(logFile))
    if not signal.getsignal(signal.SIGUSR1):  # as twistd does for its own log file
        def rotate(signum, frame):
            from twisted.internet import reactor
            reactor.callFromThread(logFile.rotate)
        signal.signal(signal.SIGUSR1, rotate)

"""
The servers of ``chatsvc-bench abuse``: ``twistd chatroom`` with its own
limits (the bench's command without its capacity options: flood control on,
nothing exempt), its settings as its own parser reads the bench's arguments,
the warnings it logs when it drops a client that does not read, and its
memory.
"""

import os
import re
import sys
import tempfile
import time

from twisted.internet.defer import Deferred

from chatsvc.bench.server import PROJECT_ROOT, ServerProcess, capacityArgs, serverCommand

# The line door's warning when a client that does not read is disconnected.
_OVERFLOW = re.compile(rb"Disconnecting <User ([^>\s]+)> from .*?: (\d+) bytes wait to be"
                       rb" sent, over the limit of (\d+)")


def defaultLimitsCommand(db, max_clients, extra=()):
    """The bench's server command without its capacity options: the server's own limits."""
    command = serverCommand(db, max_clients)
    capacity = capacityArgs()
    if capacity and command[-len(capacity):] == capacity:
        del command[-len(capacity):]
    return command + list(extra)


def serverSettings(extra):
    """The server's settings with these extra arguments, as its own parser reads them."""
    from chatsvc.tap import Options

    options = Options()
    options.parseOptions(["--listen", "tcp:0:interface=127.0.0.1",
                          "--db", os.path.join(tempfile.gettempdir(), "unused.sqlite3"),
                          *extra])
    return options.settings


class AbuseServer(ServerProcess):
    """A server with its default abuse limits, whose overflow warnings are noted."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.overflows = {}  # name -> (perf_counter when seen, queued bytes, limit)

    @property
    def command(self):
        return defaultLimitsCommand(self.db, self.max_clients, self.extra)

    def start(self, timeout=60.0) -> Deferred:
        # ServerProcess.start, with this command.
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (PROJECT_ROOT, env.get("PYTHONPATH")) if p)
        self._spawned = time.perf_counter()
        transport = self.reactor.spawnProcess(self, sys.executable, self.command,
                                              env=env, path=self.workdir)
        self.pid = transport.pid
        self._shutdownTrigger = self.reactor.addSystemEventTrigger("before", "shutdown", self.kill)
        call = self.reactor.callLater(timeout, self._startTimedOut, timeout)
        d = self._hosting
        d.addBoth(lambda result: (call.active() and call.cancel(), result)[1])
        return d

    def _lines(self, fd, data):
        whole = self._partial[fd] + data
        super()._lines(fd, data)
        end = whole.rfind(b"\n") + 1
        for match in _OVERFLOW.finditer(whole, 0, end):
            name = match.group(1).decode("utf-8", "replace")
            self.overflows.setdefault(
                name, (time.perf_counter(), int(match.group(2)), int(match.group(3))))


def memoryKiB(pid):
    """(VmRSS, VmHWM) of C{pid} in KiB: resident now and at its peak; None where unknown."""
    found = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    found[line[:5]] = int(line.split()[1])
    except OSError:
        pass
    return found.get("VmRSS"), found.get("VmHWM")

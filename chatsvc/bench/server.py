"""
The server under test: starting a ``twistd chatroom`` subprocess on a loopback
port and stopping it (only the process the bench started), finding the PID of
a server already running from its port, reading its RSS and CPU time from
/proc, and preloading a fresh database (history, or rooms) directly with
SQLite.
"""

import collections
import os
import re
import sqlite3
import sys
import time
import uuid

from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.protocol import ProcessProtocol

import chatsvc
from chatsvc.store.sqlite import SCHEMA

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(chatsvc.__file__)))
_HOSTING = re.compile(rb"Hosting at 127\.0\.0\.1:(\d+) \(")


class BenchError(Exception):
    """A run could not be done; the message says why, in one line."""


def serverCommand(db, max_clients, extra=(), python=sys.executable):
    return [python, "-c", "from twisted.scripts.twistd import run; run()",
            "-n", "--pidfile=", "chatroom", "--listen", "tcp:0:interface=127.0.0.1",
            "--db", db, "--max-clients", str(max_clients), *capacityArgs(), *extra]


def capacityArgs():
    """
    Options that make the server measure its capacity rather than its limits:
    no flood limit (when the server has one; this is the same chatsvc the
    server runs, so its options can be read here), and loopback, where every
    bench client comes from, exempt from the per-address limits.
    """
    from chatsvc.tap import Options

    names = {p[0] for p in Options.optParameters}
    args = ["--flood-rate", "0"] if "flood-rate" in names else []
    if hasattr(Options, "opt_exempt"):
        args += ["--exempt", "127.0.0.0/8"]
    return args


class ServerProcess(ProcessProtocol):
    """
    One ``twistd chatroom`` child. Its output is read all the time (a full pipe
    would stall the server); the last lines are kept for error messages and
    tracebacks are counted.
    """

    # The line that says where it listens for the bench's clients: the
    # native door's (the first "Hosting at" line; a subclass may want another).
    hosting = _HOSTING

    def __init__(self, reactor, db, max_clients, workdir, extra=()):
        self.reactor = reactor
        self.extra = list(extra)
        self.db = db
        self.max_clients = max_clients
        self.workdir = workdir
        self.port = None
        self.pid = None
        self.startup = None  # seconds from spawn to listening
        self.tail = collections.deque(maxlen=40)
        self.tracebacks = 0
        self.exited = None  # the exit status once ended
        self.stopping = False
        self._partial = {1: b"", 2: b""}
        self._hosting = Deferred()
        self._ended = Deferred()
        self._spawned = None

    def start(self, timeout=60.0) -> Deferred:
        """Spawn the server; fires with its port once it says where it is hosting."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (PROJECT_ROOT, env.get("PYTHONPATH")) if p)
        return self._spawn(sys.executable, self.argv(), env, self.workdir, timeout)

    def argv(self):
        """The server's command line."""
        return serverCommand(self.db, self.max_clients, self.extra)

    def _spawn(self, executable, argv, env, path, timeout) -> Deferred:
        """Start the process; fires with its port, or fails after C{timeout} seconds."""
        self._spawned = time.perf_counter()
        transport = self.reactor.spawnProcess(self, executable, argv, env=env, path=path)
        self.pid = transport.pid
        self._shutdownTrigger = self.reactor.addSystemEventTrigger(
            "before", "shutdown", self.kill)
        call = self.reactor.callLater(timeout, self._startTimedOut, timeout)
        d = self._hosting
        d.addBoth(lambda result: (call.active() and call.cancel(), result)[1])
        return d

    def _startTimedOut(self, timeout):
        if not self._hosting.called:
            self._hosting.errback(BenchError(
                f"the server did not say where it is hosting within {timeout:.0f} s;"
                f" its last output: {self.lastOutput()}"))
            self.kill()

    def _lines(self, fd, data):
        data = self._partial[fd] + data
        *lines, self._partial[fd] = data.split(b"\n")
        for line in lines:
            self.tail.append(line.decode("utf-8", "replace"))
            if b"Traceback (most recent call last)" in line:
                self.tracebacks += 1
            if self.port is None:
                match = self.hosting.search(line)
                if match:
                    self.port = int(match.group(1))
                    self.startup = time.perf_counter() - self._spawned
                    self._hosting.callback(self.port)

    def outReceived(self, data):
        self._lines(1, data)

    def errReceived(self, data):
        self._lines(2, data)

    def lastOutput(self, count=3):
        lines = [line for line in self.tail if line.strip()][-count:]
        return " | ".join(lines) if lines else "(nothing)"

    def processEnded(self, reason):
        self.exited = getattr(reason.value, "exitCode", None)
        self.reactor.removeSystemEventTrigger(self._shutdownTrigger)
        if not self._hosting.called:
            self._hosting.errback(BenchError(
                f"the server exited (status {self.exited}) before listening;"
                f" its last output: {self.lastOutput()}"))
        self._ended.callback(None)

    @property
    def running(self):
        return not self._ended.called

    def kill(self):
        """SIGKILL the server at once (the bench is going away)."""
        if self.running:
            try:
                self.transport.signalProcess("KILL")
            except ProcessExitedAlready:  # it ended meanwhile: nothing to kill
                pass

    def stop(self, grace=15.0) -> Deferred:
        """SIGTERM, then SIGKILL after C{grace} seconds; fires once it has exited."""
        self.stopping = True
        if not self.running:
            return _fired()
        self.transport.signalProcess("TERM")
        call = self.reactor.callLater(grace, self.kill)
        done = Deferred()

        def ended(_):
            if call.active():
                call.cancel()
            done.callback(None)

        self._ended.addCallback(ended)
        return done


def _fired():
    d = Deferred()
    d.callback(None)
    return d


# /proc readings (Linux)

def findPidByPort(port, host="127.0.0.1"):
    """The PID of the process listening on C{host}:C{port}, or None if it can't be seen."""
    inodes = set()
    wanted = {f"{_hexAddress(host)}:{port:04X}", f"00000000:{port:04X}"}
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1] in wanted and fields[3] == "0A":  # 0A: LISTEN
                    inodes.add(fields[9])
    except OSError:
        return None
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in targets:
                    return int(pid)
        except OSError:
            continue
    return None


def _hexAddress(host):
    """127.0.0.1 as /proc/net/tcp writes it (little-endian hex): 0100007F."""
    return "".join(f"{int(part):02X}" for part in reversed(host.split(".")))


def rssKiB(pid):
    """Resident set size of C{pid} in KiB (VmRSS), or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpuSeconds(pid):
    """
    (all, in the kernel) CPU seconds of process C{pid} so far, all its
    threads, or None. The total is the scheduler's own count, to the
    nanosecond, read from the process's CPU clock; /proc/PID/stat only has
    whole ticks (10 ms), which over a run of a second is several percent of
    a core. The kernel's share is known in ticks only.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    user, system = int(fields[11]) / tick, int(fields[12]) / tick
    try:
        total = time.clock_gettime(_processClock(pid))
    except (OSError, OverflowError, AttributeError):
        total = user + system
    return total, system


def _processClock(pid):
    """The clock id of C{pid}'s CPU time (MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED))."""
    return (~pid << 3) | 2


# Seconds by which a difference of two hostBusySeconds() may be off: two
# /proc/stat fields (idle, iowait), each counted in whole ticks.
HOST_RESOLUTION = 2 / os.sysconf("SC_CLK_TCK")


def hostBusySeconds(stat="/proc/stat", now=time.monotonic):
    """
    CPU seconds this machine has been busy so far (every core), or None: the
    cores' time since boot minus the time they were idle (or idle waiting for
    I/O).

    Not the sum of /proc/stat's busy fields (user, system, irq, ...): those
    count the timer ticks that found a core busy, and a core that wakes for
    less than a tick between two idle spells is mostly not found busy. An
    event loop answering small messages does exactly that, so the server's
    and the bench's own CPU time (counted to the nanosecond) came out above
    the whole machine's, and "other processes" negative. The idle time is
    measured on each entry to and exit from idle (NO_HZ), on the clock of
    C{now}, so what is not idle is busy, whoever the ticks found. Time the
    hypervisor stole from a busy core counts as busy: it is time not spent
    on the bench nor on the server.
    """
    try:
        with open(stat) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    cores = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    fields = lines[0].split()  # cpu user nice system idle iowait irq softirq steal ...
    if not cores or fields[0] != "cpu" or len(fields) < 6:
        return None
    idle = (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")
    return cores * now() - idle


# Preloading history

def preloadHistory(path, room, count, payload=64, batch=100_000):
    """
    Create a fresh database at C{path} with the server's schema, one room and
    C{count} messages, written directly (much faster than through the protocol).
    Returns the room's name. The server must not be running on it yet.
    """
    if os.path.exists(path):
        raise BenchError(f"{path} exists already; the preload wants a fresh database.")
    now = time.time()
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        connection.executescript(SCHEMA)
        with connection:
            connection.execute(
                "INSERT INTO rooms (id, name, key, created) VALUES (?, ?, ?, ?)",
                (1, room, room.casefold(), now - count - 60))
        filler = "x" * payload
        for start in range(1, count + 1, batch):
            end = min(count, start + batch - 1)
            rows = [(1, seq, uuid.uuid4().hex, f"hist{seq % 10}",
                     (f"history {seq} " + filler)[:payload], now - (count - seq) - 1)
                    for seq in range(start, end + 1)]
            with connection:
                connection.executemany(
                    "INSERT INTO messages (room_id, seq, uid, sender, text, ts)"
                    " VALUES (?, ?, ?, ?, ?, ?)", rows)
    finally:
        connection.close()
    return room


def preloadRooms(path, count, prefix, batch=100_000):
    """
    Create a fresh database at C{path} with the server's schema and C{count}
    empty rooms, C{prefix}1, C{prefix}2, ..., written directly: what a server
    that has been up a long while holds. The server must not be running on it yet.
    """
    if os.path.exists(path):
        raise BenchError(f"{path} exists already; the preload wants a fresh database.")
    created = time.time() - 60
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        connection.executescript(SCHEMA)
        for start in range(1, count + 1, batch):
            names = [f"{prefix}{i}" for i in range(start, min(count, start + batch - 1) + 1)]
            with connection:
                connection.executemany(
                    "INSERT INTO rooms (name, key, created) VALUES (?, ?, ?)",
                    [(name, name.casefold(), created) for name in names])
    finally:
        connection.close()


def countMessages(path):
    """Rows in the messages table of the database at C{path} (or a PostgreSQL URL)."""
    if path.startswith(("postgresql://", "postgres://")):
        from chatsvc.bench.postgres import countRows
        return countRows(path)
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    finally:
        connection.close()

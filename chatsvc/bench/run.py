"""
One run of a workload against one server: the clients it opened, its clock
and samples, and its deadline. Everything a run waits for is bounded by the
deadline: when it passes, every client connection is aborted, so every wait on
a line fails at once, and L{Run.race} tells the measuring phase to stop.
"""

import secrets
import sys
import time
from collections import namedtuple

from twisted.internet import endpoints
from twisted.internet.defer import (
    Deferred,
    DeferredSemaphore,
    FirstError,
    gatherResults,
)
from twisted.internet.protocol import Factory

from chatsvc.bench.client import BenchClient, Clock, Tally, newSamples
from chatsvc.bench.server import BenchError, cpuSeconds, hostBusySeconds

CONNECT_CONCURRENCY = 40  # below the server's listen backlog (50)

# One reading of CPU time, in seconds: when (monotonic), the server's (all
# and in the kernel; None if its PID is unknown), the bench's own (all its
# threads; its sink processes are added by the fanout) and the machine's
# busy time (every core; None if /proc/stat can't be read).
CpuReading = namedtuple("CpuReading", "wall server kernel bench host")


class Run:
    tallyClass = Tally  # what counts a native client's lines (a cluster run checks order too)

    def __init__(self, reactor, host, port, dialect, timeout, pid=None, runId=None):
        self.reactor = reactor
        self.host = host
        self.port = port
        self.pid = pid
        self.dialect = dialect
        self.token = secrets.token_hex(2)  # screen names unique to this run
        # In every room name: an operator tells the bench's rooms by it.
        self.runId = runId or newRunId()
        self.clients = []
        self.errors = []
        self.clock = Clock()
        self.deliveries = newSamples()
        self.echoes = newSamples()
        self.progress = lambda: ""
        self.expired = False
        self.timedOut = Deferred()
        self._deadline = reactor.callLater(timeout, self._expire, timeout)
        self.timeout = timeout
        self.sinks = 0  # --sinks: processes that count most fanout receivers' lines
        self.probes = 0  # --probes: receivers the bench keeps and times

    def name(self, role, index):
        return f"b{self.token}{role}{index}"

    def room(self, suffix=""):
        """A room of this run: C{bench-RUNID} and C{suffix}."""
        return f"bench-{self.runId}{suffix}"

    def _expire(self, timeout):
        self.expired = True
        self.errors.append(f"the run's timeout ({timeout:g} s) passed")
        self.timedOut.callback(None)
        for client in self.clients:
            if client.transport is not None:
                client.transport.abortConnection()

    async def connect(self, name) -> BenchClient:
        """A new connection that has chosen its screen name."""
        if self.expired:
            raise BenchError("the run's timeout passed")
        endpoint = endpoints.TCP4ClientEndpoint(self.reactor, self.host, self.portFor(name),
                                                timeout=30)
        client = await endpoint.connect(Factory.forProtocol(lambda: self.dialect.newClient(name)))
        self.clients.append(client)
        await self.dialect.login(client, name)
        return client

    def portFor(self, name):
        """The port the client named C{name} connects to (a cluster run has several)."""
        return self.port

    async def settle(self, room, clients):
        """After the barrier: what else must arrive before counting (a cluster's notices)."""

    def measuring(self, senders):
        """The senders are about to start: the measurement's epoch (a cluster run's cue)."""

    async def sync(self, client, room=None):
        """Make sure every line sent to C{client} before now has arrived."""
        client.send(self.dialect.sync())
        await client.expect(self.dialect.synced(room), "the answer to who")

    async def gather(self, coroutines, limit=CONNECT_CONCURRENCY):
        """Run coroutine functions, at most C{limit} at a time; their results in order."""
        semaphore = DeferredSemaphore(limit)
        ds = [semaphore.run(lambda f=f: Deferred.fromCoroutine(f())) for f in coroutines]
        try:
            return await gatherResults(ds, consumeErrors=True)
        except FirstError as e:
            e.subFailure.raiseException()

    async def race(self, d) -> bool:
        """Wait for C{d} or the deadline: True if C{d} fired first."""
        if self.expired:
            return False
        winner = Deferred()

        def fired(result):
            if not winner.called:
                winner.callback(True)
            return result

        d.addBoth(fired)
        self.timedOut.addCallback(lambda _: winner.called or winner.callback(False))
        return await winner

    def cpu(self) -> "CpuReading":
        """CPU seconds used so far by the server, the bench and the machine."""
        server = cpuSeconds(self.pid) if self.pid else None
        now = time.monotonic()
        return CpuReading(now, None if server is None else server[0],
                          None if server is None else server[1],
                          time.process_time(), hostBusySeconds(now=lambda: now))

    async def close(self):
        """Close every client, wait (bounded) until they are gone, stop the deadline."""
        if self._deadline.active():
            self._deadline.cancel()
        for client in self.clients:
            if client.transport is not None and client.transport.connected:
                client.transport.loseConnection()
        waiting = [c.lost for c in self.clients if not c.lost.called]
        if waiting:
            all_lost = gatherResults(waiting)
            call = self.reactor.callLater(10, lambda: [
                c.transport.abortConnection() for c in self.clients if not c.lost.called])
            await all_lost
            if call.active():
                call.cancel()


def newRunId(index=1, invocation=None):
    """C{INVOCATION-rINDEX}: six hex digits for one chatsvc-bench command, and its repeat."""
    return f"{invocation or secrets.token_hex(3)}-r{index}"


class Runner:
    """What runs a workload's repeats: its arguments, where its table and its progress go."""

    def __init__(self, reactor, args, workload, out=None, err=None):
        self.reactor = reactor
        self.args = args
        self.workload = workload
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.invocation = secrets.token_hex(3)  # in the run ids, so in the rooms' names

    def runId(self, index):
        return newRunId(index, self.invocation)

    def say(self, text):
        """A progress line on stderr (none with --quiet)."""
        if not self.args.quiet:
            self.warn(text)

    def warn(self, text):
        """A line on stderr that --quiet does not silence."""
        print(f"chatsvc-bench {self.workload.name}: {text}", file=self.err, flush=True)

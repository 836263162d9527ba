"""
The bench's own redis-server (``--nodes``): on a spare loopback port, never
6379 (a Redis there may be someone else's), nothing saved, so that killing
it loses nothing but what it held in flight. Only this process is ever
killed, through the transport of the child the bench spawned.
"""

import collections
import shutil
import socket

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.protocol import ProcessProtocol

from chatsvc.bench.server import BenchError

SHARED_PORT = 6379  # the usual Redis: never the bench's
READY = b"Ready to accept connections"


def spareLoopbackPort() -> int:
    """A port nothing listens on at 127.0.0.1 now (the kernel's choice, not 6379)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port != SHARED_PORT:
            return port


def findRedisServer():
    return shutil.which("redis-server")


class RedisProcess(ProcessProtocol):
    """
    One redis-server child on 127.0.0.1:C{port}. L{start} fires once it
    accepts connections; L{kill} SIGKILLs it and fires once it has exited;
    L{start} again brings it back on the same port (what the nodes reconnect to).
    """

    def __init__(self, reactor, workdir, port=None, binary=None):
        self.reactor = reactor
        self.workdir = workdir
        self.port = port or spareLoopbackPort()
        if self.port == SHARED_PORT:
            raise BenchError("the bench's redis-server never runs on 6379, the shared one's port")
        self.binary = binary or findRedisServer()
        self.pid = None
        self.tail = collections.deque(maxlen=20)
        self._output = b""
        self._ready = None
        self._ended = succeed(None)
        self._trigger = None

    def argv(self):
        return [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--dir", self.workdir]

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    @property
    def running(self):
        return self.pid is not None

    def start(self, timeout=20.0) -> Deferred:
        if self.binary is None:
            raise BenchError("redis-server is not installed (Debian: apt-get install"
                             " redis-server); --nodes starts one of its own")
        self._output = b""
        self._ready, self._ended = Deferred(), Deferred()
        transport = self.reactor.spawnProcess(self, self.binary, self.argv(), env={},
                                              path=self.workdir)
        self.pid = transport.pid
        self._trigger = self.reactor.addSystemEventTrigger("before", "shutdown", self.kill)
        call = self.reactor.callLater(timeout, self._timedOut, timeout)
        d = self._ready
        d.addBoth(lambda result: (call.active() and call.cancel(), result)[1])
        return d

    def _timedOut(self, timeout):
        self._fail(f"redis-server did not accept connections within {timeout:.0f} s")
        self.kill()

    def _fail(self, why):
        if self._ready is not None:
            d, self._ready = self._ready, None
            d.errback(BenchError(f"{why}; its last output: {self.lastOutput()}"))

    def outReceived(self, data):
        self._output = (self._output + data)[-4096:]
        *lines, _ = data.split(b"\n")
        self.tail.extend(line.decode("utf-8", "replace") for line in lines if line.strip())
        if self._ready is not None and READY in self._output:
            d, self._ready = self._ready, None
            d.callback(self.port)

    errReceived = outReceived

    def lastOutput(self, count=2):
        return " | ".join(list(self.tail)[-count:]) or "(nothing)"

    def processEnded(self, reason):
        self.pid = None
        self.reactor.removeSystemEventTrigger(self._trigger)
        self._fail(f"redis-server on port {self.port} exited")
        self._ended.callback(None)

    def kill(self) -> Deferred:
        """SIGKILL it (a crash: no shutdown, no goodbye to its clients); fires once it exited."""
        ended = self._ended
        if self.running:
            try:
                self.transport.signalProcess("KILL")
            except ProcessExitedAlready:
                pass
        return ended

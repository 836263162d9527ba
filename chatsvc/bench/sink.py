"""
Sink processes (``--sinks N``, default 1): helpers that take over most of the
fanout receivers once they have joined and synced, and count their lines in
bulk, so that the load generator is not what sets the pace.

A receiver read at once costs the bench a wakeup, a ``recv()`` and some Python
for every chunk the server sends, which is several microseconds: one Python
process reading 200 receivers that way tops out near 200,000 lines/s, far
below what a C server such as ngircd delivers. A sink instead reads each of
its sockets every L{READ_EVERY} seconds (a tenth of them every tenth of
that: read all at once, the burst delayed the server's writes enough to
double chatsvc's p99 at R=200), whatever has piled up, and only
counts: complete lines, and among them the bench's messages (their dialect's
C{tag}, e.g. ``> @`` natively). So one ``recv()`` takes many lines and a sink
costs little whatever the rate. It does not time what it reads (a copy may
wait up to L{READ_EVERY} for it): delivery latency comes from the *probes*,
the receivers the bench keeps and reads at once (``--probes``), and from the
senders' echoes; so does the end of the run, since the probes get the last
message in the same broadcast. Reading late changes nothing for the server:
the kernel buffers what it sent (some KiB per receiver between two reads).

The bench spawns ``python sink.py`` (this file, run as a script: it imports
only the standard library) with a SOCK_SEQPACKET socket as fd 3, and sends it
a JSON header and the receivers' file descriptors (SCM_RIGHTS). The sink
answers an IRC ``PING`` with ``PONG`` when told to, and when every socket has
its messages (or at its deadline, or when the bench closes fd 3) writes one
JSON line to stdout and exits.
"""

import json
import os
import select
import socket
import sys
import time
from collections import namedtuple

BATCH = 200  # file descriptors per message (the kernel takes at most 253)
# Seconds between two reads of a socket. Each read costs the machine the
# bench shares with the server: at 10 ms chatsvc delivered ~25 % fewer lines/s
# and ngircd ~10 % fewer than at 50 ms (R=200). At 50 ms and 900,000 lines/s
# a receiver holds ~30 KB between two reads, well inside its receive buffer.
READ_EVERY = 0.05
GROUPS = 10

Totals = namedtuple("Totals", "lines messages last cpu_s pings")
NOTHING = Totals(0, 0, 0, 0.0, 0)  # what no sinks counted


def _serve(control):
    sockets = {}
    header = None
    while True:
        message, fds, _flags, _address = socket.recv_fds(control, 65536, BATCH + 10)
        if not message:
            return 1
        header = json.loads(message)
        for fd in fds:
            sock = socket.socket(fileno=fd)
            sock.setblocking(False)
            sockets[fd] = sock
        if not header["more"]:
            break
    epoch = header["epoch_ns"]
    expected = header["expected"]
    tag = header["tag"].encode("latin-1")
    answer = header["answer_ping"]
    deadline = time.monotonic() + header["timeout_s"]
    # The sockets are read in GROUPS turns, one group a turn, so that the
    # reading is spread over the interval instead of coming in one burst.
    order = list(sockets)
    groups = [order[i::GROUPS] for i in range(GROUPS)]
    control.setblocking(False)
    poller = select.epoll()
    poller.register(control.fileno(), select.EPOLLIN)
    tails = dict.fromkeys(sockets, b"")
    counts = dict.fromkeys(sockets, 0)
    lines = messages = others = pings = last = closed = 0
    sample = []
    waiting = len(sockets)
    start = time.process_time()  # to the nanosecond: os.times() counts 10 ms ticks
    os.write(1, b"ready\n")
    turn = 0
    while waiting:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        # The pause between two turns; the bench closing fd 3 ends the run.
        if poller.poll(min(left, READ_EVERY / GROUPS)):
            break
        now = (time.perf_counter_ns() - epoch) // 1000
        group = groups[turn % GROUPS]
        turn += 1
        for fd in list(group):
            try:
                data = sockets[fd].recv(1 << 20)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:  # closed by the server before all its lines came
                group.remove(fd)
                waiting -= 1
                closed += 1
                continue
            if tails[fd]:
                data = tails[fd] + data
            end = data.rfind(b"\n") + 1
            tails[fd] = data[end:]
            if not end:
                continue
            found = data.count(tag, 0, end)
            if found != data.count(b"\n", 0, end):  # not only bench messages
                for line in data[:end].split(b"\n"):
                    line = line.rstrip(b"\r")
                    if not line or tag in line:
                        continue
                    if answer and line.startswith(b"PING"):
                        pings += 1
                        sockets[fd].send(b"PONG" + line[4:] + b"\r\n")
                    else:
                        others += 1
                        if len(sample) < 3:
                            sample.append(line.decode("utf-8", "replace"))
            if found:
                last = now
                lines += found
                messages += found
                counts[fd] += found
                if counts[fd] >= expected:
                    group.remove(fd)
                    waiting -= 1
    cpu = time.process_time() - start
    result = {"lines": lines, "messages": messages, "last": last, "others": others,
              "sample": sample, "pings": pings, "closed": closed,
              "cpu_s": cpu,
              "done": waiting == 0}
    out = os.fdopen(1, "wb")
    out.write(json.dumps(result).encode("ascii") + b"\n")
    out.flush()
    return 0


# The bench's side (in the bench's process)

class SinkProcess:
    """One sink: the child process, its control socket, and its results."""

    def __init__(self, reactor, clients, expected, run):
        from twisted.internet.defer import Deferred
        from twisted.internet.protocol import ProcessProtocol

        self.clients = clients
        self.ok = False
        self.ready = Deferred()
        self.done = Deferred()  # fires with the result dict
        self.result = None
        self._out = bytearray()
        self._err = []
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.control = parent
        sink = self

        class Protocol(ProcessProtocol):
            def outReceived(self, data):
                sink._out += data
                if not sink.ready.called and b"\n" in sink._out:
                    line, _, rest = bytes(sink._out).partition(b"\n")
                    sink._out = bytearray(rest)
                    sink.ok = line == b"ready"
                    sink.ready.callback(sink.ok)

            def errReceived(self, data):
                sink._err.append(data)

            def processEnded(self, reason):
                sink._ended()

        self.protocol = Protocol()
        self.process = reactor.spawnProcess(
            self.protocol, sys.executable, [sys.executable, os.path.abspath(__file__)],
            env=dict(os.environ), childFDs={0: "w", 1: "r", 2: "r", 3: child.fileno()})
        child.close()
        for client in clients:
            client.transport.stopReading()  # from now on the sink reads them
        fds = [client.transport.fileno() for client in clients]
        header = {"epoch_ns": run.clock.epoch, "expected": expected,
                  "tag": run.dialect.tag.decode("latin-1"),
                  "answer_ping": run.dialect.name == "irc",
                  "timeout_s": max(1.0, run.timeout)}
        for start in range(0, len(fds), BATCH):
            header["more"] = start + BATCH < len(fds)
            socket.send_fds(parent, [json.dumps(header).encode("ascii")],
                            fds[start:start + BATCH])

    def stop(self):
        """The run is over (its deadline): the sink reports what it has and exits."""
        try:
            self.control.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _ended(self):
        self.control.close()
        if not self.ready.called:
            self.ready.callback(False)
        header, _, _rest = bytes(self._out).partition(b"\n")
        try:
            result = json.loads(header)
        except ValueError:
            error = b"".join(self._err).decode("utf-8", "replace").strip().splitlines()
            result = {"error": "a sink process failed: " + (error[-1] if error else "no output")}
        self.result = result
        self.done.callback(result)


async def offload(reactor, run, clients, expected, count):
    """
    Hand C{clients} (receivers that have joined and synced, each expecting
    C{expected} bench messages) over to C{count} sink processes; returns the
    sinks once each is reading.
    """
    from twisted.internet.defer import gatherResults

    from chatsvc.bench.server import BenchError

    groups = [clients[i::count] for i in range(count)]
    sinks = [SinkProcess(reactor, group, expected, run) for group in groups if group]
    run.timedOut.addCallback(lambda _: [s.stop() for s in sinks])
    await gatherResults([s.ready for s in sinks])
    failed = [s for s in sinks if not s.ok]
    if failed:
        for s in sinks:
            s.stop()
        await failed[0].done
        raise BenchError(failed[0].result.get("error", "a sink process did not start"))
    return sinks


def split(run, receivers, pinned=()):
    """
    (kept, moved): the receivers the bench keeps, reads at once and times
    (the probes: C{run.probes} of them spread evenly over the join order, so
    over the order in which the server writes to them, and the C{pinned} ones,
    by id), and those its sinks count (none without sinks).
    """
    if not run.sinks or len(receivers) <= run.probes:
        return list(receivers), []
    # The first and the last in join order among them: the server writes to
    # the last one last, so the run's end is seen there.
    last = len(receivers) - 1
    spread = run.probes - 1
    keep = {id(receivers[round(i * last / spread) if spread else 0])
            for i in range(run.probes)} | set(pinned)
    kept = [c for c in receivers if id(c) in keep]
    moved = [c for c in receivers if id(c) not in keep]
    return kept, moved


async def collect(run, sinks):
    """
    Wait for the sinks to end; their L{Totals}. Their troubles join the
    run's errors.
    """
    from twisted.internet.defer import gatherResults

    lines = messages = last = pings = 0
    cpu = 0.0
    for result in await gatherResults([s.done for s in sinks]):
        if "error" in result:
            run.errors.append(result["error"])
            continue
        lines += result["lines"]
        messages += result["messages"]
        last = max(last, result["last"])
        cpu += result["cpu_s"]
        pings += result["pings"]
        if result.get("closed"):
            run.errors.append(f"the server closed {result['closed']} receivers' connections"
                              " before they had every message")
        if result["others"]:
            run.errors.append(f"{result['others']} lines a sink received were not bench"
                              f" messages, e.g. {' | '.join(result['sample'])}")
    return Totals(lines, messages, last, cpu, pings)


if __name__ == "__main__":
    sys.exit(_serve(socket.socket(fileno=3)))

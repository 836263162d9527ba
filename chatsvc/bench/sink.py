"""
Sink processes (``--sinks N``): helpers that take over some of the fanout
receivers' sockets once they have joined and synced, so that counting lines
is not limited to the one core of the bench's own process.

A fanout receiver is cheap in Python but each ``recv()`` on loopback costs a
few microseconds in the kernel: past about 250,000 lines/s one process spends
its whole core there, and the bench, not the server, sets the pace. With N
sinks the receivers are shared out over N + 1 processes; senders (and, over
IRC, the witnesses that release the senders' windows) stay in the bench. On a
machine with only two cores, where the server needs one of them, a third busy
process can cost more than it gives: docs/performance.rst shows both ways.

The bench spawns ``python sink.py`` (this file, run as a script: it imports
only the standard library) with a SOCK_SEQPACKET socket as fd 3, and sends it
a JSON header and the receivers' file descriptors (SCM_RIGHTS). The sink reads
with its own epoll loop exactly as L{chatsvc.bench.client.Tally} counts (the
same clock: CLOCK_MONOTONIC, the run's epoch), answers ``PING`` with ``PONG``
when told to, and when every socket has its messages (or at its deadline, or
when the bench closes fd 3) writes one JSON line and the latencies (int64
microseconds) to stdout and exits.
"""

import json
import os
import re
import select
import socket
import sys
import time
from array import array
from collections import namedtuple

BATCH = 200  # file descriptors per message (the kernel takes at most 253)

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
    marker = re.compile(header["marker"].encode("latin-1"), re.MULTILINE)
    find, match = marker.findall, marker.match
    answer = header["answer_ping"]
    deadline = time.monotonic() + header["timeout_s"]
    poller = select.epoll()
    for fd in sockets:
        poller.register(fd, select.EPOLLIN)
    poller.register(control.fileno(), select.EPOLLIN)
    tails = dict.fromkeys(sockets, b"")
    counts = dict.fromkeys(sockets, 0)
    latencies = array("q")
    append = latencies.append
    lines = messages = others = pings = last = 0
    sample = []
    waiting = len(sockets)
    start = os.times()
    os.write(1, b"ready\n")
    stopped = False
    while waiting and not stopped:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for fd, _events in poller.poll(min(left, 1.0)):
            if fd == control.fileno():
                stopped = True  # the bench closed fd 3: the run is over
                break
            try:
                data = sockets[fd].recv(262144)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            now = (time.perf_counter_ns() - epoch) // 1000
            if not data:
                poller.unregister(fd)
                waiting -= 1
                continue
            if b"\n" not in data:
                tails[fd] += data
                continue
            if tails[fd]:
                data = tails[fd] + data
            end = data.rfind(b"\n") + 1
            tails[fd] = data[end:]
            found = find(data, 0, end)
            if len(found) != data.count(b"\n", 0, end):
                for line in data[:end].split(b"\n"):
                    line = line.rstrip(b"\r")
                    if not line or match(line):
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
                lines += len(found)
                messages += len(found)
                for _sid, _seq, sent in found:
                    append(now - int(sent))
                counts[fd] += len(found)
                if counts[fd] >= expected:
                    poller.unregister(fd)
                    waiting -= 1
    times = os.times()
    result = {"lines": lines, "messages": messages, "last": last, "others": others,
              "sample": sample, "pings": pings,
              "cpu_s": times.user + times.system - start.user - start.system,
              "done": waiting == 0, "samples": len(latencies)}
    out = os.fdopen(1, "wb")
    out.write(json.dumps(result).encode("ascii") + b"\n")
    out.write(latencies.tobytes())
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
        self.done = Deferred()  # fires with the result dict (and "latencies")
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
                  "marker": run.dialect.marker.pattern.decode("latin-1"),
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
        header, _, rest = bytes(self._out).partition(b"\n")
        try:
            result = json.loads(header)
        except ValueError:
            error = b"".join(self._err).decode("utf-8", "replace").strip().splitlines()
            result = {"error": "a sink process failed: " + (error[-1] if error else "no output")}
        else:
            latencies = array("q")
            latencies.frombytes(rest[:result["samples"] * 8])
            result["latencies"] = latencies
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
    (kept, moved): the receivers the bench keeps reading and those its sinks
    take (none without --sinks). Each of the sinks + 1 processes gets about
    the same share; the C{pinned} ones (by id) stay in the bench.
    """
    count = getattr(run, "sinks", 0)
    movable = [c for c in receivers if id(c) not in pinned]
    share = round(len(receivers) * count / (count + 1)) if count else 0
    moved = movable[len(movable) - min(share, len(movable)):] if share else []
    gone = {id(c) for c in moved}
    kept = [c for c in receivers if id(c) not in gone]
    return kept, moved


async def collect(run, sinks):
    """
    Wait for the sinks to end; their L{Totals}. Their latencies join the
    run's deliveries; their troubles its errors.
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
        run.deliveries.extend(result["latencies"])
        if result["others"]:
            run.errors.append(f"{result['others']} lines a sink received were not bench"
                              f" messages, e.g. {' | '.join(result['sample'])}")
    return Totals(lines, messages, last, cpu, pings)


if __name__ == "__main__":
    sys.exit(_serve(socket.socket(fileno=3)))

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
C{tag}, e.g. ``> @`` natively); over WebSocket (``--protocol web``), complete
frames, each one IRC line (L{_frames}). So one ``recv()`` takes many lines
and a sink costs little whatever the rate. It does not time what it reads (a copy may
wait up to L{READ_EVERY} for it): delivery latency comes from the *probes*,
the receivers the bench keeps and reads at once (``--probes``), and from the
senders' echoes; so does the end of the run, since the probes get the last
message in the same broadcast. Reading late changes nothing for the server:
the kernel buffers what it sent (some KiB per receiver between two reads).

The bench spawns ``python sink.py`` (this file, run as a script: it imports
only the standard library) with a SOCK_SEQPACKET socket as fd 3, and sends it
a JSON header and the receivers' file descriptors (SCM_RIGHTS). The sink
answers an IRC ``PING`` with ``PONG`` when told to (over WebSocket, and a
WebSocket ping with a pong, each a masked frame), and when every socket has
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

Totals = namedtuple("Totals", "lines messages last cpu_s pings ws_pings")
NOTHING = Totals(0, 0, 0, 0.0, 0, 0)  # what no sinks counted


def _frames(data, every=False):
    """
    The WebSocket frames from the server at the start of C{data}: (end, texts,
    spans), where C{end} is where the last whole frame ends, C{texts} the
    number of whole unfragmented text frames (opcode 1 with FIN: each one IRC
    line), and C{spans} the (first byte, payload start, payload end) of every
    other frame, or with C{every} of every frame.
    """
    i, n, texts, spans = 0, len(data), 0, []
    while i + 2 <= n:
        first, size = data[i], data[i + 1]
        head = 2
        if size & 0x80:  # masked: a server does not, but it is still a frame
            head += 4
        size &= 0x7F
        if size == 126:
            if i + 4 > n:
                break
            size, head = (data[i + 2] << 8) | data[i + 3], head + 2
        elif size == 127:
            if i + 10 > n:
                break
            size, head = int.from_bytes(data[i + 2:i + 10], "big"), head + 8
        stop = i + head + size
        if stop > n:
            break
        if first == 0x81:
            texts += 1
            if every:
                spans.append((first, i + head, stop))
        else:
            spans.append((first, i + head, stop))
        i = stop
    return i, texts, spans


LINE, WS_PING, WS_CLOSE = "line", "ping", "close"  # what _oddLines and _oddFrames find


def _oddLines(data, end, tag):
    """The lines of C{data[:end]} that are not bench messages: (LINE, line) each."""
    for line in data[:end].split(b"\n"):
        line = line.rstrip(b"\r")
        if line and tag not in line:
            yield LINE, line


def _oddFrames(data, end, tag, spans, everyText):
    """
    The frames of C{data[:end]} that are not bench messages: (LINE, text)
    for a text frame, (WS_PING, payload) for a ping, (WS_CLOSE, payload) for
    a close; a pong is nothing, any other frame a LINE. C{spans} are the
    frames L{_frames} gave apart; with C{everyText}, the text frames are
    looked at too (some lack the bench's tag).
    """
    if everyText:
        spans = _frames(data[:end], every=True)[2]
    for first, start, stop in spans:
        payload = data[start:stop]
        if first == 0x81:
            if tag not in payload:
                yield LINE, payload
        elif first == 0x89:
            yield WS_PING, payload
        elif first == 0x88:
            yield WS_CLOSE, payload
        elif first != 0x8A:
            yield LINE, payload


def clientFrame(opcode, payload):
    """A final WebSocket frame as a client sends it (masked, RFC 6455 5.3)."""
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, 0x80 | size))
    else:
        header = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    key = os.urandom(4)
    mask = (key * (size // 4 + 1))[:size]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(size, "big")
    return header + key + masked


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
    websocket = header.get("framing") == "websocket"
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
    lines = messages = others = pings = wsPings = last = closed = 0
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
            if websocket:
                end, complete, spans = _frames(data)
            else:
                end = data.rfind(b"\n") + 1
                complete, spans = data.count(b"\n", 0, end), ()
            tails[fd] = data[end:]
            if not end:
                continue
            found = data.count(tag, 0, end)
            if found != complete or spans:  # not only bench messages
                odd = (_oddFrames(data, end, tag, spans, found != complete) if websocket
                       else _oddLines(data, end, tag))
                for kind, payload in odd:
                    if kind == LINE and answer and payload.startswith(b"PING"):
                        pings += 1
                        pong = b"PONG" + payload[4:]
                        sockets[fd].send(clientFrame(1, pong) if websocket else pong + b"\r\n")
                        continue
                    if kind == WS_PING:
                        wsPings += 1
                        sockets[fd].send(clientFrame(10, payload))
                        continue
                    if kind == WS_CLOSE:  # then the connection's end, counted as closed
                        payload = b"(the server closed the WebSocket)"
                    others += 1
                    if len(sample) < 3:
                        sample.append(payload.decode("utf-8", "replace"))
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
              "sample": sample, "pings": pings, "ws_pings": wsPings, "closed": closed,
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
                  "answer_ping": run.dialect.name in ("irc", "web"),
                  "framing": getattr(run.dialect, "framing", "lines"),
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

    lines = messages = last = pings = wsPings = 0
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
        wsPings += result.get("ws_pings", 0)
        if result.get("closed"):
            run.errors.append(f"the server closed {result['closed']} receivers' connections"
                              " before they had every message")
        if result["others"]:
            run.errors.append(f"{result['others']} lines a sink received were not bench"
                              f" messages, e.g. {' | '.join(result['sample'])}")
    return Totals(lines, messages, last, cpu, pings, wsPings)


if __name__ == "__main__":
    sys.exit(_serve(socket.socket(fileno=3)))

"""
IRC for chatsvc-bench: the IRC wire dialect (``--protocol irc``), the fanout
workload as IRC allows it, and ngircd started by the bench (``--irc-server
ngircd``), so that a C server can be measured side by side with chatsvc in one
invocation (``--servers chatsvc,ngircd``) with the same workload.

What differs from the native protocol, and how the numbers are kept comparable:

 - Login is ``NICK``/``USER``; a client is logged in at ``001`` (RPL_WELCOME).
   Joining is ``JOIN #ROOM`` and is done at ``366`` (end of NAMES). The sync
   barrier (the native ``who``) is ``PING :TOKEN``, answered by ``PONG``.
   A ``PING`` from the server is answered with ``PONG`` at any time.
 - A message is ``PRIVMSG #ROOM :TEXT``; TEXT is the same bench marker padded
   to the same payload as in the native run.
 - An IRC server does not send a sender its own message. So each sender's
   window is released by its *witness*: one fixed other client in the room
   (sender k's witness is receiver k, cycling over the receivers; with no
   receivers, the next sender). The "echo" latency of an IRC run is the
   witness's copy; the delivery latency is every copy, as in the native run.
 - Delivered lines are the bench's ``PRIVMSG`` lines every client received:
   (R+S-1)*S*M when nothing is lost, against (R+S)*S*M natively, where the
   sender's echo is one of the lines the server delivers.

``join`` and ``store`` measure stored history, which IRC does not have;
``fanout`` and ``connections`` apply.
"""

import collections
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

from twisted.internet.defer import Deferred

from chatsvc.bench import report
from chatsvc.bench.client import (
    DIALECTS,
    BenchClient,
    Native,
    Tally,
)
from chatsvc.bench.server import BenchError, ServerProcess, serverCommand
from chatsvc.bench.workloads import (
    Connections,
    Counting,
    Fanout,
    _measureSending,
)

SYNC_TOKEN = "chatsvc-bench-sync"
MAX_PAYLOAD = 400  # an IRC line is at most 512 bytes with its prefix and CR LF
SERVERS = ("chatsvc", "ngircd")


def _numeric(line):
    """The command or numeric of a server line (``:prefix CMD ...``), or ''."""
    parts = line.split(" ", 2)
    if line.startswith(":"):
        return parts[1] if len(parts) > 1 else ""
    return parts[0]


class IRC:
    """The IRC client protocol (RFC 2812), as much of it as the bench needs."""

    name = "irc"
    # A channel message as a server relays it: ":nick!user@host PRIVMSG #room :text".
    marker = re.compile(rb"^:[^ \n]+ PRIVMSG [^ \n]+ :@(\d+)\.(\d+)\.(\d+)", re.MULTILINE)
    tag = b" :@"  # PRIVMSG #ROOM :@SID.SEQ.T...

    def __init__(self):
        self.channel = None
        self._prefix = None

    def newClient(self, name):
        return IrcClient(self, name)

    async def login(self, client, name):
        client.send(f"NICK {name}\r\nUSER {name} 0 * :chatsvc-bench\r\n".encode("ascii"))
        await client.expect(lambda line: _numeric(line) == "001", f"the welcome (001) of {name}")

    def channelOf(self, room):
        return room if room[:1] in "#&+" else f"#{room}"

    def _use(self, room):
        channel = self.channelOf(room)
        if self.channel not in (None, channel):
            raise BenchError(f"the IRC dialect sends to one channel per run ({self.channel});"
                             f" not also {channel}")
        self.channel = channel
        self._prefix = f"PRIVMSG {channel} :".encode("ascii")
        return channel

    def create(self, room):
        return f"JOIN {self._use(room)}"  # the first JOIN creates a channel

    def join(self, room):
        return f"JOIN {self._use(room)}"

    def joined(self, room):
        channel = self.channelOf(room)
        return lambda line: _numeric(line) == "366" and line.split(" ", 4)[3:4] == [channel]

    def leave(self):
        return f"PART {self.channel}"

    def left(self, room):
        channel = self.channelOf(room)
        return lambda line: _numeric(line) == "PART" and channel in line.split(" ")[2:3]

    def sync(self):
        return f"PING :{SYNC_TOKEN}"

    def synced(self, room=None):
        return lambda line: _numeric(line) == "PONG" and line.endswith(SYNC_TOKEN)

    def say(self, text: bytes) -> bytes:
        return self._prefix + text + b"\r\n"

    def isError(self, line):
        code = _numeric(line)
        if code == "ERROR":
            return True
        # 4xx and 5xx numerics are errors; 422 (no MOTD) is only information.
        return len(code) == 3 and code.isdigit() and code[0] in "45" and code != "422"


DIALECTS["irc"] = IRC
report.PROTOCOL_LABELS["irc"] = {
    "messages": "messages said (each reached its witness)",
    "msgs_per_s": "message rate (each reached its witness), messages/s",
    "echo_p50_ms": "witness latency p50 (not an echo), ms",
    "echo_p99_ms": "witness latency p99, ms",
    "echo_max_ms": "witness latency max, ms",
}


class IrcClient(BenchClient):
    """A L{BenchClient} that answers the server's PING while it works line by line."""

    pings = 0

    def send(self, line):
        if isinstance(line, str):
            line = line.encode("utf-8") + b"\r\n"
        self.transport.write(line)

    def _drain(self):
        if any(line.startswith("PING") for line in self._pending):
            kept = collections.deque()
            for line in self._pending:
                if line.startswith("PING"):
                    self.pings += 1
                    self.send("PONG" + line[4:])
                else:
                    kept.append(line)
            self._pending = kept
        super()._drain()


class IrcTally(Tally):
    """
    What one IRC client received while counting. Delivered lines are the
    bench's PRIVMSG lines; a PING is answered and not counted; any other line
    is counted apart (an error of the run). The senders whose witness this
    client is (C{witnessed}: sender number as bytes -> L{Sender}) are told
    when their message arrives here.
    """

    def __init__(self, run, client, expected, witnessed):
        super().__init__(run, expected)
        self.client = client
        self.witnessed = witnessed
        self.match = run.dialect.marker.match
        self.pings = 0
        self.others = 0
        self.sample = collections.deque(maxlen=3)

    def feed(self, data):
        now = self.clock()
        if b"\n" not in data:
            self.tail += data
            return
        if self.tail:
            data = self.tail + data
        end = data.rfind(b"\n") + 1
        self.tail = data[end:]
        found = self.find(data, 0, end)
        if len(found) != data.count(b"\n", 0, end):
            self._others(data[:end])
        if found:
            self.last = now
            self.lines += len(found)
            self.messages += len(found)
            append = self.deliveries.append
            witnessed = self.witnessed
            for sid, seq, sent in found:
                latency = now - int(sent)
                append(latency)
                sender = witnessed.get(sid)
                if sender is not None:
                    sender.echoed(int(seq), latency)
        if self.messages >= self.expected and not self.done.called:
            self.done.callback(None)

    def _others(self, chunk):
        for line in chunk.split(b"\n"):
            line = line.rstrip(b"\r")
            if not line or self.match(line):
                continue
            if line.startswith(b"PING"):
                self.pings += 1
                self.client.transport.write(b"PONG" + line[4:] + b"\r\n")
            else:
                self.others += 1
                self.sample.append(line.decode("utf-8", "replace"))


class IrcFanout(Fanout):
    """L{Fanout} over IRC: windows released by a witness, no sender echo."""

    def params(self):
        return {**super().params(), "protocol": "irc", "ack": "witness"}

    async def measureSending(self, run, senderClients, receivers):
        return await _measureSending(run, senderClients, receivers, self.messages,
                                     self.window, self.payload, fanout=True,
                                     counting=IrcCounting)


class IrcCounting(Counting):
    """
    Counting over IRC: a sender gets every message but its own, and its
    window is released by its witness (which stays in the bench); a PING is
    answered and not counted, any other line is an error of the run.
    """

    acks = "witnessed"

    def __init__(self, run, senders, senderClients, receivers, fanout):
        super().__init__(run, senders, senderClients, receivers, fanout)
        everyone = senderClients + receivers
        self.expectedLines = self.total * (len(everyone) - 1)
        self.witnessed = {id(client): {} for client in everyone}
        for sender in senders:
            if receivers:
                witness = receivers[(sender.sid - 1) % len(receivers)]
            else:
                witness = senderClients[sender.sid % len(senderClients)]
            self.witnessed[id(witness)][b"%d" % sender.sid] = sender
        self.pinned = {id(c) for c in everyone if self.witnessed[id(c)]}

    def startSenders(self, senderClients):
        mine = self.senders[0].count
        for client in senderClients:
            client.startCounting(IrcTally(self.run, client, self.total - mine,
                                          self.witnessed[id(client)]))

    def startReceiver(self, client):
        client.startCounting(IrcTally(self.run, client, self.total,
                                      self.witnessed[id(client)]))

    def check(self, tallies, far, lines):
        others = sum(t.others for t in tallies)
        if others:
            sample = [line for t in tallies for line in t.sample][:3]
            self.run.errors.append(f"{others} received lines were neither bench messages nor"
                                   f" PINGs, e.g. {' | '.join(sample)}")

    def more(self, tallies, far, everyone):
        return {"pings_answered": sum(t.pings for t in tallies) + far.pings + sum(
            getattr(c, "pings", 0) for c in everyone)}


def ircWorkload(workload):
    """The workload as it runs over IRC (fanout and connections apply)."""
    if isinstance(workload, Fanout):
        return IrcFanout(workload.receivers, workload.senders, workload.messages,
                         workload.window, workload.payload)
    if isinstance(workload, Connections):
        return workload
    raise BenchError(f"{workload.name} does not apply to IRC")


# ngircd, started by the bench

def findNgircd(path=None):
    """The ngircd binary: C{path}, else ngircd on PATH, else /usr/sbin/ngircd; or None."""
    for candidate in (path,) if path else (shutil.which("ngircd"), "/usr/sbin/ngircd"):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def ngircdVersion(binary):
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0].strip() if out else None


def freePort(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ngircdConfig(port, includeDir):
    """
    An ngircd.conf for a benchmark: loopback only, no limits on connections,
    joins or penalties, no DNS/IDENT/PAM lookups per connection, long PING
    timeouts, and nothing read from /etc/ngircd.
    """
    return f"""\
# Written by chatsvc-bench for one run; see docs/performance.rst.
[Global]
Name = bench.invalid
Info = chatsvc-bench
AdminInfo1 = chatsvc-bench
AdminInfo2 = chatsvc-bench
AdminEMail = bench@bench.invalid
Listen = 127.0.0.1
Ports = {port}
MotdPhrase = chatsvc-bench

[Limits]
# 0: no limit on connections, per IP address, or channels per user.
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 30
# 0: no penalty time at all. This switches off ngircd's flood protection
# (a client sending more than 3 commands or 256 bytes a second is
# otherwise paused for a second), which only adds penalty seconds.
MaxPenaltyTime = 0
PingTimeout = 3600
PongTimeout = 3600

[Options]
# No resolver or IDENT subprocess per connection, no PAM.
DNS = no
Ident = no
PAM = no
IncludeDir = {includeDir}
"""


_LISTENING = re.compile(rb"Now listening on \[127\.0\.0\.1\]:(\d+) ")


class NgircdProcess(ServerProcess):
    """``ngircd -n -p -f CONF``: an ngircd child on a loopback port, with its own config."""

    def __init__(self, reactor, max_clients, workdir, binary):
        super().__init__(reactor, None, max_clients, workdir)
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="ngircd-", dir=workdir)
        os.chmod(self.dir, 0o755)  # ngircd drops root for nobody after reading its config
        self.conf = os.path.join(self.dir, "ngircd.conf")
        self.config = None

    def command(self):
        return [self.binary, "--nodaemon", "--passive", "--config", self.conf]

    def start(self, timeout=60.0) -> Deferred:
        includes = os.path.join(self.dir, "conf.d")
        os.makedirs(includes, exist_ok=True)
        self.config = ngircdConfig(freePort(), includes)
        with open(self.conf, "w") as f:
            f.write(self.config)
        os.chmod(self.conf, 0o644)
        return self._spawn(self.binary, self.command(), dict(os.environ), self.dir, timeout)

    def _lines(self, fd, data):
        data = self._partial[fd] + data
        *lines, self._partial[fd] = data.split(b"\n")
        for line in lines:
            self.tail.append(line.decode("utf-8", "replace"))
            if self.port is None:
                match = _LISTENING.search(line)
                if match:
                    self.port = int(match.group(1))
                    self.startup = time.perf_counter() - self._spawned
                    self._hosting.callback(self.port)


# The servers one invocation measures

class ChatsvcTarget:
    """Our server: ``twistd chatroom``, started by the bench, native protocol."""

    name = "chatsvc"
    dialect = Native

    def __init__(self, workload):
        self.workload = workload

    def newServer(self, reactor, db, max_clients, workdir, extra):
        return ServerProcess(reactor, db, max_clients, workdir, extra)

    def describe(self, server):
        return {"args": serverCommand(server.db, server.max_clients, server.extra)[3:],
                "extra": list(server.extra)}  # --server-arg: plotted as a server of its own


class NgircdTarget:
    """ngircd, started by the bench with a config it writes, IRC protocol."""

    name = "ngircd"
    dialect = IRC

    def __init__(self, workload, binary):
        self.workload = ircWorkload(workload)
        self.binary = binary
        self.version = ngircdVersion(binary)

    def newServer(self, reactor, db, max_clients, workdir, extra):
        return NgircdProcess(reactor, max_clients, workdir, self.binary)

    def describe(self, server):
        return {"args": server.command(), "version": self.version,
                "config": [line for line in (server.config or "").splitlines()
                           if line and not line.startswith("#")]}


class ConnectTarget:
    """A server given with --connect: its protocol is all the bench knows."""

    def __init__(self, workload, protocol):
        self.name = protocol
        self.dialect = DIALECTS[protocol]
        self.workload = ircWorkload(workload) if protocol == "irc" else workload


def targets(args, workload):
    """The servers this invocation measures, in the order of their runs."""
    if args.connect is not None:
        return [ConnectTarget(workload, args.protocol)]
    made = []
    for name in args.servers:
        if name == "ngircd":
            made.append(NgircdTarget(workload, findNgircd(args.ngircd)))
        else:
            made.append(ChatsvcTarget(workload))
    return made


# Command line

def _serverList(text):
    import argparse

    names = [n.strip() for n in text.split(",") if n.strip()]
    wrong = [n for n in names if n not in SERVERS]
    if not names or wrong or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"takes a comma-separated list of {', '.join(SERVERS)} (each once), not {text!r}")
    return names


def addOptions(common):
    """The IRC and side-by-side options, on the workloads' common parser."""
    common.add_argument("--irc-server", choices=["ngircd"],
                        help="start this IRC server instead of chatsvc and drive it over IRC"
                        " (same as --servers ngircd)")
    common.add_argument("--servers", type=_serverList, metavar="LIST",
                        help="start and measure each of these servers in turn, their runs"
                        " interleaved: chatsvc, ngircd or chatsvc,ngircd (default chatsvc)")
    common.add_argument("--ngircd", metavar="PATH",
                        help="the ngircd binary (default: ngircd on PATH, else /usr/sbin/ngircd)")


def checkArgs(args, sub, workload):
    """Validate the IRC options (a bad combination exits 2); sets C{args.servers}."""
    if args.irc_server and args.servers:
        sub.error("--irc-server X is short for --servers X: give one of them")
    servers = args.servers or ([args.irc_server] if args.irc_server else None)
    if args.connect is not None:
        if servers:
            sub.error("--servers and --irc-server start servers; --connect drives a running one")
        irc = args.protocol == "irc"
    else:
        if args.protocol == "irc" and servers is None:
            sub.error("--protocol irc drives a running IRC server (give --connect HOST:PORT);"
                      " to have the bench start ngircd, give --irc-server ngircd")
        servers = servers or ["chatsvc"]
        if args.protocol == "irc" and "chatsvc" in servers:
            sub.error("chatsvc speaks its own protocol, not IRC: drop --protocol irc"
                      " (each server the bench starts gets its own protocol)")
        irc = "ngircd" in servers
        if "ngircd" in servers and findNgircd(args.ngircd) is None:
            sub.error(f"ngircd not found ({args.ngircd or 'not on PATH nor /usr/sbin/ngircd'});"
                      " install it (apt-get install ngircd) or give --ngircd PATH")
        if args.server_arg and "chatsvc" not in servers:
            sub.error("--server-arg is for chatsvc; the bench writes ngircd's config itself")
    args.servers = servers
    if irc:
        if workload.name not in ("fanout", "connections"):
            sub.error(f"{workload.name} does not apply over IRC, only fanout and connections do"
                      " (join and store measure stored history, which IRC does not have)")
        if workload.name == "fanout":
            if workload.receivers + workload.senders < 2:
                sub.error("an IRC server does not send a sender its own message: fanout over"
                          " IRC needs at least two clients (-R 1 or -S 2)")
            if workload.payload > MAX_PAYLOAD:
                sub.error(f"an IRC line is at most 512 bytes: -P takes at most {MAX_PAYLOAD}"
                          " over IRC")

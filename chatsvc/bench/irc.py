"""
IRC for chatsvc-bench: the IRC wire dialect (``--protocol irc``), the fanout
workload as IRC allows it, chatsvc driven through its own IRC door
(``--protocol irc``: the bench starts it with ``--irc``), and ngircd started
by the bench (``--irc-server ngircd``), so that a C server can be measured
side by side with chatsvc in one invocation (``--servers chatsvc,ngircd``,
with ``--protocol irc`` for chatsvc's IRC door) with the same workload.

What differs from the native protocol, and how the numbers are kept comparable:

 - Login is ``NICK``/``USER``; a client is logged in at ``001`` (RPL_WELCOME).
   Joining is ``JOIN #ROOM`` and is done at ``366`` (end of NAMES). The sync
   barrier (the native ``who``) is ``PING :TOKEN``, answered by ``PONG``.
   A ``PING`` from the server is answered with ``PONG`` at any time.
 - A message is ``PRIVMSG #ROOM :TEXT``; TEXT is the same bench marker padded
   to the same payload as in the native run, with a space after the marker
   (L{IRC.gap}): a server may relay a one-word text without the colon
   (chatsvc's door does), and the bench looks for `` :@``.
 - What releases a sender's window (``--irc-ack``, the run's ``ack``):
    - ``echo``: the client asks for IRCv3 ``echo-message`` (``CAP REQ``)
      and the server sends the sender its own message, as chatsvc's native
      door does: that echo is the acknowledgement. chatsvc's IRC door sends
      it once the message is stored, with everyone else's copy. Delivered
      lines are (R+S)*S*M, as natively. The default for chatsvc's IRC door.
    - ``witness``: an IRC server without ``echo-message`` (ngircd) does not
      send a sender its own message. So each sender's window is released by
      its *witness*: one fixed other client in the room (sender k's witness
      is receiver k, cycling over the receivers; with no receivers, the next
      sender). The "echo" latency of such a run is the witness's copy; the
      delivery latency is every copy, as in the native run. Delivered lines
      are the bench's ``PRIVMSG`` lines every client received: (R+S-1)*S*M
      when nothing is lost. The default for ngircd and ``--connect``;
      ``--irc-ack witness`` drives chatsvc's IRC door exactly as ngircd.
   Either way the server's CPU per delivered line counts every line it sent.

``join`` and ``store`` measure stored history, which IRC does not have;
``fanout`` and ``connections`` apply. ``--protocol web`` (L{chatsvc.bench.web})
is this dialect over WebSocket, to chatsvc's web door.
"""

import collections
import functools
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
# chatsvc: over --protocol (its native door by default); chatsvc-irc: its IRC
# door, and chatsvc-web its web door (IRC over WebSocket, chatsvc.bench.web),
# whatever --protocol says, so that one invocation can measure the doors side
# by side.
SERVERS = ("chatsvc", "chatsvc-irc", "chatsvc-web", "ngircd")
OVER_IRC = ("irc", "web")  # the --protocol values that speak the IRC dialect
ACKS = ("echo", "witness")
SERVER_NAME = "bench.invalid"  # the IRC server name the bench gives the servers it starts


def _numeric(line):
    """The command or numeric of a server line (``:prefix CMD ...``), or ''."""
    parts = line.split(" ", 2)
    if line.startswith(":"):
        return parts[1] if len(parts) > 1 else ""
    return parts[0]


def _granted(lines, cap):
    """Whether one of the server's lines is a ``CAP * ACK`` of C{cap}."""
    for line in lines:
        if _numeric(line) != "CAP":
            continue
        words = line.split(" ")[1 if line.startswith(":") else 0:]  # CAP TARGET ACK caps...
        if len(words) > 3 and words[2] == "ACK" and \
                cap in " ".join(words[3:]).lstrip(":").split():
            return True
    return False


class IRC:
    """The IRC client protocol (RFC 2812), as much of it as the bench needs."""

    name = "irc"
    # A channel message as a server relays it: ":nick!user@host PRIVMSG #room :text".
    marker = re.compile(rb"^:[^ \n]+ PRIVMSG [^ \n]+ :@(\d+)\.(\d+)\.(\d+)", re.MULTILINE)
    tag = b" :@"  # PRIVMSG #ROOM :@SID.SEQ.T...
    # After the marker: the text is two words, so that every server relays it
    # as a trailing parameter (" :@...") whatever it does with one word.
    gap = b" "

    def __init__(self, echo=False):
        self.echo = echo  # ask for echo-message: a sender's own copy acknowledges it
        self.channel = None
        self._prefix = None

    def newClient(self, name):
        return IrcClient(self, name)

    async def login(self, client, name):
        register = f"NICK {name}\r\nUSER {name} 0 * :chatsvc-bench\r\n"
        if self.echo:  # registration waits for CAP END, so the cap is on before 001
            register = f"CAP REQ :echo-message\r\n{register}CAP END\r\n"
        client.send(register.encode("ascii"))
        lines = await client.expect(lambda line: _numeric(line) == "001",
                                    f"the welcome (001) of {name}")
        if self.echo and not _granted(lines, "echo-message"):
            raise BenchError(f"{name}: the server did not grant the echo-message capability"
                             f" (its answer: {' | '.join(lines[:2])}); give --irc-ack witness")

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
report.PROTOCOL_LABELS[("irc", "witness")] = {
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

    def feed(self, data, now=None):
        if now is None:  # when it arrived (a transport that decodes tells)
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
    """
    L{Fanout} over IRC: windows released by a witness (C{ack} "witness", no
    sender echo) or by the sender's own echo (C{ack} "echo", echo-message).
    """

    def __init__(self, receivers, senders, messages, window, payload, ack="witness",
                 protocol="irc"):
        super().__init__(receivers, senders, messages, window, payload)
        self.ack = ack
        self.protocol = protocol  # irc, or web: the same lines over WebSocket

    def params(self):
        return {**super().params(), "protocol": self.protocol, "ack": self.ack}

    async def measureSending(self, run, senderClients, receivers):
        return await _measureSending(run, senderClients, receivers, self.messages,
                                     self.window, self.payload, fanout=True,
                                     counting=functools.partial(IrcCounting,
                                                                echo=self.ack == "echo"))


class IrcCounting(Counting):
    """
    Counting over IRC: without C{echo}, a sender gets every message but its
    own, and its window is released by its witness (which stays in the
    bench); with C{echo} (echo-message), everyone gets every message and a
    sender's own copy releases its window, as natively. A PING is answered
    and not counted, any other line is an error of the run.
    """

    def __init__(self, run, senders, senderClients, receivers, fanout, echo=False):
        super().__init__(run, senders, senderClients, receivers, fanout)
        self.echo = echo
        self.acks = "echoes" if echo else "witnessed"
        everyone = senderClients + receivers
        self.witnessed = {id(client): {} for client in everyone}
        if echo:
            self.expectedLines = self.total * len(everyone)
            for sender, client in zip(senders, senderClients):
                self.witnessed[id(client)][b"%d" % sender.sid] = sender
            return
        self.expectedLines = self.total * (len(everyone) - 1)
        for sender in senders:
            if receivers:
                witness = receivers[(sender.sid - 1) % len(receivers)]
            else:
                witness = senderClients[sender.sid % len(senderClients)]
            self.witnessed[id(witness)][b"%d" % sender.sid] = sender
        self.pinned = {id(c) for c in everyone if self.witnessed[id(c)]}

    def startSenders(self, senderClients):
        mine = 0 if self.echo else self.senders[0].count
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
        more = {"pings_answered": sum(t.pings for t in tallies) + far.pings + sum(
            getattr(c, "pings", 0) for c in everyone)}
        if self.run.dialect.name == "web":  # and the WebSocket's own pings
            more["ws_pings_answered"] = far.ws_pings + sum(
                getattr(c, "wsPings", 0) for c in everyone)
        return more


def ircWorkload(workload, ack="witness", protocol="irc"):
    """The workload as it runs over IRC (fanout and connections apply)."""
    if isinstance(workload, Fanout):
        return IrcFanout(workload.receivers, workload.senders, workload.messages,
                         workload.window, workload.payload, ack, protocol)
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


# chatsvc's IRC door, started by the bench

# Port 0, spelt with its keyword: the IRC door's "Hosting at" line then tells
# itself from the native door's (tcp:0:interface=127.0.0.1), with no race
# for a port chosen beforehand.
IRC_LISTEN = "tcp:port=0:interface=127.0.0.1"


def chatsvcIrcArgs():
    """
    What the bench adds for chatsvc's IRC door, besides the capacity options
    every chatsvc run gets (L{chatsvc.bench.server.capacityArgs}): the door
    on a loopback port, the server name ngircd gets too, and pings only
    after an hour of silence, as ngircd's PingTimeout.
    """
    return ["--irc", IRC_LISTEN, "--irc-server-name", SERVER_NAME,
            "--irc-ping-interval", "3600"]


class ChatsvcIrcProcess(ServerProcess):
    """``twistd chatroom ... --irc ...``; its port is the IRC door's."""

    hosting = re.compile(rb"Hosting at 127\.0\.0\.1:(\d+) \("
                         + re.escape(IRC_LISTEN.encode("ascii")) + rb"\)")

    def argv(self):
        return serverCommand(self.db, self.max_clients, [*chatsvcIrcArgs(), *self.extra])


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
        return {"args": server.argv()[3:],
                "extra": list(server.extra)}  # --server-arg: plotted as a server of its own


class ChatsvcIrcTarget(ChatsvcTarget):
    """Our server, started by the bench with its IRC door, driven over IRC (--protocol irc)."""

    name = "chatsvc-irc"

    def __init__(self, workload, ack="echo"):
        self.ack = ack
        self.workload = ircWorkload(workload, ack)

    def dialect(self):
        return IRC(echo=self.ack == "echo")

    def newServer(self, reactor, db, max_clients, workdir, extra):
        return ChatsvcIrcProcess(reactor, db, max_clients, workdir, extra)


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

    def __init__(self, workload, protocol, ack="witness"):
        self.name = protocol
        if protocol in OVER_IRC:
            self.dialect = functools.partial(DIALECTS[protocol], echo=ack == "echo")
            self.workload = ircWorkload(workload, ack, protocol)
        else:
            self.dialect = DIALECTS[protocol]
            self.workload = workload


def targets(args, workload):
    """The servers this invocation measures, in the order of their runs."""
    if args.connect is not None:
        return [ConnectTarget(workload, args.protocol, args.irc_ack or "witness")]
    from chatsvc.bench.web import ChatsvcWebTarget

    made = []
    for name in args.servers:
        if name == "ngircd":
            made.append(NgircdTarget(workload, findNgircd(args.ngircd)))
        elif name == "chatsvc-web" or name == "chatsvc" and args.protocol == "web":
            made.append(ChatsvcWebTarget(workload, args.irc_ack or "echo"))
        elif name == "chatsvc-irc" or args.protocol == "irc":
            made.append(ChatsvcIrcTarget(workload, args.irc_ack or "echo"))
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
                        " interleaved: a comma-separated list of chatsvc (over --protocol),"
                        " chatsvc-irc (chatsvc through its IRC door), chatsvc-web (through"
                        " its web door, IRC over WebSocket) and ngircd, e.g."
                        " chatsvc,chatsvc-irc,chatsvc-web (default chatsvc)")
    common.add_argument("--ngircd", metavar="PATH",
                        help="the ngircd binary (default: ngircd on PATH, else /usr/sbin/ngircd)")
    common.add_argument("--irc-ack", choices=ACKS,
                        help="over IRC, what releases a sender's window: echo (the client asks"
                        " for IRCv3 echo-message and its own copy, sent once stored, is the"
                        " acknowledgement, as on chatsvc's native door; the default for"
                        " chatsvc's IRC door) or witness (one other member's copy; the"
                        " default for ngircd, which has no echo-message, and for --connect)")


def checkArgs(args, sub, workload):
    """Validate the IRC options (a bad combination exits 2); sets C{args.servers}."""
    if args.irc_server and args.servers:
        sub.error("--irc-server X is short for --servers X: give one of them")
    servers = args.servers or ([args.irc_server] if args.irc_server else None)
    acks = set()  # how the IRC runs release the senders' windows
    if args.connect is not None:
        if servers:
            sub.error("--servers and --irc-server start servers; --connect drives a running one")
        if args.protocol in OVER_IRC:
            acks.add(args.irc_ack or "witness")
    else:
        servers = servers or ["chatsvc"]
        if "ngircd" in servers and findNgircd(args.ngircd) is None:
            sub.error(f"ngircd not found ({args.ngircd or 'not on PATH nor /usr/sbin/ngircd'});"
                      " install it (apt-get install ngircd) or give --ngircd PATH")
        if args.protocol == "irc" and {"chatsvc", "chatsvc-irc"} <= set(servers):
            sub.error("with --protocol irc, chatsvc is chatsvc-irc (its IRC door): give one")
        if args.protocol == "web" and {"chatsvc", "chatsvc-web"} <= set(servers):
            sub.error("with --protocol web, chatsvc is chatsvc-web (its web door): give one")
        if args.server_arg and not {"chatsvc", "chatsvc-irc", "chatsvc-web"} & set(servers):
            sub.error("--server-arg is for chatsvc; the bench writes ngircd's config itself")
        if "ngircd" in servers:
            if args.irc_ack == "echo":
                sub.error("ngircd does not offer echo-message: --irc-ack echo is for chatsvc's"
                          " IRC door or a server given with --connect (without --irc-ack,"
                          " chatsvc's IRC door is run with echo and ngircd with witness)")
            acks.add("witness")
        if {"chatsvc-irc", "chatsvc-web"} & set(servers) or \
                "chatsvc" in servers and args.protocol in OVER_IRC:
            acks.add(args.irc_ack or "echo")
    args.servers = servers
    if args.irc_ack and not acks:
        sub.error("--irc-ack is for runs over IRC: give --protocol irc or web (or"
                  " chatsvc-irc, chatsvc-web or ngircd in --servers)")
    if acks:
        if workload.name not in ("fanout", "connections"):
            sub.error(f"{workload.name} does not apply over IRC, only fanout and connections do"
                      " (join and store measure stored history, which IRC does not have)")
        if workload.name == "fanout":
            if "witness" in acks and workload.receivers + workload.senders < 2:
                sub.error("an IRC server does not send a sender its own message without"
                          " echo-message: fanout over IRC needs at least two clients"
                          " (-R 1 or -S 2), or --irc-ack echo")
            if workload.payload > MAX_PAYLOAD:
                sub.error(f"an IRC line is at most 512 bytes: -P takes at most {MAX_PAYLOAD}"
                          " over IRC")

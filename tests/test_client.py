"""
The chat client end to end: the real client process (chatsvc-client, and
twistd chatclient) against the real server process, through pipes and through
a pseudo-terminal; its command line; and how it classifies and colours lines.
"""

import datetime
import fcntl
import ipaddress
import os
import pty
import re
import signal
import socket
import struct
import sys
import termios

from twisted.internet import defer, endpoints, protocol, reactor
from twisted.internet.error import ConnectionDone, ConnectionRefusedError, ProcessExitedAlready
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.protocols.basic import LineReceiver
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, TestCase

import chatsvc
from chatsvc.client import Options, verifiedTLS
from chatsvc.clientpipe import PipeDisplay
from chatsvc.clientproto import (
    ERROR, GOT_PRIVATE, NOTICE, OTHER, REPLAYED, SAID, SENT_PRIVATE, ChatClient, ServerAddress,
    classify, spoken)
from chatsvc.clientterm import PROBLEM, STATUS, render, wantColour
from tests.terminal import Screen

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    from twisted.internet import ssl
except ImportError:  # without the tls extra
    ssl = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(chatsvc.__file__)))
TWISTD = ["-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile="]
PROMPT = "* Welcome to chatsvc! Enter your screen name:"


def environment(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "PYTHONPATH")}
    env.update(PYTHONPATH=ROOT, TERM="xterm", **extra)
    return env


class Waiting:
    """Deferreds that fire when a condition on what arrived so far holds."""

    def __init__(self):
        self._waits = []

    def waitUntil(self, condition):
        d = defer.Deferred()
        self._waits.append((condition, d))
        self.check()
        return d

    def check(self):
        for wait in list(self._waits):
            condition, d = wait
            if condition():
                self._waits.remove(wait)
                d.callback(None)

    def fail(self, why):
        waits, self._waits = self._waits, []
        for _, d in waits:
            d.errback(AssertionError(why))


class Process(protocol.ProcessProtocol, Waiting):
    """A child process; its output as text; its exit code."""

    def __init__(self):
        Waiting.__init__(self)
        self.out = ""
        self.err = ""
        self.ended = defer.Deferred()  # fires with the exit code
        self.code = None

    @classmethod
    def spawn(cls, argv, directory, env=None, **kw):
        child = cls()
        reactor.spawnProcess(child, sys.executable, [sys.executable, *argv],
                             env=env or environment(), path=directory, **kw)
        return child

    def outReceived(self, data):
        self.out += data.decode("utf-8", "replace")
        self.check()

    def errReceived(self, data):
        self.err += data.decode("utf-8", "replace")
        self.check()

    def processEnded(self, reason):
        self.code = reason.value.exitCode
        self.fail(f"the process ended ({self.code}).\nstdout:\n{self.out}\nstderr:\n{self.err}")
        self.ended.callback(self.code)

    def waitForOutput(self, text):
        return self.waitUntil(lambda: text in self.out)

    def send(self, line):
        self.transport.write(line.encode("utf-8") + b"\n")

    def kill(self):
        if self.code is None:
            try:
                self.transport.signalProcess(signal.SIGKILL)
            except ProcessExitedAlready:  # reaped; its pipes are still closing
                pass
        return self.ended


class Server(Process):
    """The real server: twistd -n chatroom."""

    @classmethod
    def start(cls, directory, port=0, kind="tcp", extra=""):
        server = cls.spawn(
            [*TWISTD, "chatroom", "--listen", f"{kind}:{port}:interface=127.0.0.1{extra}",
             "--db", os.path.join(directory, "chat.sqlite3")],
            directory)
        server.port = server.waitUntil(lambda: server._port() is not None)
        server.port.addCallback(lambda _: server._port())
        return server

    def _port(self):
        found = re.search(r"Hosting at 127\.0\.0\.1:(\d+) \(", self.out + self.err)
        return int(found.group(1)) if found else None


class Terminal(Process):
    """A child on a pseudo-terminal, its screen kept by tests.terminal (insults' TerminalBuffer)."""

    WIDTH, HEIGHT = 80, 50  # tall enough that nothing in a test scrolls away

    @classmethod
    def spawn(cls, argv, directory, env=None):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", cls.HEIGHT, cls.WIDTH, 0, 0))
        child = super().spawn(argv, directory, env,
                              usePTY=(master, slave, os.ttyname(slave)))
        child.master = master
        return child

    def __init__(self):
        super().__init__()
        self.screen = Screen(self.WIDTH, self.HEIGHT, lambda answer: self.transport.write(answer))
        self.buffer = self.screen.terminal
        self.raw = b""

    def outReceived(self, data):
        self.raw += data
        self.screen.feed(data)
        super().outReceived(data)

    def lines(self):
        return bytes(self.buffer).decode("utf-8", "replace").split("\n")

    def cursor(self):
        return self.buffer.reportCursorPosition()  # (column, row)

    def inputLine(self):
        return self.lines()[self.cursor()[1]].rstrip()

    def waitForScreen(self, text):
        return self.waitUntil(lambda: any(text in line for line in self.lines()))

    def type(self, keys):
        self.transport.write(keys.encode("utf-8") if isinstance(keys, str) else keys)

    def resize(self, width):
        """As tmux does: rewrap the screen, then tell the child (SIGWINCH)."""
        self.buffer.resize(width)
        fcntl.ioctl(self.master, termios.TIOCSWINSZ,
                    struct.pack("HHHH", self.HEIGHT, width, 0, 0))


class User(LineReceiver, Waiting):
    """Another user, over a plain TCP connection, as with nc."""

    delimiter = b"\n"

    def __init__(self):
        Waiting.__init__(self)
        self.lines = []
        self.closed = defer.Deferred()

    @classmethod
    @defer.inlineCallbacks
    def connect(cls, port, name):
        endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        user = yield endpoints.connectProtocol(endpoint, cls())
        user.send(name)
        yield user.waitFor(f"* Welcome, {name}.")
        return user

    def lineReceived(self, line):
        self.lines.append(line.decode("utf-8"))
        self.check()

    def connectionLost(self, reason):
        self.fail(f"connection lost; lines: {self.lines}")
        self.closed.callback(None)

    def send(self, line):
        self.transport.write(line.encode("utf-8") + b"\n")

    def waitFor(self, start):
        return self.waitUntil(lambda: any(line.startswith(start) for line in self.lines))

    def close(self):
        if self.transport.connected:
            self.transport.loseConnection()
        return self.closed


def freePort():
    """A loopback port that nothing listens on (it was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ProcessTestCase(TestCase):
    timeout = 30  # a hang fails the test instead of the whole run

    def setUp(self):
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.processes = []
        self.users = []

    def tearDown(self):
        for user in self.users:
            user.close()
        return defer.gatherResults([p.kill() for p in self.processes]
                                   + [u.closed for u in self.users])

    def server(self, port=0, **kw):
        server = Server.start(self.directory, port, **kw)
        self.processes.append(server)
        return server.port

    def client(self, *args, kind=Process, env=None):
        child = kind.spawn(["-m", "chatsvc.client", *args], self.directory, env)
        self.processes.append(child)
        return child

    def twistd(self, *args):
        child = Process.spawn([*TWISTD, "chatclient", *args], self.directory)
        self.processes.append(child)
        return child

    @defer.inlineCallbacks
    def user(self, port, name):
        user = yield User.connect(port, name)
        self.users.append(user)
        return user

    def assertOnlyChat(self, output, port):
        """Every line is the server's (it has a marker) or "Connected to server"."""
        for line in output.splitlines():
            if line != f"Connected to server 127.0.0.1:{port}":
                self.assertNotEqual(classify(line), OTHER, line)

    def assertInOrder(self, output, expected):
        lines, at = output.splitlines(), 0
        for wanted in expected:
            found = [i for i, line in enumerate(lines[at:], at) if line.startswith(wanted)]
            self.assertTrue(found, f"{wanted!r} not found after line {at} of:\n{output}")
            at = found[0] + 1


class PipeTests(ProcessTestCase):
    """stdin and stdout are pipes: plain lines in and out, exit codes for scripts."""

    @defer.inlineCallbacks
    def test_pipedSession(self):
        port = yield self.server()
        bob = yield self.user(port, "bob")
        bob.send("create kitchen")
        yield bob.waitFor("* You joined kitchen.")
        client = self.client("127.0.0.1", str(port))
        for line in ["alice", "join kitchen", "hello kitchen", "quit"]:
            client.send(line)
        yield bob.waitFor("<alice> hello kitchen")  # the server stored and sent it
        code = yield client.ended
        self.assertEqual((code, client.err), (0, ""))
        self.assertInOrder(client.out, [
            f"Connected to server 127.0.0.1:{port}", PROMPT, "* Welcome, alice.",
            "* You joined kitchen. Here: bob.", "<alice> hello kitchen",
            "* Goodbye, alice."])
        self.assertOnlyChat(client.out, port)
        self.assertNotIn("\x1b", client.out)

    @defer.inlineCallbacks
    def test_endOfInputSaysQuit(self):
        """At the end of stdin the client says quit after what came before."""
        port = yield self.server()
        client = self.client("127.0.0.1", str(port))
        client.send("carol")
        client.send("who")
        client.transport.closeStdin()
        code = yield client.ended
        self.assertEqual((code, client.err), (0, ""))
        self.assertInOrder(client.out, ["* Welcome, carol.", "* Online (1): carol.",
                                        "* Goodbye, carol."])

    @defer.inlineCallbacks
    def test_unreachable(self):
        port = freePort()
        client = self.client("127.0.0.1", str(port))
        code = yield client.ended
        self.assertEqual(code, 1)
        self.assertEqual(client.out, "")
        self.assertEqual(client.err.splitlines(), [
            f"Could not connect to 127.0.0.1:{port}:"
            " connection refused (is the server running?)."])

    @defer.inlineCallbacks
    def test_severalServers(self):
        """The first that answers, in order; each that does not is one line on stderr."""
        port = yield self.server()
        down = f"tcp:127.0.0.1:{freePort()}"
        up = f"tcp:127.0.0.1:{port}"
        client = self.client("--server", down, "-s", up, "--server", down)
        client.send("frank")
        client.send("quit")
        code = yield client.ended
        self.assertEqual(code, 0)
        self.assertEqual(client.err.splitlines(), [
            f"Could not connect to {down}: connection refused (is the server running?)."
            f" Trying {up}..."])
        self.assertInOrder(client.out, [f"Connected to server {up}", "* Welcome, frank.",
                                        "* Goodbye, frank."])

    @defer.inlineCallbacks
    def test_connectionLost(self):
        port = yield self.server()
        client = self.client("127.0.0.1", str(port))
        client.send("dave")
        yield client.waitForOutput("* Welcome, dave.")
        yield self.processes[0].kill()
        code = yield client.ended
        self.assertEqual(code, 1)
        self.assertEqual(len(client.err.splitlines()), 1, client.err)
        self.assertIn(f"Lost the connection to 127.0.0.1:{port}", client.err)

    @defer.inlineCallbacks
    def test_twistdKeepsItsLogOutOfTheChat(self):
        port = yield self.server()
        client = self.twistd("--server", f"tcp:127.0.0.1:{port}")
        client.send("erin")
        client.send("quit")
        code = yield client.ended
        self.assertEqual((code, client.err), (0, ""))
        self.assertInOrder(client.out, [f"Connected to server tcp:127.0.0.1:{port}",
                                        "* Welcome, erin.", "* Goodbye, erin."])
        for line in client.out.splitlines()[1:]:
            self.assertNotEqual(classify(line), OTHER, line)
        with open(os.path.join(self.directory, "chatclient.log")) as log:
            self.assertIn("starting up", log.read())


def selfSignedCertificate(folder):
    """key.pem and cert.pem (for 127.0.0.1) in C{folder}; a copy of the cert in folder/ca."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256()))
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    os.makedirs(os.path.join(folder, "ca"))
    for path in ["cert.pem", "ca/cert.pem"]:
        with open(os.path.join(folder, path), "wb") as f:
            f.write(pem)
    with open(os.path.join(folder, "key.pem"), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


class TLSTests(ProcessTestCase):
    """--server ssl:...: the server's certificate is checked."""

    def setUp(self):
        if ssl is None:
            raise SkipTest("TLS needs the tls extra: pip install '.[tls]'")
        super().setUp()
        selfSignedCertificate(self.directory)
        d = self.directory
        return self.server(kind="ssl", extra=f":privateKey={d}/key.pem:certKey={d}/cert.pem"
                           ).addCallback(lambda port: setattr(self, "port", port))

    @defer.inlineCallbacks
    def test_trustedCertificate(self):
        where = f"ssl:127.0.0.1:{self.port}:caCertsDir={self.directory}/ca"
        client = self.client("--server", where)
        client.send("alice")
        client.send("quit")
        code = yield client.ended
        self.assertEqual((code, client.err), (0, ""))
        self.assertInOrder(client.out, [f"Connected to server {where}", "* Welcome, alice.",
                                        "* Goodbye, alice."])
        self.assertEqual(client.out.count("Goodbye"), 1)

    @defer.inlineCallbacks
    def test_untrustedCertificate(self):
        """Without hostname= Twisted checks nothing; the client adds it."""
        client = self.client("--server", f"ssl:127.0.0.1:{self.port}")
        code = yield client.ended
        self.assertEqual((code, client.out), (1, ""))
        self.assertEqual(client.err.splitlines(), [
            f"Could not connect to ssl:127.0.0.1:{self.port}: the server's certificate is"
            " self-signed, not signed by a CA this machine trusts: pass caCertsDir=DIR with a"
            " copy of it in DIR as a .pem file."])

    @defer.inlineCallbacks
    def test_withoutTheTLSExtra(self):
        """Without pyOpenSSL, ssl: says which extra to install, not a NameError."""
        missing = os.path.join(self.directory, "no-openssl", "OpenSSL")
        os.makedirs(missing)
        with open(os.path.join(missing, "__init__.py"), "w") as f:
            f.write("raise ImportError(\"No module named 'OpenSSL'\")\n")
        env = environment()
        env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(missing), ROOT])
        client = self.client("--server", f"ssl:127.0.0.1:{self.port}", env=env)
        code = yield client.ended
        self.assertEqual((code, client.out), (2, ""))
        self.assertEqual(client.err.splitlines(), [
            "chatsvc-client: TLS needs the tls extra: pip install 'chatsvc[tls]'"
            " (see chatsvc-client --help)"])


class TerminalTests(ProcessTestCase):
    """The client on a pseudo-terminal, as a person uses it."""

    @defer.inlineCallbacks
    def signIn(self, port, name, room):
        alice = self.client("127.0.0.1", str(port), kind=Terminal)
        yield alice.waitForScreen(PROMPT)
        alice.type(f"{name}\r")
        yield alice.waitForScreen(f"* Welcome, {name}.")
        alice.type(f"create {room}\r")
        yield alice.waitForScreen(f"* You joined {room}.")
        return alice

    @defer.inlineCallbacks
    def test_halfTypedLineSurvivesAnIncomingMessage(self):
        port = yield self.server()
        alice = yield self.signIn(port, "alice", "kitchen")
        bob = yield self.user(port, "bob")
        bob.send("join kitchen")
        yield alice.waitForScreen("* bob joined kitchen")
        alice.type("half-typed wo")
        alice.type(b"\x1b[D\x1b[D")  # two to the left: the cursor is not at the end
        yield alice.waitUntil(lambda: alice.inputLine() == "kitchen> half-typed wo"
                              and alice.cursor()[0] == len("kitchen> half-typed "))
        bob.send("hello from bob")
        yield alice.waitForScreen("<bob> hello from bob")
        lines, (column, row) = alice.lines(), alice.cursor()
        self.assertEqual(lines[row].rstrip(), "kitchen> half-typed wo")  # intact, below the message
        self.assertEqual(column, len("kitchen> half-typed "))  # the cursor where it was
        self.assertEqual(lines[row - 1], "<bob> hello from bob")
        self.assertIn(b"\x1b[1m<bob>\x1b[0m hello from bob", alice.raw)  # coloured
        alice.type(b"\x05rds, sent whole\r")  # Ctrl-E (to the end), the rest, Enter
        yield bob.waitFor("<alice> half-typed words, sent whole")
        yield alice.waitForScreen("<alice> half-typed words, sent whole")
        yield alice.waitUntil(lambda: alice.inputLine() == "kitchen>")
        alice.type(b"\x04")  # Ctrl-D: quit
        code = yield alice.ended
        self.assertEqual(code, 0)
        yield bob.waitFor("* alice left kitchen")

    @defer.inlineCallbacks
    def test_resizeLeavesOneInputLine(self):
        """A terminal that rewraps its lines shrinks and grows: one input line, always."""
        port = yield self.server()
        alice = yield self.signIn(port, "alice", "kitchen")
        long = "this is a long line that I am typing without pressing enter, it goes on and on"
        alice.type(long)

        def showsOnly(inputLine, column):
            def check():
                rows = [row.rstrip() for row in alice.lines()]
                return ([row for row in rows if row.startswith("kitchen>")] == [inputLine]
                        and alice.inputLine() == inputLine and alice.cursor()[0] == column)
            return check

        yield alice.waitUntil(showsOnly("kitchen> " + long[-69:], 78))
        alice.resize(40)
        yield alice.waitUntil(showsOnly("kitchen> " + long[-29:], 38))
        alice.resize(80)
        yield alice.waitUntil(showsOnly("kitchen> " + long[-69:], 78))
        rows = [row.rstrip() for row in alice.lines()]
        self.assertIn("* You joined kitchen. Here: no one else.", rows)
        alice.type(b"\r")
        yield alice.waitForScreen(f"<alice> {long[:60]}")  # sent whole (on two rows)
        yield alice.waitUntil(lambda: alice.inputLine() == "kitchen>")

    @defer.inlineCallbacks
    def test_reconnectRestoresNameAndRoom(self):
        port = yield self.server()
        alice = yield self.signIn(port, "alice", "kitchen")
        alice.type("said before\r")
        yield alice.waitForScreen("<alice> said before")
        yield self.processes[0].kill()  # the server dies ...
        yield alice.waitForScreen(f"Lost the connection to 127.0.0.1:{port}")
        yield self.server(port)  # ... and comes back on the same port and database
        yield alice.waitForScreen("Signed in again as alice.")
        yield alice.waitUntil(lambda: alice.inputLine() == "kitchen>")  # rejoined
        joined = [line for line in alice.lines() if line.startswith("* You joined kitchen.")]
        self.assertEqual(len(joined), 2)
        self.assertIn(f"Reconnecting to 127.0.0.1:{port} (attempt 1)...", alice.out)
        # Replay is not shown again for messages already on the screen.
        said = [line for line in alice.lines() if "said before" in line]
        self.assertEqual(said, ["<alice> said before"])
        # What the server sees: alice is back in kitchen.
        bob = yield self.user(port, "bob")
        bob.send("join kitchen")
        yield bob.waitFor("* You joined kitchen. Here: alice.")
        yield alice.waitForScreen("* bob joined kitchen")
        alice.type("back again\r")
        yield bob.waitFor("<alice> back again")


class FailoverTests(ProcessTestCase):
    """Several --server: the nodes of one chat; a terminal session moves to the next."""

    def node(self, name):
        """A server of its own (its own folder and database), like another node."""
        folder = os.path.join(self.directory, name)
        os.makedirs(folder)
        server = Server.start(folder)
        self.processes.append(server)
        return server

    @defer.inlineCallbacks
    def test_reconnectsToTheNextServer(self):
        first, second = self.node("one"), self.node("two")
        port1, port2 = yield defer.gatherResults([first.port, second.port])
        one, two = f"tcp:127.0.0.1:{port1}", f"tcp:127.0.0.1:{port2}"
        alice = self.client("--server", one, "--server", two, kind=Terminal)
        yield alice.waitForScreen(f"Connected to server {one}")
        yield alice.waitForScreen(PROMPT)
        alice.type("alice\r")
        yield alice.waitForScreen("* Welcome, alice.")
        yield first.kill()  # the node dies; the other is still up
        yield alice.waitForScreen(f"Lost the connection to {one}")
        yield alice.waitForScreen("Signed in again as alice.")
        self.assertIn(f"Reconnecting to {two} (attempt 1)...", alice.out)
        self.assertIn(f"Connected to server {two}", alice.out)
        self.assertNotIn(f"Reconnecting to {one}", alice.out)
        bob = yield self.user(port2, "bob")  # on the second node, alice is there
        bob.send("who")
        yield bob.waitFor("* Online (2): ")
        self.assertIn("alice", [line for line in bob.lines if line.startswith("* Online")][0])
        alice.type("msg bob hello from two\r")
        yield bob.waitFor("<- alice: hello from two")


class OptionsTests(ProcessTestCase):

    def parse(self, *args):
        options = Options()
        options.parseOptions(list(args))
        return options

    def test_defaults(self):
        self.assertEqual(self.parse().where, "127.0.0.1:3000")

    def test_hostAndPort(self):
        self.assertEqual(self.parse("chat.example.org", "3100").where, "chat.example.org:3100")
        self.assertEqual(self.parse("::1").where, "[::1]:3000")

    def test_server(self):
        options = self.parse("--server", "tcp:127.0.0.1:3100", "--plain", "--no-color")
        self.assertEqual((options.where, options["plain"], options["no-color"]),
                         ("tcp:127.0.0.1:3100", 1, 1))

    def test_severalServers(self):
        options = self.parse("-s", "tcp:127.0.0.1:3100", "--server", "tcp:chat.example.org:3000")
        self.assertEqual([server.where for server in options.servers],
                         ["tcp:127.0.0.1:3100", "tcp:chat.example.org:3000"])
        self.assertEqual((options.endpoint, options.where, options.tls),
                         tuple(options.servers[0]))
        self.assertEqual(self.parse().servers[0].where, "127.0.0.1:3000")
        if ssl is not None:
            options = self.parse("-s", "tcp:h:1", "-s", "ssl:chat.example.org:3443")
            self.assertIsNone(options.servers[0].tls)
            self.assertEqual(options.servers[1].tls.hostname, "chat.example.org")

    def test_tlsIsVerified(self):
        """Twisted checks no certificate for ssl: without hostname=; it is added."""
        for given, used in [
            ("ssl:chat.example.org:3443", "ssl:chat.example.org:3443:hostname=chat.example.org"),
            ("ssl:host=h:port=1:caCertsDir=/c", "ssl:host=h:port=1:caCertsDir=/c:hostname=h"),
            ("ssl:h:1:hostname=other", "ssl:h:1:hostname=other"),
            ("tcp:h:1", "tcp:h:1"),
        ]:
            self.assertEqual(verifiedTLS(given), used)

    def test_refused(self):
        for args in [("localhost", "http"), ("localhost", "0"), ("localhost", "65536"),
                     ("a", "1", "b"), ("host", "--server", "tcp:h:1"),
                     ("--server", "nonsense:x"), ("-s", "tcp:h:1", "-s", "nonsense:x"),
                     ("-s", "tcp:h:1", "-s", "tcp:h:2", "host")]:
            self.assertRaises(usage.UsageError, self.parse, *args)

    @defer.inlineCallbacks
    def test_badArgumentsExitWithTwoAndOneLine(self):
        children = [self.client(*args) for args in
                    [("127.0.0.1", "port"), ("--frobnicate",), ("a", "1", "2")]]
        codes = yield defer.gatherResults([c.ended for c in children])
        self.assertEqual(codes, [2, 2, 2])
        for child in children:
            self.assertEqual(child.out, "")
            self.assertEqual(len(child.err.splitlines()), 1, child.err)
            self.assertTrue(child.err.startswith("chatsvc-client: "), child.err)
        self.assertIn("'port'", children[0].err)

    @defer.inlineCallbacks
    def test_helpListsEveryOption(self):
        client, twistd = self.client("--help"), self.twistd("--help")
        codes = yield defer.gatherResults([client.ended, twistd.ended])
        self.assertEqual(codes, [0, 0])
        options = Options()
        names = ["help", "version", "server"] + [
            row[0] for row in options.optParameters + options.optFlags]
        for name in names:
            self.assertIn(f"--{name}", client.out)
            self.assertIn(f"--{name}", twistd.out)
        self.assertTrue(client.out.startswith("Usage: chatsvc-client [options] [HOST [PORT]]"))
        self.assertTrue(twistd.out.startswith("Usage: twistd [options] chatclient [options]"))
        for topic in ["NO_COLOR", "chatclient.log", "Exit status", "Ctrl-D", "Up/Down",
                      "reconnects", "ssl:", "-s, --server=", "several --server"]:
            self.assertIn(topic, client.out)


class LineKindTests(TestCase):
    """Lines are classified by their marker and coloured by kind, without a terminal."""

    def test_classify(self):
        for line, kind in [
            ("<alice> hello", SAID),
            ("<a-b_c> <- not a private message", SAID),
            ("<-> a user named -", SAID),
            ("[2026-11-23 23:40] <bob> hi", REPLAYED),
            ("* bob joined lobby", NOTICE),
            ("! No room named 'kitchen'.", ERROR),
            ("-> alice: are you there?", SENT_PRIVATE),
            ("<- alice: are you there?", GOT_PRIVATE),
            ("Connected to server 127.0.0.1:3000", OTHER),
            ("<alice>no space", OTHER),
            ("[2026-11-23] <bob> hi", OTHER),
            ("*bold*", OTHER),
            ("", OTHER),
        ]:
            self.assertEqual(classify(line), kind, line)

    def test_spoken(self):
        self.assertEqual(spoken("<alice> hi <there>"), ("alice", "hi <there>"))
        self.assertEqual(spoken("[2026-11-23 23:40] <bob> hi"), ("bob", "hi"))
        self.assertIsNone(spoken("* alice joined kitchen"))

    def test_colours(self):
        def styled(line, me=None):
            return render(line, classify(line), me)

        self.assertEqual(styled("<bob> hi"), "\x1b[1m<bob>\x1b[0m hi")
        self.assertEqual(styled("<Alice> hi", me="alice"), "\x1b[1;32m<Alice>\x1b[0m hi")
        self.assertEqual(styled("* hello"), "\x1b[33m* hello\x1b[0m")
        self.assertEqual(styled("! no"), "\x1b[1;31m! no\x1b[0m")
        self.assertEqual(styled("-> bob: x"), "\x1b[35m-> bob: x\x1b[0m")
        self.assertEqual(styled("<- bob: x"), "\x1b[1;35m<- bob: x\x1b[0m")
        self.assertEqual(styled("[2026-11-23 23:40] <bob> hi"),
                         "\x1b[2m[2026-11-23 23:40] <bob> hi\x1b[0m")
        self.assertEqual(styled("plain"), "plain")
        self.assertEqual(render("Reconnecting", STATUS), "\x1b[36mReconnecting\x1b[0m")
        self.assertEqual(render("Lost", PROBLEM), "\x1b[1;31mLost\x1b[0m")

    def test_noColour(self):
        for line in ["<bob> hi", "* x", "! x", "-> b: x", "<- b: x", "[2026-11-23 23:40] <b> x"]:
            self.assertEqual(render(line, classify(line), "bob", colour=False), line)

    def test_wantColour(self):
        self.assertTrue(wantColour({}))
        self.assertTrue(wantColour({"NO_COLOR": ""}))  # set but empty: no-color.org
        self.assertFalse(wantColour({"NO_COLOR": "1"}))
        self.assertFalse(wantColour({}, flag=True))


# The session's logic, with a fake server connection, display and clock.

class FakeDisplay:
    def __init__(self):
        self.lines = []  # (kind, text): "show", "status" or "problem"
        self.stopped = False

    def start(self, client):
        self.client = client

    def serverConnected(self):
        pass

    def changed(self):
        pass

    def show(self, line):
        self.lines.append(("show", line))

    def status(self, text, problem=False):
        self.lines.append(("problem" if problem else "status", text))

    def stop(self):
        self.stopped = True
        return defer.succeed(None)

    def take(self):
        lines, self.lines = self.lines, []
        return lines


class FakeEndpoint:
    """Connection attempts the test completes or refuses."""

    def __init__(self):
        self.attempts = []

    def connect(self, factory):
        d = defer.Deferred()
        self.attempts.append((factory, d))
        return d

    def accept(self):
        factory, d = self.attempts[-1]
        connection = factory.buildProtocol(None)
        connection.makeConnection(StringTransport())
        d.callback(connection)
        return FakeServer(connection)

    def refuse(self):
        self.attempts[-1][1].errback(ConnectionRefusedError())


class FakeServer:
    """The server's end of one connection: say lines, read what the client sent."""

    def __init__(self, connection):
        self.connection = connection
        self.transport = connection.transport

    def say(self, *lines):
        self.connection.dataReceived("".join(line + "\n" for line in lines).encode("utf-8"))

    def sent(self):
        data = self.transport.value().decode("utf-8")
        self.transport.clear()
        return data.splitlines()

    def close(self):
        self.connection.connectionLost(Failure(ConnectionDone()))

    def welcome(self, name):
        self.say(f"* Welcome, {name}. You are in the Lobby. Commands:",
                 "*   commands       list the commands (also help)",
                 "*   Anything else you type is said to your room.")


class SessionTests(TestCase):
    """ChatClient: what it sends, shows and remembers, over fake connections."""

    def setUp(self):
        self.clock = Clock()
        self.endpoint = FakeEndpoint()
        self.display = FakeDisplay()
        self.exit = []

    def start(self, reconnect=True):
        self.client = ChatClient(self.endpoint, "chat:3000", self.display,
                                 reconnect=reconnect, clock=self.clock)
        self.client.start().addCallback(self.exit.append)
        return self.client

    def signIn(self, name="alice", room=None):
        server = self.endpoint.accept()
        server.say(PROMPT)
        self.client.lineTyped(name)
        self.assertEqual(server.sent(), [name])
        server.welcome(name)
        if room:
            self.client.lineTyped(f"join {room}")
            server.sent()
            server.say(f"* You joined {room}. Here: no one else.")
        self.display.take()
        return server

    def test_firstConnectionFails(self):
        self.start()
        self.endpoint.refuse()
        self.assertEqual(self.exit, [1])
        self.assertEqual(self.display.take(), [
            ("problem", "Could not connect to chat:3000:"
                        " connection refused (is the server running?).")])
        self.assertTrue(self.display.stopped)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_showsAndTracks(self):
        self.start()
        server = self.endpoint.accept()
        self.assertEqual(self.display.take(), [("status", "Connected to server chat:3000")])
        self.assertEqual(self.client.prompt(), "name: ")
        server.say(PROMPT, "! taken\x1b[31m\x07")  # control characters never reach the screen
        self.client.lineTyped("alice")
        server.welcome("alice")
        self.assertEqual((self.client.name, self.client.prompt()), ("alice", "> "))
        server.say("* You joined kitchen.lab. Here: bob.", "<bob> hi")
        self.assertEqual((self.client.room, self.client.prompt()),
                         ("kitchen.lab", "kitchen.lab> "))
        server.say("* You left kitchen.lab. You are in the Lobby.")
        self.assertIsNone(self.client.room)
        self.assertEqual(self.display.take()[:2], [("show", PROMPT), ("show", "! taken")])
        self.assertEqual(server.sent(), ["alice"])

    def test_quit(self):
        self.start(reconnect=False)
        server = self.signIn()
        self.assertTrue(self.client.lineTyped("/QUIT"))
        self.assertEqual(server.sent(), ["/QUIT"])
        server.say("* Goodbye, alice.")
        self.assertTrue(server.transport.disconnecting)  # no need to wait for the server
        server.close()
        self.assertEqual(self.exit, [0])

    def test_lostWithoutReconnecting(self):
        self.start(reconnect=False)
        server = self.signIn()
        server.close()
        self.assertEqual(self.exit, [1])
        self.assertEqual(self.display.take(), [
            ("problem", "Lost the connection to chat:3000: the server closed the connection.")])

    def test_lostBeforeSigningIn(self):
        """Nothing to restore: a terminal session ends too."""
        self.start()
        self.endpoint.accept().close()
        self.assertEqual(self.exit, [1])

    def test_backoff(self):
        self.start()
        self.signIn()
        FakeServer(self.client.connection).close()
        delays = []
        for _ in range(7):
            (call,) = self.clock.getDelayedCalls()
            delays.append(call.getTime() - self.clock.seconds())
            self.clock.advance(delays[-1])
            self.endpoint.refuse()
        self.assertEqual(delays, [1, 2, 4, 8, 16, 30, 30])
        lines = self.display.take()
        self.assertEqual(lines[:4], [
            ("problem", "Lost the connection to chat:3000: the server closed the connection."
                        " Reconnecting in 1 s."),
            ("status", "Reconnecting to chat:3000 (attempt 1)..."),
            ("problem", "Could not reconnect: connection refused (is the server running?)."
                        " Next attempt in 2 s."),
            ("status", "Reconnecting to chat:3000 (attempt 2)...")])
        self.clock.advance(30)
        self.endpoint.accept()
        self.assertEqual(self.display.take(), [
            ("status", "Reconnecting to chat:3000 (attempt 8)..."),
            ("status", "Connected to server chat:3000")])

    def reconnect(self):
        FakeServer(self.client.connection).close()
        self.clock.advance(1)
        server = self.endpoint.accept()
        self.display.take()
        return server

    def test_restoresNameAndRoom(self):
        self.start()
        server = self.signIn(room="kitchen")
        server.say("[2026-11-23 23:40] <bob> one", "<bob> two", "<alice> three")
        self.display.take()
        server = self.reconnect()
        self.assertFalse(self.client.lineTyped("too early"))
        self.assertEqual(self.client.prompt(), "(signing in)> ")
        server.say(PROMPT)
        self.assertEqual(server.sent(), ["alice"])  # no typing needed
        server.welcome("alice")
        self.assertEqual(server.sent(), ["join kitchen"])
        server.say("* You joined kitchen. Here: bob.",
                   "* 12 older messages: type history to see them.",
                   "[2026-11-23 23:40] <bob> one", "[2026-11-23 23:41] <bob> two",
                   "[2026-11-23 23:41] <alice> three", "[2026-11-23 23:42] <bob> four",
                   "* bob left kitchen")
        self.assertEqual(self.display.take(), [
            ("problem", "Still signing in again: press Enter again in a moment."),
            ("status", "Signed in again as alice."),
            ("show", "* You joined kitchen. Here: bob."),
            ("show", "[2026-11-23 23:42] <bob> four"),  # only what was missed
            ("show", "* bob left kitchen")])
        self.assertEqual(self.client.prompt(), "kitchen> ")
        self.assertTrue(self.client.lineTyped("hello"))

    def test_oneOlderMessage(self):
        self.start()
        self.signIn(room="kitchen")
        server = self.reconnect()
        server.say(PROMPT)
        server.welcome("alice")
        server.say("* You joined kitchen. Here: bob.",
                   "* 1 older message: type history to see them.")
        self.assertEqual(self.display.take(), [
            ("status", "Signed in again as alice."),
            ("show", "* You joined kitchen. Here: bob.")])

    def test_idleConnectionClosed(self):
        """Reconnecting would defeat the server's idle timeout: the session ends."""
        self.start()
        server = self.signIn()
        server.say("* You were silent for 600 seconds. Closing the connection.")
        server.close()
        self.assertEqual(self.exit, [1])
        self.assertEqual(self.display.take()[-1],
                         ("problem", "The server at chat:3000 closed the idle connection."))
        self.assertEqual(self.endpoint.attempts[1:], [])

    def test_nameStillTaken(self):
        self.start()
        self.signIn("alice")
        server = self.reconnect()
        taken = ("! The name alice is taken. Choose another one.", "* Enter your screen name:")
        server.say(PROMPT)
        self.assertEqual(server.sent(), ["alice"])
        for delay in [1, 2]:
            server.say(*taken)
            self.clock.advance(delay - 0.5)
            self.assertEqual(server.sent(), [])
            self.clock.advance(0.5)
            self.assertEqual(server.sent(), ["alice"])
        server.say(*taken)
        self.assertEqual(server.sent(), ["alice2"])
        server.say("! The name alice2 is taken. Choose another one.", "* Enter your screen name:")
        self.assertEqual(server.sent(), ["alice3"])
        server.welcome("alice3")
        self.assertEqual(self.display.take(), [
            ("problem", "The name alice is still taken, probably by the connection that"
                        " dropped; asking again in 1 s."),
            ("problem", "The name alice is still taken, probably by the connection that"
                        " dropped; asking again in 2 s."),
            ("problem", "alice is still taken; signing in as alice2 instead."),
            ("problem", "alice2 is still taken; signing in as alice3 instead."),
            ("status", "Signed in again as alice3 (alice is still taken).")])
        self.assertEqual((self.client.name, self.client.wantedName), ("alice3", "alice"))

    def test_typedWhileOffline(self):
        self.start()
        self.signIn()
        FakeServer(self.client.connection).close()
        self.display.take()
        self.assertFalse(self.client.lineTyped("hello?"))
        self.assertEqual(self.client.prompt(), "(offline)> ")
        self.assertEqual(self.display.take(), [("problem", "Not connected, so that was not"
                                                " sent: press Enter again once reconnected.")])
        self.client.inputEnded()  # Ctrl-D while offline: leave
        self.assertEqual((self.exit, self.clock.getDelayedCalls()), ([0], []))

    def test_endOfInputSaysQuit(self):
        self.start(reconnect=False)
        server = self.signIn()
        self.client.inputEnded()
        self.assertEqual(server.sent(), ["quit"])
        server.close()
        self.assertEqual(self.exit, [0])

    def test_endOfInputBeforeAName(self):
        self.start(reconnect=False)
        server = self.endpoint.accept()
        server.say(PROMPT)
        self.client.inputEnded()
        self.assertTrue(server.transport.disconnecting)  # nothing to say quit to
        self.assertEqual(server.sent(), [])
        server.close()
        self.assertEqual(self.exit, [0])

    def test_endOfInputAfterAName(self):
        """A name on its way: its answer decides between quit and just leaving."""
        self.start(reconnect=False)
        server = self.endpoint.accept()
        self.client.lineTyped("alice")
        self.client.inputEnded()
        self.assertEqual(server.sent(), ["alice"])
        server.welcome("alice")
        self.assertEqual(server.sent(), ["quit"])

        self.setUp()
        self.start(reconnect=False)
        server = self.endpoint.accept()
        self.client.lineTyped("bad name")
        self.client.inputEnded()
        self.assertFalse(server.transport.disconnecting)
        server.say("! A screen name is 1 to 20 letters.", "* Enter your screen name:")
        self.assertTrue(server.transport.disconnecting)

    def test_quitBeforeTheWelcome(self):
        """A script's own quit, sent before its name was taken, is not said twice."""
        self.start(reconnect=False)
        server = self.endpoint.accept()
        for line in ["taken", "alice", "quit"]:
            self.client.lineTyped(line)
        self.client.inputEnded()
        server.say("! The name taken is taken.", "* Enter your screen name:")
        server.welcome("alice")
        self.assertEqual(server.sent(), ["taken", "alice", "quit"])

    def startSeveral(self, count=3, reconnect=True):
        """A client with C{count} servers: chat:3000 (self.endpoint), chat2:3000, ..."""
        self.endpoints = [self.endpoint] + [FakeEndpoint() for _ in range(count - 1)]
        others = [ServerAddress(endpoint, f"chat{n}:3000", None)
                  for n, endpoint in enumerate(self.endpoints[1:], 2)]
        self.client = ChatClient(self.endpoint, "chat:3000", self.display,
                                 reconnect=reconnect, clock=self.clock, others=others)
        self.client.start().addCallback(self.exit.append)
        return self.client

    def attempts(self):
        return [len(endpoint.attempts) for endpoint in self.endpoints]

    def test_firstServerThatAnswers(self):
        """In order, at once, from the first; those after the one that answers are not tried."""
        self.startSeveral()
        self.assertEqual(self.attempts(), [1, 0, 0])
        self.endpoint.refuse()
        self.assertEqual(self.attempts(), [1, 1, 0])
        self.endpoints[1].accept()
        self.assertEqual(self.attempts(), [1, 1, 0])
        self.assertEqual(self.display.take(), [
            ("problem", "Could not connect to chat:3000: connection refused (is the server"
                        " running?). Trying chat2:3000..."),
            ("status", "Connected to server chat2:3000")])
        self.assertEqual((self.client.where, self.clock.getDelayedCalls()), ("chat2:3000", []))

    def test_noServerAnswers(self):
        self.startSeveral(2)
        self.endpoint.refuse()
        self.endpoints[1].refuse()
        self.assertEqual(self.exit, [1])
        self.assertEqual(self.display.take(), [
            ("problem", "Could not connect to chat:3000: connection refused (is the server"
                        " running?). Trying chat2:3000..."),
            ("problem", "Could not connect to chat2:3000: connection refused (is the server"
                        " running?).")])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_reconnectsToTheNextServers(self):
        """After a drop: the next server, then each in turn, with the usual back-off."""
        self.startSeveral()
        self.endpoint.refuse()
        server = self.endpoints[1].accept()  # on chat2
        server.say(PROMPT)
        self.client.lineTyped("alice")
        server.welcome("alice")
        self.client.lineTyped("join kitchen")
        server.say("* You joined kitchen. Here: no one else.")
        self.display.take()
        server.close()
        delays = []
        for endpoint in [self.endpoints[2], self.endpoints[0], self.endpoints[1]]:
            (call,) = self.clock.getDelayedCalls()
            delays.append(call.getTime() - self.clock.seconds())
            self.clock.advance(delays[-1])
            endpoint.refuse()
        self.assertEqual(delays, [1, 2, 4])
        self.assertEqual(self.attempts(), [2, 2, 1])
        self.clock.advance(8)
        server = self.endpoints[2].accept()  # chat3, again
        self.assertEqual(self.display.take(), [
            ("problem", "Lost the connection to chat2:3000: the server closed the connection."
                        " Reconnecting in 1 s."),
            ("status", "Reconnecting to chat3:3000 (attempt 1)..."),
            ("problem", "Could not reconnect: connection refused (is the server running?)."
                        " Next attempt in 2 s."),
            ("status", "Reconnecting to chat:3000 (attempt 2)..."),
            ("problem", "Could not reconnect: connection refused (is the server running?)."
                        " Next attempt in 4 s."),
            ("status", "Reconnecting to chat2:3000 (attempt 3)..."),
            ("problem", "Could not reconnect: connection refused (is the server running?)."
                        " Next attempt in 8 s."),
            ("status", "Reconnecting to chat3:3000 (attempt 4)..."),
            ("status", "Connected to server chat3:3000")])
        server.say(PROMPT)
        self.assertEqual(server.sent(), ["alice"])  # signs in again on the other server
        server.welcome("alice")
        self.assertEqual(server.sent(), ["join kitchen"])
        self.assertEqual(self.display.take(), [("status", "Signed in again as alice.")])
        server.close()  # lost again: the next after chat3 is chat
        self.clock.advance(1)
        self.assertEqual(self.attempts(), [3, 2, 2])
        self.assertEqual(self.display.take()[-1],
                         ("status", "Reconnecting to chat:3000 (attempt 1)..."))

    def test_severalServersWithoutReconnecting(self):
        """Pipes and --plain: the servers are tried at the start only."""
        self.startSeveral(2, reconnect=False)
        server = self.signIn()
        server.close()
        self.assertEqual(self.exit, [1])
        self.assertEqual(self.attempts(), [1, 0])

    def test_tlsOfTheServerTried(self):
        """A TLS failure is explained by the check of the server that was tried."""
        checks = [object(), object()]
        endpoints = [FakeEndpoint(), FakeEndpoint()]
        client = ChatClient(endpoints[0], "a", self.display, reconnect=False, clock=self.clock,
                            tls=checks[0], others=[ServerAddress(endpoints[1], "b", checks[1])])
        client.start()
        self.assertIs(client.tls, checks[0])
        endpoints[0].refuse()
        self.assertEqual((client.tls, client.endpoint, client.where),
                         (checks[1], endpoints[1], "b"))

    def test_leave(self):
        self.start()
        server = self.signIn()
        done = self.client.leave()
        self.assertTrue(server.transport.disconnecting)
        self.assertNoResult(done)
        server.close()
        self.assertEqual(self.exit, [0])
        self.successResultOf(done)
        self.successResultOf(self.client.whenDone())


class PipeDisplayTests(TestCase):
    """Plain lines: stdin to the client, the server's lines to stdout."""

    def setUp(self):
        self.errors = []
        self.display = PipeDisplay(stdio=lambda p: p.makeConnection(StringTransport()),
                                   errors=self.errors.append)
        self.typed = []
        self.ended = []
        client = self.client = type("Client", (), {})()
        client.lineTyped = self.typed.append
        client.inputEnded = lambda: self.ended.append(True)
        client.leave = lambda: self.ended.append("leave")
        client.done = False
        self.display.start(client)
        self.transport = self.display.transport

    def test_readsOnlyOnceConnected(self):
        self.assertEqual(self.transport.producerState, "paused")
        self.display.serverConnected()
        self.assertEqual(self.transport.producerState, "producing")

    def test_linesIn(self):
        self.display.dataReceived(b"alice\r\nhello w\xc3\xb6rld\nno newline")
        self.display.readConnectionLost()
        self.assertEqual(self.typed, ["alice", "hello w\u00f6rld", "no newline"])
        self.assertEqual(self.ended, [True])

    def test_stopWhenStdoutIsGone(self):
        """Once no one reads stdout (a pipe's reader died), stopping waits for nothing."""
        self.display.writeConnectionLost()
        self.assertEqual(self.ended, ["leave"])
        self.successResultOf(self.display.stop())

    def test_stopFlushes(self):
        self.display.show("last words")
        stopped = self.display.stop()
        self.assertTrue(self.transport.disconnecting)
        self.assertNoResult(stopped)
        self.display.connectionLost(Failure(ConnectionDone()))
        self.successResultOf(stopped)

    def test_linesOut(self):
        self.display.show("<bob> h\u00e9")
        self.display.status("Connected to server x")
        self.display.status("Lost it.", problem=True)
        self.assertEqual(self.transport.value(),
                         "<bob> h\u00e9\nConnected to server x\n".encode("utf-8"))
        self.assertEqual(self.errors, [b"Lost it.\n"])

"""
How `twistd chatroom` starts: a refusal is one line and an exit status, and
its log file is bounded (chatsvc.startup, chatsvc.logs).
"""

import io
import os
import re
import select
import signal
import socket
import subprocess
import sys

from twisted.application.service import Application
from twisted.internet import defer, endpoints, protocol, reactor
from twisted.logger import ILogObserver, LogPublisher, textFileLogObserver
from twisted.python import usage
from twisted.trial.unittest import SkipTest, TestCase

from chatsvc import logs, startup
from chatsvc.tap import Options, makeService
from tests.e2e import LOOPBACK, PROJECT_ROOT, ServerProcess, connect
from tests.support import coroutine

try:
    from tests.test_tls import selfSignedCertificate
except ImportError:  # pragma: no cover (no tls extra)
    selfSignedCertificate = None


def heldPort(case):
    """A port on 127.0.0.1 that something else listens on, for the test's length."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    case.addCleanup(holder.close)
    return holder.getsockname()[1]


def twistdOptions():
    """Options as twistd's own, with chatroom as the subcommand being parsed."""
    options = usage.Options()
    options.subCommand = "chatroom"
    return options


def parse(*argv, parent=None):
    options = Options()
    options.parent = parent
    options.parseOptions(list(argv))
    return options


class RefusalTests(TestCase):
    """A bad option, under twistd: one line, exit status 2, no help text."""

    def refusal(self, *argv):
        err, out = io.StringIO(), io.StringIO()
        self.patch(sys, "stderr", err)
        self.patch(sys, "stdout", out)
        caught = self.assertRaises(SystemExit, parse, *argv, parent=twistdOptions())
        self.assertEqual(caught.code, startup.BAD_OPTION)
        self.assertEqual(out.getvalue(), "")
        lines = err.getvalue().splitlines()
        self.assertEqual(len(lines), 1, lines)
        return lines[0]

    def test_badValueIsOneLine(self):
        self.assertEqual(
            self.refusal("--max-clients", "0"),
            "twistd chatroom: --max-clients takes a whole number from 1 to 100000,"
            " not '0'. Try twistd chatroom --help.")

    def test_unknownOptionIsOneLine(self):
        self.assertEqual(self.refusal("--max-clientz", "3"),
                         "twistd chatroom: option --max-clientz not recognized."
                         " Try twistd chatroom --help.")

    def test_missingArgumentIsOneLine(self):
        self.assertIn("--db", self.refusal("--db"))

    def test_helpStillHelps(self):
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        caught = self.assertRaises(SystemExit, parse, "--help", parent=twistdOptions())
        self.assertEqual(caught.code, 0)
        self.assertIn("--listen", out.getvalue())

    def test_parsedAloneRaisesUsageError(self):
        """Outside twistd (tests, other programs) the UsageError is the caller's."""
        e = self.assertRaises(usage.UsageError, parse, "--max-clients", "0")
        self.assertIn("--max-clients", str(e))


class ListenCheckTests(TestCase):
    """--listen is checked as far as it can be without listening."""

    def test_portOutOfRange(self):
        for description, port in [("tcp:99999", 99999), ("tcp:-1", -1),
                                  ("tcp:port=65536:interface=127.0.0.1", 65536),
                                  (r"tcp6:70000:interface=\:\:1", 70000)]:
            e = self.assertRaises(usage.UsageError, parse, "--listen", description)
            self.assertEqual(str(e), f"--listen {description}: a port is from 0 to 65535,"
                                     f" not {port}.")

    def test_tlsPortOutOfRange(self):
        if selfSignedCertificate is None:
            raise SkipTest("TLS needs the tls extra")
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        selfSignedCertificate(folder)
        description = f"ssl:70000:privateKey={folder}/key.pem:certKey={folder}/cert.pem"
        e = self.assertRaises(usage.UsageError, parse, "--listen", description)
        self.assertIn("a port is from 0 to 65535, not 70000.", str(e))

    def test_tlsWithoutTheExtraSaysHowToGetIt(self):
        def withoutOpenSSL(reactor, description):  # what Twisted raises without pyOpenSSL
            raise ModuleNotFoundError("No module named 'OpenSSL'")
        self.patch(endpoints, "serverFromString", withoutOpenSSL)
        e = self.assertRaises(usage.UsageError, parse, "--listen",
                              "ssl:3443:privateKey=key.pem:certKey=cert.pem")
        self.assertTrue(str(e).startswith("--listen ssl:3443:privateKey=key.pem:certKey=cert.pem:"
                                          " TLS needs the tls extra ("), str(e))
        self.assertTrue(str(e).endswith("): pip install 'chatsvc[tls]'"), str(e))

    def test_usableAddresses(self):
        for description in ["tcp:0", "tcp:65535", "tcp:3000:interface=127.0.0.1",
                            "unix:/tmp/chat.sock"]:
            self.assertEqual(parse("--listen", description)["listen"], [description])


class CountingEndpoint:
    """An endpoint that counts how often it is asked to listen."""

    def __init__(self, description):
        self.endpoint = endpoints.serverFromString(reactor, description)
        self.ports = []

    def listen(self, factory):
        def listening(port):
            self.ports.append(port)
            return port
        return self.endpoint.listen(factory).addCallback(listening)


class ListenerTests(TestCase):
    """Failing to listen names the --listen address and says why, in a few words."""

    def listener(self, description):
        return startup.Listener(CountingEndpoint(description),
                                protocol.Factory.forProtocol(protocol.Protocol), description)

    def test_addressInUse(self):
        description = f"tcp:{heldPort(self)}:interface=127.0.0.1"
        e = self.assertRaises(startup.CannotStart,
                              self.listener(description).privilegedStartService)
        self.assertEqual(str(e), f"--listen {description}: the address is in use"
                                 " (is another server running?)")

    def test_noSuchAddress(self):
        description = "tcp:0:interface=192.0.2.1"  # TEST-NET-1: on no machine
        e = self.assertRaises(startup.CannotStart,
                              self.listener(description).privilegedStartService)
        self.assertEqual(str(e), f"--listen {description}: this machine has no such address")

    def test_privilegedPort(self):
        if os.geteuid() == 0:
            raise SkipTest("root may listen on any port")
        description = "tcp:1:interface=127.0.0.1"
        e = self.assertRaises(startup.CannotStart,
                              self.listener(description).privilegedStartService)
        self.assertIn("permission denied (ports below 1024", str(e))

    def test_listensOnce(self):
        """Listening at adoption, the later privilegedStartService and startService do not listen again."""
        listener = self.listener(LOOPBACK)
        listener.listenNow()
        listener.privilegedStartService()
        listener.startService()
        self.assertEqual(len(listener.endpoint.ports), 1)
        self.assertTrue(listener.endpoint.ports[0].connected)
        return listener.stopService()


def listeners(top):
    return [service for service in top if isinstance(service, startup.Listener)]


class AdoptionTests(TestCase):
    """What the service tree does when twistd makes it the child of its Application."""

    def server(self, *argv, twistd):
        options = parse("--db", os.path.abspath(self.mktemp()), *argv)
        options.parent = twistd
        top = makeService(options)
        self.addCleanup(lambda: defer.gatherResults(
            [listener.endpoint.port.stopListening() for listener in listeners(top)
             if listener.endpoint.port]))
        return top

    def test_listensWhenTwistdAdoptsIt(self):
        top = self.server("--listen", LOOPBACK, twistd={"nodaemon": True})
        application = Application("chatroom")
        top.setServiceParent(application)
        listener, = listeners(top)
        self.assertTrue(listener.endpoint.port.connected)
        self.assertIsNone(application.getComponent(ILogObserver, None))  # the terminal

    def test_notUnderTwistd(self):
        top = self.server("--listen", LOOPBACK, twistd=None)
        top.setServiceParent(Application("chatroom"))
        listener, = listeners(top)
        self.assertIsNone(listener.endpoint.port)  # listens when started, as usual

    def test_busyAddressIsOneLine(self):
        description = f"tcp:{heldPort(self)}:interface=127.0.0.1"
        top = self.server("--listen", LOOPBACK, "--listen", description,
                          twistd={"nodaemon": True})
        err = io.StringIO()
        self.patch(sys, "stderr", err)
        caught = self.assertRaises(SystemExit, top.setServiceParent, Application("chatroom"))
        self.assertEqual(caught.code, startup.CANNOT_START)
        self.assertEqual(err.getvalue(), f"twistd chatroom: --listen {description}:"
                                         " the address is in use (is another server running?)\n")

    def test_daemonGetsTheBoundedLogFile(self):
        self.addCleanup(signal.signal, signal.SIGUSR1, signal.getsignal(signal.SIGUSR1))
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        path = os.path.abspath(self.mktemp())
        top = self.server("--listen", LOOPBACK, "--log-keep", "3",
                          twistd={"nodaemon": False, "logfile": path})
        application = Application("chatroom")
        top.setServiceParent(application)
        LogPublisher(application.getComponent(ILogObserver))(
            {"log_format": "a line for the file", "log_time": 0})
        with open(path) as f:
            self.assertIn("a line for the file", f.read())
        self.assertNotEqual(signal.getsignal(signal.SIGUSR1), signal.SIG_DFL)  # rotates


class LogFileTests(TestCase):
    """Which log file, and that it stays bounded."""

    def logFile(self, twistd, *argv):
        found = logs.logFileFor(twistd, parse(*argv))
        if found is not None:
            self.addCleanup(found.close)
        return found

    def test_twistdKeepsTheTerminalSyslogAndLogger(self):
        for twistd in [{"nodaemon": True}, {"nodaemon": True, "logfile": "-"},
                       {"nodaemon": False, "logfile": "-"}, {"nodaemon": False, "syslog": True},
                       {"nodaemon": False, "logger": lambda: None}]:
            self.assertIsNone(self.logFile(twistd), twistd)

    def test_daemonDefaultsToTwistdLog(self):
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(folder)
        found = self.logFile({"nodaemon": False})
        self.assertEqual((found.path, found.rotateLength, found.maxRotatedFiles),
                         (os.path.join(folder, "twistd.log"), 10 * logs.MEGABYTE, 5))

    def test_logfileWithNoDaemon(self):
        path = os.path.abspath(self.mktemp())
        found = self.logFile({"nodaemon": True, "logfile": path},
                             "--log-size", "2", "--log-keep", "1")
        self.assertEqual((found.path, found.rotateLength, found.maxRotatedFiles),
                         (path, 2 * logs.MEGABYTE, 1))

    def test_cannotOpen(self):
        path = os.path.abspath(os.path.join(self.mktemp(), "chat.log"))
        e = self.assertRaises(logs.CannotOpen, self.logFile, {"logfile": path})
        self.assertEqual(str(e), f"--logfile {path}: No such file or directory")

    def test_staysBounded(self):
        """Seven megabytes of events through the observer leave at most 3 files of about 1 MB."""
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        logFile = self.logFile({"logfile": os.path.join(folder, "chat.log")},
                               "--log-size", "1", "--log-keep", "2")
        publisher = LogPublisher(textFileLogObserver(logFile))
        for _ in range(70):
            publisher({"log_format": "{line}", "line": "x" * 100_000, "log_time": 0})
        self.assertEqual(sorted(os.listdir(folder)), ["chat.log", "chat.log.1", "chat.log.2"])
        for name in os.listdir(folder):
            self.assertLessEqual(os.path.getsize(os.path.join(folder, name)),
                                 logs.MEGABYTE + 100_100)

    def test_options(self):
        options = parse()
        self.assertEqual((options["log-size"], options["log-keep"]), (10, 5))
        self.assertEqual((parse("--log-size", "50", "--log-keep", "20")["log-size"]), 50)
        for argv in [["--log-size", "0"], ["--log-size", "big"], ["--log-keep", "0"],
                     ["--log-keep", "1001"]]:
            e = self.assertRaises(usage.UsageError, parse, *argv)
            self.assertIn(argv[0], str(e))


def twistd(case, *argv, folder=None):
    """Run the real twistd in a folder of its own; the result and the folder."""
    if folder is None:
        folder = os.path.abspath(case.mktemp())
        os.makedirs(folder)
    result = subprocess.run(
        [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", *argv],
        cwd=folder, env=dict(os.environ, PYTHONPATH=PROJECT_ROOT),
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    return result, folder


class _OneLine:
    def assertOneLine(self, result, status, line):
        self.assertEqual((result.returncode, result.stderr, result.stdout),
                         (status, line + "\n", ""))


class TwistdTests(_OneLine, TestCase):
    """The real twistd, as a person runs it, with -n and daemonized."""

    def test_busyAddress(self):
        description = f"tcp:{heldPort(self)}:interface=127.0.0.1"
        for mode in [["-n", "--pidfile="], ["--pidfile=twistd.pid"]]:
            result, folder = twistd(self, *mode, "chatroom", "--listen", description)
            self.assertOneLine(result, 1, f"twistd chatroom: --listen {description}:"
                                          " the address is in use (is another server running?)")
            self.assertEqual(os.listdir(folder), [], mode)  # no pid file, no log left behind

    def test_portOutOfRange(self):
        for mode in [["-n", "--pidfile="], ["--pidfile=twistd.pid"]]:
            result, _ = twistd(self, *mode, "chatroom", "--listen", "tcp:99999")
            self.assertOneLine(result, 2, "twistd chatroom: --listen tcp:99999: a port is"
                                          " from 0 to 65535, not 99999. Try twistd chatroom --help.")

    def test_badOptionWithoutTheHelp(self):
        for mode in [["-n", "--pidfile="], ["--pidfile=twistd.pid"]]:
            result, _ = twistd(self, *mode, "chatroom", "--flood-burst", "lots")
            self.assertOneLine(result, 2, "twistd chatroom: --flood-burst takes a whole number"
                                          " from 1 to 10000, not 'lots'. Try twistd chatroom --help.")

    @coroutine
    async def test_daemonServesAndItsLogIsBounded(self):
        """
        A daemon (listening since before twistd forked) serves; started beside
        a full twistd.log and 5 rotated files, it rotates at once and keeps
        --log-keep of them (twistd alone would keep all 6).
        """
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        with open(os.path.join(folder, "twistd.log"), "wb") as f:
            f.write(b"x" * logs.MEGABYTE)
        for n in range(1, 6):
            with open(os.path.join(folder, f"twistd.log.{n}"), "wb") as f:
                f.write(b"old\n")
        result, _ = twistd(self, "--pidfile=twistd.pid", "chatroom", "--listen", LOOPBACK,
                           "--log-size", "1", "--log-keep", "2", folder=folder)
        self.assertEqual((result.returncode, result.stdout, result.stderr), (0, "", ""))
        with open(os.path.join(folder, "twistd.pid")) as f:
            pid = int(f.read())
        self.addCleanup(stopDaemon, pid)
        self.assertEqual(sorted(name for name in os.listdir(folder) if "log" in name),
                         ["twistd.log", "twistd.log.1", "twistd.log.2"])
        with open(os.path.join(folder, "twistd.log")) as f:
            port = int(re.search(r"Hosting at 127\.0\.0\.1:(\d+) ", f.read()).group(1))
        alice = await connect(port, "alice")
        await alice.bye()

    @coroutine
    async def test_noDaemonLogsToTheTerminal(self):
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        server = ServerProcess.start(folder, "--log-keep", "1")
        await server.port  # read from its stdout: the terminal
        await server.kill(signal.SIGTERM)
        self.assertEqual([name for name in os.listdir(folder) if "log" in name], [])


def stopDaemon(pid):
    """SIGTERM the daemon C{pid} and wait until it has gone."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return  # gone already
    try:
        os.kill(pid, signal.SIGTERM)
        select.select([handle], [], [], 30)  # readable once the process has exited
    finally:
        os.close(handle)


class DatabaseCheckTests(_OneLine, TestCase):
    """The database is checked before twistd daemonizes: a refusal reaches the terminal."""

    def test_databaseInUseIsOneLine(self):
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        db = os.path.join(folder, "chat.sqlite3")
        from chatsvc.store.sqlite import SQLiteStore
        held = SQLiteStore(db)._lock()  # as a running server holds it
        self.addCleanup(held.close)
        for mode in [["-n", "--pidfile="], ["--pidfile=twistd.pid"]]:
            result, _ = twistd(self, *mode, "chatroom", "--listen", LOOPBACK, "--db", db)
            self.assertOneLine(result, 1, f"twistd chatroom: --db {db}: The database {db} is in"
                                          " use by another process (another server?). Only one"
                                          " server can use a database at a time: stop the other"
                                          " one, or give this one a database of its own.")

    def test_folderIsNotADatabase(self):
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        e = self.assertRaises(usage.UsageError, parse, "--db", folder)
        self.assertEqual(str(e), f"--db {folder!r} is a folder; give a file in it, such as"
                                 f" {os.path.join(folder, 'chatroom.sqlite3')}.")

"""The command line: `twistd chatroom` options and the service they build."""

import os
import subprocess
import sys

from twisted.application.internet import StreamServerEndpointService
from twisted.python import usage
from twisted.trial.unittest import TestCase

from chatsvc.lobby import Lobby
from chatsvc.settings import Settings
from chatsvc.tap import Options, makeService
from tests.e2e import PROJECT_ROOT


class OptionsTests(TestCase):
    def parse(self, *argv):
        options = Options()
        options.parseOptions(list(argv))
        return options

    def test_defaults(self):
        options = self.parse()
        self.assertEqual(options["listen"], ["tcp:3000"])
        self.assertEqual(options["db"], "chatroom.sqlite3")
        self.assertEqual(options["durability"], "full")
        self.assertEqual(options.settings, Settings())
        self.assertEqual((options.settings.max_clients, options.settings.max_line,
                          options.settings.history_replay), (10, 2048, 50))

    def test_everyOption(self):
        db = os.path.abspath(self.mktemp())
        options = self.parse("--listen", "tcp:4000", "--listen", "unix:/tmp/chat.sock",
                             "--db", db, "--max-clients", "500", "--max-line", "512",
                             "--history-replay", "0", "--flood-rate", "2.5",
                             "--flood-burst", "3", "--max-output-buffer", "65536",
                             "--login-timeout", "15", "--idle-timeout", "600")
        self.assertEqual(options["listen"], ["tcp:4000", "unix:/tmp/chat.sock"])
        self.assertEqual(options["db"], db)
        self.assertEqual(options.settings, Settings(
            max_clients=500, max_line=512, history_replay=0, flood_rate=2.5, flood_burst=3,
            max_output_buffer=65536, login_timeout=15, idle_timeout=600))

    def test_abuseDefaults(self):
        settings = self.parse().settings
        self.assertEqual((settings.flood_rate, settings.flood_burst, settings.max_output_buffer,
                          settings.login_timeout, settings.idle_timeout),
                         (5, 10, 1024 * 1024, 60, 0))

    def test_badValuesNameTheOption(self):
        for argv, named in [
            (["--max-clients", "0"], "--max-clients"),
            (["--max-clients", "ten"], "--max-clients"),
            (["--max-line", "10"], "--max-line"),
            (["--history-replay", "-1"], "--history-replay"),
            (["--history-replay", "501"], "--history-replay"),
            (["--listen", "tcp:notaport"], "--listen"),
            (["--listen", "carrier-pigeon:3000"], "--listen"),
            (["--db", "/no/such/folder/chat.sqlite3"], "--db"),
            (["--durability", "sometimes"], "--durability"),
            (["--flood-rate", "-1"], "--flood-rate"),
            (["--flood-rate", "fast"], "--flood-rate"),
            (["--flood-burst", "0"], "--flood-burst"),
            (["--max-output-buffer", "100"], "--max-output-buffer"),
            (["--login-timeout", "soon"], "--login-timeout"),
            (["--idle-timeout", "-5"], "--idle-timeout"),
        ]:
            e = self.assertRaises(usage.UsageError, self.parse, *argv)
            self.assertIn(named, str(e), argv)

    def test_helpDocumentsEveryOption(self):
        text = str(Options())
        for option in ["--listen", "--db", "--durability", "--max-clients", "--max-line", "--history-replay",
                       "--flood-rate", "--flood-burst", "--max-output-buffer",
                       "--login-timeout", "--idle-timeout", "--irc", "--irc-server-name",
                       "--irc-password", "--irc-ping-interval", "--oper"]:
            self.assertIn(option, text)

    def test_serviceTree(self):
        options = self.parse("--listen", "tcp:0:interface=127.0.0.1",
                             "--listen", r"tcp6:0:interface=\:\:1",
                             "--db", os.path.abspath(self.mktemp()))
        lobby, _, addresses, *listeners = makeService(options)
        self.assertIsInstance(lobby, Lobby)
        self.assertEqual(len(listeners), 2)
        self.assertEqual(lobby.store.durability, "full")
        for listener in listeners:
            self.assertIsInstance(listener, StreamServerEndpointService)
            self.assertIs(listener.factory.lobby, lobby)


class IrcOptionsTests(TestCase):
    def parse(self, *argv):
        options = Options()
        options.parseOptions(list(argv))
        return options

    def test_offByDefault(self):
        options = self.parse("--db", os.path.abspath(self.mktemp()))
        self.assertEqual(options["irc"], [])
        self.assertTrue(options["irc-server-name"])  # the host's name
        _, _, _, *listeners = makeService(options)
        self.assertEqual(len(listeners), 1)

    def test_ircDoorSharesTheLobbyAndLimits(self):
        options = self.parse("--irc", "tcp:0:interface=127.0.0.1", "--irc", "tcp:0",
                             "--irc-server-name", "irc.example.org",
                             "--irc-password", "sesame", "--irc-ping-interval", "30",
                             "--oper", "admin:secret",
                             "--db", os.path.abspath(self.mktemp()))
        lobby, _, addresses, native, *irc = makeService(options)
        self.assertEqual(len(irc), 2)
        factory = irc[0].factory
        self.assertEqual((factory.serverName, factory.password, factory.pingInterval,
                          factory.operators),
                         ("irc.example.org", "sesame", 30.0, {"admin": "secret"}))
        self.assertIs(factory.lobby, lobby)
        self.assertIs(factory.addresses, native.factory.addresses)
        self.assertIs(factory.pacer, native.factory.pacer)

    def test_badValues(self):
        for argv, words in [(["--irc-server-name", "bad name"], "--irc-server-name"),
                            (["--irc", "nonsense:1"], "--irc"),
                            (["--oper", "nopassword"], "--oper NAME:PASSWORD"),
                            (["--irc-ping-interval", "-1"], "--irc-ping-interval")]:
            with self.assertRaises(usage.UsageError) as caught:
                self.parse(*argv)
            self.assertIn(words.split()[0], str(caught.exception), argv)


class TwistdTests(TestCase):
    """`twistd` itself, as a user runs it."""

    def twistd(self, *argv):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        return subprocess.run(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", *argv],
            cwd=directory, env=dict(os.environ, PYTHONPATH=PROJECT_ROOT),
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)

    def test_listedInHelp(self):
        result = self.twistd("--help")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout, r"\n\s+chatroom\s+A line-based chat server")

    def test_badOptionRefusedBeforeListening(self):
        result = self.twistd("-n", "--pidfile=", "chatroom", "--listen",
                             "tcp:0:interface=127.0.0.1", "--history-replay", "lots")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("--history-replay takes a whole number from 0 to 500, not 'lots'",
                      result.stdout + result.stderr)
        self.assertNotIn("Hosting at", result.stdout + result.stderr)


class MonotonicClockTests(TestCase):
    """The server's timers run on a monotonic clock: a wall clock stepped back holds nobody."""

    def test_reactorTimersGoMonotonic(self):
        import time

        from twisted.internet.testing import MemoryReactorClock

        from chatsvc.tap import _monotonic
        reactor = MemoryReactorClock()
        _monotonic(reactor)
        self.assertIs(reactor.seconds, time.monotonic)

    def test_timersAlreadyPendingKeepTheirClock(self):
        from twisted.internet.task import Clock

        from chatsvc.tap import _monotonic
        clock = Clock()
        clock.getDelayedCalls = lambda: [object()]
        before = clock.seconds
        _monotonic(clock)
        self.assertEqual(clock.seconds, before)

"""
Durability: acknowledged messages survive `kill -9` of the real server process.
"""

import os

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from tests.e2e import ServerProcessTests


class CrashTests(ServerProcessTests, TestCase):
    def startServer(self):
        return super().startServer("--history-replay", "7", "--flood-rate", "0")

    @defer.inlineCallbacks
    def test_acknowledgedMessagesSurviveKill9(self):
        server, port = yield self.startServer()
        alice = yield self.connect(port, "alice")
        bob = yield self.connect(port, "bob")
        alice.send("create kitchen")
        yield alice.waitFor("* You joined kitchen.")
        bob.send("join kitchen")
        yield bob.waitFor("* You joined kitchen.")
        # Two senders, interleaved; each echo is an acknowledgement.
        for n in range(60):
            alice.send(f"a{n}")
            bob.send(f"b{n}")
        yield alice.waitFor("<alice> a59")
        yield bob.waitFor("<bob> b59")
        # More in flight at the moment of the crash: these may or may not be kept.
        for n in range(60, 200):
            alice.send(f"a{n}")
        acknowledged = [line for line in alice.lines if line.startswith("<")]
        exitCode = yield server.kill()
        self.assertIsNone(exitCode)  # killed by a signal, not exited
        yield defer.gatherResults([alice.closed, bob.closed])

        server, port = yield self.startServer()
        carol = yield self.connect(port, "carol")
        carol.send("join kitchen")
        carol.send("who")  # its answer marks the end of the join's replay
        joined = yield carol.waitFor("* In kitchen")
        self.assertIn("older messages: type history to see them.", joined[1])
        history = [line for line in joined if line.startswith("[")]
        self.assertEqual(len(history), 7)
        while True:
            carol.send("history 40")
            page = yield carol.waitFor(lambda line: line.startswith("* That is the beginning")
                                       or line.startswith("* ") and "type history to see more" in line)
            history = [line for line in page if line.startswith("[")] + history
            if page[-1].startswith("* That is the beginning"):
                break
        said = [line.split("] ", 1)[1] for line in history]
        # Everything acknowledged is there, in the order it was delivered ...
        self.assertEqual(said[:len(acknowledged)], acknowledged)
        # ... followed only by messages alice sent after, in order, none twice.
        rest = said[len(acknowledged):]
        self.assertEqual(rest, [f"<alice> a{n}" for n in range(60, 60 + len(rest))])

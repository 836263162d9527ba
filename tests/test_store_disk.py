"""
The disk under the real server: its database removed or moved away while it
runs. Nothing is acknowledged that a restart would not find, and the operator
is told once, not once per message.
"""

import os
import shutil

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from tests.e2e import ServerProcessTests

NOT_SAVED = ("! Your message could not be saved, so it was not sent. The server has lost its"
             " database: please tell its operator.")
LOST = "was removed or replaced while the server was running"


class DatabaseRemovedTests(ServerProcessTests, TestCase):
    def setUp(self):
        super().setUp()
        self.folder = os.path.join(self.directory, "data")
        os.makedirs(self.folder)
        self.db = os.path.join(self.folder, "chat.sqlite3")

    def startServer(self):
        return super().startServer("--db", self.db, "--flood-rate", "0")

    @defer.inlineCallbacks
    def aliceInKitchen(self):
        server, port = yield self.startServer()
        alice = yield self.connect(port, "alice")
        alice.send("create kitchen")
        yield alice.waitFor("* You joined kitchen.")
        alice.send("before")
        yield alice.waitFor("<alice> before")
        return server, alice

    @defer.inlineCallbacks
    def sayTen(self, alice):
        """Ten messages after the loss: ten refusals, and none echoed as stored."""
        for n in range(10):
            alice.send(f"after {n}")
        refusals = 0
        while refusals < 10:
            seen = yield alice.waitFor(lambda line: line == NOT_SAVED or line.startswith("<"))
            self.assertEqual(seen[-1], NOT_SAVED)
            refusals += 1
        alice.send("who")  # its answer comes after anything else the server had to say
        seen = yield alice.waitFor("* In kitchen")
        self.assertEqual([line for line in seen if line.startswith("<")], [])

    @defer.inlineCallbacks
    def stop(self, server, alice):
        yield server.kill()
        yield alice.closed
        return "\n".join(server.output)

    @defer.inlineCallbacks
    def test_folderRemoved(self):
        server, alice = yield self.aliceInKitchen()
        shutil.rmtree(self.folder)
        yield self.sayTen(alice)
        output = yield self.stop(server, alice)
        # Said loudly, once: not a line per message.
        self.assertEqual(output.count(LOST), 1, output)
        self.assertIn(f"The database file at {self.db} {LOST}", output)

        # Restarted on the same path: an empty history, so nothing claimed stored
        # after the removal is expected to be there; and it stores again.
        os.makedirs(self.folder)
        server, port = yield self.startServer()
        bob = yield self.connect(port, "bob")
        bob.send("join kitchen")
        yield bob.waitFor("! No room named 'kitchen'.")
        bob.send("create kitchen")
        yield bob.waitFor("* You joined kitchen.")
        bob.send("stored again")
        yield bob.waitFor("<bob> stored again")

    @defer.inlineCallbacks
    def test_folderMovedAwayAndBack(self):
        """
        Everything acknowledged is there after a restart, and nothing that was
        refused: SQLite was still writing to the moved file, so the store had to
        roll those writes back, not only refuse to acknowledge them.
        """
        server, alice = yield self.aliceInKitchen()
        moved = self.folder + ".moved"
        os.rename(self.folder, moved)
        yield self.sayTen(alice)
        yield self.stop(server, alice)
        os.rename(moved, self.folder)

        server, port = yield self.startServer()
        carol = yield self.connect(port, "carol")
        carol.send("join kitchen")
        carol.send("who")  # its answer marks the end of the join's replay
        joined = yield carol.waitFor("* In kitchen")
        self.assertEqual([line.split("] ", 1)[1] for line in joined if line.startswith("[")],
                         ["<alice> before"])

"""
chatsvc-bench abuse against real server processes, with tiny parameters:
the normal users' counts are exact with and without the abusers, the
flooder loses nothing, the client that never names itself is closed at the
login timeout, the non-reader is disconnected once its output limit is
passed, and a JSON line is written. Misuse exits 2 with one line.
"""

import io
import json
import os
import sys

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from chatsvc.bench import abuse, cli, main
from tests.support import coroutine


class AbuseWorkloadTests(TestCase):
    timeout = 60

    def setUp(self):
        self.json = os.path.abspath(self.mktemp())
        self.out = io.StringIO()

    async def bench(self, *argv):
        args, workload = cli.parseArgs(["abuse", *argv, "--quiet", "--json", self.json])
        return await abuse.AbuseBench(reactor, args, workload, out=self.out).runAll()

    def records(self):
        with open(self.json) as f:
            return [json.loads(line) for line in f]

    def assertNormalUsersExact(self, m, users, messages):
        for phase in ("alone", "abused"):
            expected = users * users * messages
            self.assertEqual(
                (m[f"{phase}_delivered"], m[f"{phase}_expected"], m[f"{phase}_lost"],
                 m[f"{phase}_rows_stored"]),
                (expected, expected, 0, users * messages), phase)
            self.assertGreater(m[f"{phase}_lines_per_s"], 0)
            self.assertLessEqual(m[f"{phase}_delivery_p50_ms"], m[f"{phase}_delivery_max_ms"])
            self.assertGreater(m[f"{phase}_rss_end_kib"], 0)

    @coroutine
    async def test_tiny(self):
        """
        Two normal users, three messages each, a small flooder and a login
        timeout of 1 s: exact counts, nothing of the flooder's lost, and the
        unnamed client closed by the server with its goodbye line.
        """
        [result] = await self.bench("-N", "2", "-M", "3", "--flood-lines", "40",
                                    "--abuser-payload", "100", "--grace", "2",
                                    "--server-arg=--login-timeout=1")
        self.assertEqual((result.complete, result.errors), (True, []))
        m = result.metrics
        self.assertNormalUsersExact(m, 2, 3)
        # The flooder: everything it had read is stored, with no gap, and
        # echoed in order; every normal user saw each stored line it was sent.
        self.assertEqual((m["flood_written"], m["flood_lost"], m["flood_out_of_order"]),
                         (40, 0, 0))
        self.assertGreaterEqual(m["flood_stored"], m["flood_echoed"])
        self.assertGreater(m["flood_echoed"], 0)
        self.assertLessEqual(m["flood_seen_max"], m["flood_stored"])
        # Flood control holds the rest back: 40 lines at 5 a second take 6 s.
        self.assertLess(m["flood_stored"], 40)
        self.assertIs(m["unnamed_closed"], True)
        self.assertTrue(m["unnamed_told"].startswith("! You did not choose a screen name"))
        self.assertIn(m["nonreader_disconnected"], (True, False))
        self.assertEqual(result.server["limits"]["login_timeout"], 1)
        for phase in ("alone", "abused"):
            args = result.server[phase]["args"]
            self.assertNotIn("--flood-rate", args)  # the server's own flood limit
            self.assertIn("--login-timeout=1", args)
            self.assertEqual(result.server[phase]["tracebacks"], 0)
        [record] = self.records()
        self.assertEqual((record["bench"], record["complete"], record["params"]["users"]),
                         ("abuse", True, 2))
        self.assertEqual(record["metrics"]["abused_delivered"], 12)
        self.assertIs(record["metrics"]["unnamed_closed"], True)
        text = self.out.getvalue()
        self.assertIn("without abusers", text)
        self.assertIn("never-named: closed", text)

    @coroutine
    async def test_nonReaderDisconnected(self):
        """
        With a small output limit (and a load fast enough to pass it), the
        server disconnects the client that does not read and logs it; the
        normal users lose nothing.
        """
        [result] = await self.bench(
            "-N", "3", "-M", "40", "--rate", "40", "-P", "2000", "--flood-lines", "200",
            "--grace", "20", "--server-arg=--flood-rate=200", "--server-arg=--flood-burst=50",
            "--server-arg=--max-output-buffer=16384", "--server-arg=--login-timeout=1")
        self.assertEqual((result.complete, result.errors), (True, []))
        m = result.metrics
        self.assertNormalUsersExact(m, 3, 40)
        self.assertEqual((m["nonreader_disconnected"], m["nonreader_server_logged"]),
                         (True, True))
        self.assertGreater(m["nonreader_server_queued"], 16384)
        self.assertGreater(m["nonreader_bytes_its_way"], 16384)
        self.assertEqual(m["flood_lost"], 0)
        self.assertIs(m["unnamed_closed"], True)


class AbuseCommandLineTests(TestCase):
    def badArguments(self, *argv):
        err = io.StringIO()
        self.patch(sys, "stderr", err)
        with self.assertRaises(SystemExit) as caught:
            main(["abuse", *argv])
        self.assertEqual(caught.exception.code, 2)
        lines = err.getvalue().splitlines()
        self.assertEqual(len(lines), 1, lines)
        return lines[0]

    def test_misuse(self):
        self.assertIn("--connect does not apply", self.badArguments("--connect", "127.0.0.1:3000"))
        self.assertIn("--server-arg", self.badArguments("--server-arg=--no-such-option"))
        self.assertIn("--max-line", self.badArguments("--abuser-payload", "3000"))
        self.assertIn("from 1 to", self.badArguments("-N", "0"))
        self.assertIn("above 0", self.badArguments("--rate", "0"))

    def test_defaultLimits(self):
        """The servers get the bench's usual command but not its --flood-rate 0."""
        command = abuse.defaultLimitsCommand("x.db", 30, ["--login-timeout=5"])
        self.assertNotIn("--flood-rate", command)
        self.assertEqual(command[-5:], ["--db", "x.db", "--max-clients", "30",
                                        "--login-timeout=5"])
        self.assertIn("chatroom", command)

"""
chatsvc-bench abuse against real server processes, with tiny parameters:
the normal users (each from a loopback address of its own) are let in and
their counts are exact with and without the attackers; the flooder loses
nothing, the client that never names itself is closed at the login timeout,
the non-reader is disconnected once its output limit is passed; the
attackers that come and go from one address (reconnector, squatter, room
spammer, lister) account for every connection they tried and get no more
than the server's per-address limits allow. A JSON line is written. Misuse
exits 2 with one line.
"""

import io
import json
import os
import sys

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import TestCase

from chatsvc.bench import abuse, abuseserver, abusetable, attackers, cli, main
from chatsvc.bench.client import Native
from chatsvc.bench.run import Run
from chatsvc.bench import visits
from chatsvc.bench.visits import connectFrom, userAddresses
from tests.support import coroutine

FAST = ("--typing", "0.2", "--grace", "1", "--flood-lines", "40", "--abuser-payload", "100")
COME_AND_GO = ("reconnector", "squatter", "roomspam", "lister")


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
        """Every normal user was let in, and got every message, in both phases."""
        for phase in ("alone", "abused"):
            expected = users * users * messages
            self.assertEqual(
                (m[f"{phase}_admitted"], m[f"{phase}_not_admitted"],
                 m[f"{phase}_disconnected"]), (users, 0, 0), phase)
            self.assertEqual(
                (m[f"{phase}_delivered"], m[f"{phase}_expected"], m[f"{phase}_lost"],
                 m[f"{phase}_rows_stored"]),
                (expected, expected, 0, users * messages), phase)
            self.assertGreater(m[f"{phase}_lines_per_s"], 0)
            self.assertLessEqual(m[f"{phase}_delivery_p50_ms"], m[f"{phase}_delivery_max_ms"])
            self.assertGreater(m[f"{phase}_rss_end_kib"], 0)

    def assertAccounted(self, m, kind):
        """Each connection an attacker tried was let in or refused, and it tried."""
        tried = m[f"{kind}_tried"]
        self.assertGreater(tried, 0, kind)
        self.assertEqual(m[f"{kind}_admitted"] + m[f"{kind}_refused"], tried, kind)
        told = sum(n for n, _ in m[f"{kind}_told"])
        self.assertLessEqual(told, m[f"{kind}_refused"], kind)

    @coroutine
    async def test_tiny(self):
        """
        Two normal users, three messages each, the flooder, the non-reader
        and the never-named client, and a login timeout of 1 s: exact
        counts, nothing of the flooder's lost, and the unnamed client closed
        by the server with its goodbye line.
        """
        [result] = await self.bench("-N", "2", "-M", "3", *FAST, "--warmup", "0.5",
                                    "--attackers", "flooder,nonreader,unnamed",
                                    "--server-arg=--login-timeout=1")
        self.assertEqual((result.complete, result.errors), (True, []))
        m = result.metrics
        self.assertNormalUsersExact(m, 2, 3)
        # The flooder: everything it had read is stored, with no gap, and
        # echoed in order; every normal user saw each stored line it was sent.
        self.assertEqual((m["flood_admitted"], m["flood_written"], m["flood_lost"],
                          m["flood_out_of_order"]), (True, 40, 0, 0))
        self.assertGreaterEqual(m["flood_stored"], m["flood_echoed"])
        self.assertGreater(m["flood_echoed"], 0)
        self.assertLessEqual(m["flood_seen_max"], m["flood_stored"])
        # Flood control holds the rest back: 40 lines at 5 a second take 6 s.
        self.assertLess(m["flood_stored"], 40)
        self.assertEqual((m["unnamed_admitted"], m["unnamed_closed"]), (True, True))
        self.assertTrue(m["unnamed_told"].startswith("! You did not choose a screen name"))
        self.assertIn(m["nonreader_disconnected"], (True, False))
        self.assertNotIn("reconnector_tried", m)  # not chosen
        self.assertEqual(result.server["limits"]["login_timeout"], 1)
        for phase in ("alone", "abused"):
            args = result.server[phase]["args"]
            self.assertNotIn("--flood-rate", args)  # the server's own flood limit
            self.assertNotIn("--exempt", args)  # nothing exempt, loopback included
            self.assertIn("--login-timeout=1", args)
            self.assertEqual(result.server[phase]["tracebacks"], 0)
        [record] = self.records()
        self.assertEqual((record["bench"], record["complete"], record["params"]["users"],
                          record["params"]["attackers"]),
                         ("abuse", True, 2, "flooder,nonreader,unnamed"))
        self.assertEqual(record["metrics"]["abused_delivered"], 12)
        self.assertIs(record["metrics"]["unnamed_closed"], True)
        text = self.out.getvalue()
        self.assertIn("without attackers", text)
        self.assertIn("never-named: given the name prompt", text)
        self.assertIn("--login-timeout 1,", text)

    @coroutine
    async def test_slowTypistsTimedOut(self):
        """
        People who take longer to type their name than --login-timeout are
        not let in: the table says so, and what they were told.
        """
        [result] = await self.bench("-N", "2", "-M", "1", "--typing", "0.6",
                                    "--attackers", "unnamed", "--warmup", "0",
                                    "--grace", "0.1", "--server-arg=--login-timeout=0.3")
        m = result.metrics
        self.assertEqual((m["alone_admitted"], m["alone_not_admitted"], m["alone_delivered"]),
                         (0, 2, 0))
        [(times, told)] = m["alone_not_admitted_told"]
        self.assertEqual(times, 2)
        self.assertTrue(told.startswith("! You did not choose a screen name within 0.3"), told)
        self.assertIn("normal users not let in without attackers were told (2x): ! You did not",
                      self.out.getvalue())

    @coroutine
    async def test_nonReaderDisconnected(self):
        """
        With a small output limit (and a load fast enough to pass it), the
        server disconnects the client that does not read and logs it; the
        normal users lose nothing.
        """
        [result] = await self.bench(
            "-N", "3", "-M", "40", "--rate", "40", "-P", "2000", "--flood-lines", "200",
            "--typing", "0", "--warmup", "0", "--grace", "20",
            "--attackers", "flooder,nonreader,unnamed",
            "--server-arg=--flood-rate=200", "--server-arg=--flood-burst=50",
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

    @coroutine
    async def test_attackersThatComeAndGo(self):
        """
        The reconnector, the squatter, the room spammer and the lister, all
        from one address, against the server's default limits: the normal
        users are all let in and lose nothing; each attacker accounts for
        every connection it tried, the squatter is refused once its address
        has its share, and no attacker gets more than its address may have.
        """
        [result] = await self.bench("-N", "2", "-M", "3", *FAST, "--warmup", "1",
                                    "--squat-rate", "20", "--attackers", ",".join(COME_AND_GO))
        self.assertEqual((result.complete, result.errors), (True, []))
        m, limits = result.metrics, result.server["limits"]
        self.assertNormalUsersExact(m, 2, 3)
        for kind in COME_AND_GO:
            self.assertAccounted(m, kind)
        # 20 silent connections a second for over a second, from one address.
        self.assertGreater(m["squatter_refused"], 0)
        self.assertLessEqual(m["squatter_admitted"] - m["squatter_closed_by_server"],
                             limits["max_per_address"])
        self.assertLessEqual(m["reconnector_stored"], m["reconnector_lines_sent"])
        # A burst that fits in the server's, with the name and the join.
        self.assertEqual(result.params["reconnector_burst"], limits["flood_burst"] - 2)
        self.assertEqual(m["reconnector_lines_sent"], m["reconnector_admitted"] * 8)
        self.assertLessEqual(m["roomspam_created"], m["roomspam_rooms_stored"])
        self.assertLessEqual(m["roomspam_rooms_stored"], limits["create_burst"])
        self.assertFalse(any(k.startswith(("flood_", "nonreader_", "unnamed_")) for k in m))
        text = self.out.getvalue()
        for label in ("reconnector: connections tried", "squatter: silent connections tried",
                      "room spammer: connections tried",
                      "listers: each from an address of its own",
                      "the squatter was refused ("):
            self.assertIn(label, text)

    @coroutine
    async def test_roomSpammerAndLister(self):
        """
        Alone from their address, the room spammer makes the rooms its
        address may make (refused past that, and told why) and the lister
        reads the answers to its lists, which count them.
        """
        # A burst of 6 creates: one more than the address may make at once.
        [result] = await self.bench("-N", "1", "-M", "4", *FAST, "--warmup", "1",
                                    "--burst", "6", "--attackers", "roomspam,lister")
        self.assertEqual((result.complete, result.errors), (True, []))
        m, limits = result.metrics, result.server["limits"]
        self.assertAccounted(m, "roomspam")
        self.assertAccounted(m, "lister")
        self.assertEqual(limits["create_burst"], 5)
        self.assertEqual(m["roomspam_rooms_stored"], 5)
        self.assertEqual(m["roomspam_created"], 5)
        self.assertGreater(m["roomspam_create_refused"], 0)
        [(_, told), *_] = m["roomspam_create_told"]
        self.assertTrue(told.startswith("! Your address has created rooms too often"), told)
        self.assertGreater(m["lister_lists"], 0)
        self.assertGreater(m["lister_bytes"], 0)
        # The normal users' room and every room the spammer made, at the last list.
        self.assertLessEqual(m["lister_rooms_listed"], 1 + limits["create_burst"])
        self.assertGreaterEqual(m["lister_p50_ms"], 0)

    @coroutine
    async def test_manyRoomsManyListers(self):
        """
        With --rooms, each phase's server starts on a database that holds
        them already, and may keep that many more rooms than its default:
        the normal users make their room beside them. The --listers each
        come from an address of their own, so all are let in however many
        they are, and each of their lists names every room.
        """
        rooms, listers = 300, 4
        [result] = await self.bench("-N", "2", "-M", "3", *FAST, "--warmup", "0.5",
                                    "--rooms", str(rooms), "--listers", str(listers),
                                    "--attackers", "lister")
        self.assertEqual((result.complete, result.errors), (True, []))
        m, limits = result.metrics, result.server["limits"]
        self.assertNormalUsersExact(m, 2, 3)
        self.assertEqual(limits["max_rooms"], rooms + 1000)
        for phase in ("alone", "abused"):
            args = result.server[phase]["args"]
            self.assertEqual(args[args.index("--max-rooms") + 1], str(rooms + 1000))
            self.assertIn("preload_s", result.server[phase])
        self.assertEqual((m["lister_listers"], m["lister_admitted"], m["lister_refused"]),
                         (listers, listers, 0))
        self.assertEqual(m["lister_rooms_listed"], rooms + 1)  # and the normal users' room
        self.assertGreaterEqual(m["lister_lists"], listers)
        # Each answer names every room: "*   bench-RUNID-pN (0 users)".
        line = len(f"*   {result.run_id}-p{rooms} (0 users)\n") - len("bench-") - 3
        self.assertGreater(m["lister_bytes"], m["lister_lists"] * rooms * line)
        self.assertLessEqual(m["lister_p50_ms"], m["lister_max_ms"])
        self.assertEqual((result.params["rooms"], result.params["listers"]), (rooms, listers))
        self.assertIn(f"each phase's database held {rooms} rooms", self.out.getvalue())


class ListAnswersTests(TestCase):
    """The listers' bulk reading: the end of each answer, however the reads cut it."""

    def setUp(self):
        self.client = type("Client", (), {"lost": Deferred()})()
        self.answers = attackers.ListAnswers(self.client)
        self.answer = (b"* Rooms (3), busiest first:\n*   a (1 user)\n*   b (0 users)\n"
                       b"*   c (0 users)\n* Online (2): x, y. You are in the Lobby.\n")

    def test_endAcrossReads(self):
        """Read a byte at a time, an answer ends once, at the answer to who; its count is read."""
        for _ in range(2):
            ended = []
            self.answers.next().addCallback(ended.append)
            cut = self.answer.index(b"(2)")
            for i in range(len(self.answer)):
                self.answers.feed(self.answer[i:i + 1])
                self.assertEqual(ended, [True] if i >= cut else [])
            self.assertEqual(self.answers.listed, 3)
        self.assertEqual(self.answers.bytes, 2 * len(self.answer))

    def test_inOneRead(self):
        """An answer and the start of nothing else, in one read: ended, and not again."""
        ended = []
        self.answers.next().addCallback(ended.append)
        self.answers.feed(self.answer)
        again = self.answers.next()
        again.addCallback(ended.append)
        self.answers.feed(b"* Rooms (4), busiest first:\n")
        self.assertEqual((ended, self.answers.listed), ([True], 4))

    def test_closed(self):
        """A lister whose connection closes stops waiting: False."""
        ended = []
        self.answers.next().addCallback(ended.append)
        self.answers.feed(self.answer[:40])
        self.client.lost.callback(None)
        self.assertEqual(ended, [False])


class VisitTests(TestCase):
    def test_userAddresses(self):
        """Distinct loopback addresses, never the attackers' nor a .0 or .255."""
        addresses = userAddresses(600, avoid="127.1.0.3")
        self.assertEqual(addresses[:3], ["127.1.0.1", "127.1.0.2", "127.1.0.4"])
        self.assertEqual(len(set(addresses)), 600)
        self.assertFalse([a for a in addresses if a.endswith((".0", ".255"))])
        self.assertNotIn("127.1.0.3", addresses)

    @coroutine
    async def test_connectFrom(self):
        """A connection made from a chosen loopback address comes from it."""
        peers = []

        class Seen(Protocol):
            def connectionMade(self):
                peers.append(self.transport.getPeer().host)

        port = reactor.listenTCP(0, Factory.forProtocol(Seen), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        run = Run(reactor, "127.0.0.1", port.getHost().port, Native(), 10)
        for address in ("127.0.0.1", "127.1.0.7", "127.0.0.9"):
            await connectFrom(run, address, "someone")
        self.assertEqual(peers, ["127.0.0.1", "127.1.0.7", "127.0.0.9"])
        await run.close()


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
        self.assertIn("comma-separated list of flooder", self.badArguments("--attackers", "ddos"))
        self.assertIn("(each once)", self.badArguments("--attackers", "squatter,squatter"))
        self.assertIn("in 127.0.0.0/8", self.badArguments("--attackers-address", "10.0.0.1"))
        self.assertIn("one of the normal users' addresses",
                      self.badArguments("--attackers-address", "127.1.0.2"))
        self.assertIn("from 0 to 3600", self.badArguments("--typing", "-1"))
        self.assertIn("one of the listers' addresses",
                      self.badArguments("--attackers-address", "127.0.5.2", "--listers", "3"))
        self.assertIn("from 1 to", self.badArguments("--listers", "0"))
        self.assertIn("from 0 to", self.badArguments("--rooms", "-1"))

    def test_defaultAttackers(self):
        """All the attackers by default, the server sized for the users and them."""
        args, workload = cli.parseArgs(["abuse", "-N", "10"])
        self.assertEqual(workload.attackers, abuse.ATTACKERS)
        self.assertEqual(workload.attackersAddress, "127.0.0.1")
        self.assertEqual((workload.typing, workload.squatRate), (2.0, 10.0))
        # Ten users, the one who makes their room, five attackers that take a
        # name, and two for names a reconnecting attacker has not let go yet.
        self.assertEqual(workload.clientsNeeded(), 18)
        self.assertEqual(workload.settings.max_clients, 18)
        self.assertEqual((workload.rooms, workload.listers), (0, 1))
        self.assertEqual(workload.settings.max_rooms, 1000)  # the server's own
        self.assertNotIn("--max-rooms", workload.serverArgs)

    def test_roomsAndListers(self):
        """Each lister takes a name; the rooms preloaded are added to the room limit."""
        args, workload = cli.parseArgs(["abuse", "-N", "10", "--rooms", "50000", "--listers",
                                        "8", "--attackers", "lister",
                                        "--server-arg=--login-timeout=5"])
        self.assertEqual(workload.clientsNeeded(), 10 + 1 + 8 + 2)
        self.assertEqual(workload.serverArgs, ["--max-rooms", "51000", "--login-timeout=5"])
        self.assertEqual((workload.settings.max_rooms, workload.settings.login_timeout),
                         (51000, 5))
        _, mine = cli.parseArgs(["abuse", "--rooms", "5", "--server-arg=--max-rooms=7"])
        self.assertEqual(mine.settings.max_rooms, 7)  # --server-arg has the last word

    def test_listerAddresses(self):
        """One address a lister, from 127.0.5.1, never the attackers' nor a .0 or .255."""
        addresses = visits.listerAddresses(300, avoid="127.0.5.2")
        self.assertEqual(addresses[:2], ["127.0.5.1", "127.0.5.3"])
        self.assertEqual(len(set(addresses)), 300)
        self.assertFalse([a for a in addresses if a.endswith((".0", ".255"))])

    def test_defaultLimits(self):
        """The servers get the bench's usual command but not its capacity options."""
        command = abuseserver.defaultLimitsCommand("x.db", 30, ["--login-timeout=5"])
        self.assertNotIn("--flood-rate", command)
        self.assertNotIn("--exempt", command)
        self.assertEqual(command[-5:], ["--db", "x.db", "--max-clients", "30",
                                        "--login-timeout=5"])
        self.assertIn("chatroom", command)

    def test_limitsLine(self):
        """The servers' settings, as their options, folded."""
        lines = abusetable.limitsLine({"max_per_address": 3, "flood_rate": 5.0,
                                       "login_slots_per_address": 2}, width=60)
        self.assertEqual(lines, ["servers' settings: --max-per-address 3, --flood-rate 5,",
                                 "  --login-slots-per-address 2"])

"""
One client must not hurt the others: flood control without loss, a bound on
what waits for a slow reader, paced replay and history, and timeouts. All on
StringTransport and a fake clock: the transport's producer calls stand in for
a socket buffer that fills and drains.
"""

from twisted.trial.unittest import TestCase

from tests.support import makeServer


class FloodTests(TestCase):
    def setUp(self):
        self.lobby, self.connect = makeServer(flood_rate=5, flood_burst=10)
        self.clock = self.lobby.clock
        self.alice = self.connect("alice")  # the name was one line of the burst
        self.alice.send("create kitchen")
        self.bob = self.connect("bob")
        self.bob.send("join kitchen")
        self.clock.advance(10)  # both buckets full again
        self.alice.read()
        self.bob.read()

    def said(self, session, name):
        return [line for line in session.read() if line.startswith(f"<{name}>")]

    def test_burstThenRateNothingLost(self):
        self.alice.send(b"".join(b"line %d\n" % n for n in range(1, 31)))
        self.assertEqual(self.said(self.bob, "alice"),
                         [f"<alice> line {n}" for n in range(1, 11)])
        self.assertEqual(self.alice.transport.producerState, "paused")
        self.clock.advance(0.2)  # one line's worth at 5 a second
        self.assertEqual(self.said(self.bob, "alice"), ["<alice> line 11"])
        for _ in range(100):
            self.clock.advance(0.2)
        self.assertEqual(self.said(self.bob, "alice"),
                         [f"<alice> line {n}" for n in range(12, 31)])
        self.assertEqual(self.alice.transport.producerState, "producing")
        self.assertFalse(self.alice.transport.disconnecting)

    def test_othersFlowMeanwhile(self):
        self.alice.send(b"".join(b"flood %d\n" % n for n in range(100)))
        self.bob.read()
        self.bob.send("still talking")
        self.assertEqual(self.said(self.bob, "bob"), ["<bob> still talking"])

    def test_commandsCountToo(self):
        self.alice.send(b"list\n" * 12)
        self.assertEqual(self.alice.read().count("* Rooms (1), busiest first:"), 10)
        self.clock.advance(1)
        self.assertEqual(self.alice.read().count("* Rooms (1), busiest first:"), 2)

    def test_disconnectDuringPauseCancelsTimer(self):
        self.alice.send(b"x\n" * 20)
        self.alice.close()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_zeroRateDisables(self):
        lobby, connect = makeServer(flood_rate=0)
        alice = connect("alice")
        alice.send("create hall")
        alice.read()
        alice.send(b"".join(b"m %d\n" % n for n in range(500)))
        self.assertEqual(len(alice.read()), 500)


class SlowReaderTests(TestCase):
    LIMIT = 16384
    BUFFER = 65536  # what the socket's transport holds before it pauses us

    def setUp(self):
        self.lobby, self.connect = makeServer(max_output_buffer=self.LIMIT, history_replay=50)
        self.alice = self.connect("alice")
        self.alice.send("create kitchen")
        self.slow = self.connect("slow")
        self.slow.send("join kitchen")
        self.carol = self.connect("carol")
        self.carol.send("join kitchen")
        for s in (self.alice, self.slow, self.carol):
            s.read()

    def test_slowReaderDisconnectedOthersServed(self):
        line = "x" * 1000
        for n in range(200):  # slow never reads
            self.alice.send(f"{n} {line}")
            self.carol.read()
            self.alice.read()
        self.assertTrue(self.slow.transport.disconnected)  # aborted
        # Cut off at the limit past the socket's buffer, not after everything.
        self.assertLessEqual(len(self.slow.transport.value()),
                             self.BUFFER + self.LIMIT + 1100)
        self.assertFalse(self.carol.transport.disconnecting)
        self.assertFalse(self.alice.transport.disconnecting)

    def test_overflowLogged(self):
        events = []
        from twisted.logger import globalLogPublisher
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        for n in range(200):
            self.alice.send("z" * 1000)
            self.carol.read()
            self.alice.read()
        (event,) = [e for e in events if "bytes wait to be sent" in e.get("log_format", "")]
        self.assertEqual(event["user"].name, "slow")
        self.assertEqual(event["limit"], self.LIMIT)

    def test_readingInTimeKeepsConnection(self):
        for n in range(500):
            self.alice.send("y" * 1000)
            self.alice.read()
            self.carol.read()
            if n % 50 == 0:
                self.assertTrue(self.slow.read())
        self.assertFalse(self.slow.transport.disconnecting)

    def test_historyPagedAsTheClientReads(self):
        for n in range(300):
            self.alice.send(f"{n:03} " + "h" * 1500)
            self.slow.read()
            self.carol.read()
            self.alice.read()
        newcomer = self.connect("newcomer")
        newcomer.send("join kitchen")
        newcomer.send("history 250")
        newcomer.send("who")
        # 300 messages of 1.5 KB: join replay and page are 450 KB, far more
        # than the limit; they go out as the client reads, never overflowing.
        received = []
        for _ in range(200):
            more = newcomer.read()
            self.assertLessEqual(len("\n".join(more)), self.BUFFER + 20000)
            received += more
            if more and more[-1].startswith("* In kitchen"):
                break
        self.assertFalse(newcomer.transport.disconnecting)
        history = [line.split("> ")[1][:3] for line in received if line.startswith("[")]
        self.assertEqual(history, [f"{n:03}" for n in range(250, 300)]
                         + [f"{n:03}" for n in range(0, 250)])
        # `who` was answered only after the whole page.
        self.assertEqual(received[-1], "* In kitchen (4): alice, slow, carol, newcomer.")


class TimeoutTests(TestCase):
    def test_loginTimeout(self):
        lobby, connect = makeServer(login_timeout=60)
        lurker = connect()
        lurker.read()
        lobby.clock.advance(59)
        self.assertFalse(lurker.transport.disconnecting)
        lobby.clock.advance(1)
        self.assertEqual(lurker.read(), [
            "! You did not choose a screen name within 60 seconds. Goodbye."])
        self.assertTrue(lurker.transport.disconnecting)

    def test_loginTimeoutIsNotResetByBadNames(self):
        lobby, connect = makeServer(login_timeout=60)
        lurker = connect()
        for _ in range(10):
            lobby.clock.advance(6)
            lurker.send("bad name")
        self.assertTrue(lurker.transport.disconnecting)

    def test_namedInTime(self):
        lobby, connect = makeServer(login_timeout=60)
        alice = connect("alice")
        lobby.clock.advance(3600)
        self.assertFalse(alice.transport.disconnecting)
        self.assertEqual(lobby.clock.getDelayedCalls(), [])

    def test_defaultLoginTimeoutIsSixtySeconds(self):
        lobby, connect = makeServer()
        lurker = connect()
        lobby.clock.advance(60)
        self.assertTrue(lurker.transport.disconnecting)

    def test_idleTimeout(self):
        lobby, connect = makeServer(idle_timeout=300)
        alice = connect("alice")
        lobby.clock.advance(299)
        alice.send("list")
        lobby.clock.advance(299)
        self.assertFalse(alice.transport.disconnecting)
        alice.read()
        lobby.clock.advance(1)
        self.assertEqual(alice.read(),
                         ["* You were silent for 300 seconds. Closing the connection."])
        self.assertTrue(alice.transport.disconnecting)

    def test_idleOffByDefault(self):
        lobby, connect = makeServer()
        alice = connect("alice")
        lobby.clock.advance(30 * 86400)
        self.assertFalse(alice.transport.disconnecting)

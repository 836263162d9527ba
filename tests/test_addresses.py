"""
Limits per client address (chatsvc.doors.addresses): one person with a script
gets no more by opening more connections or reconnecting. Over
StringTransport and a fake clock; each Session comes from the address given.
"""

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase

from chatsvc.doors.addresses import SUMMARY_INTERVAL, Addresses, addressOf, parseExempt
from tests.support import makeServer

HOME, AWAY = "127.0.0.2", "127.0.0.3"


class AddressOfTests(TestCase):
    def test_ipv4IsItself(self):
        self.assertEqual(addressOf(IPv4Address("TCP", "192.0.2.7", 5)), "192.0.2.7")

    def test_ipv6CountsBySlash64(self):
        one = addressOf(IPv6Address("TCP", "2001:db8:1:2::5", 5))
        other = addressOf(IPv6Address("TCP", "2001:db8:1:2:ffff::9", 5))
        self.assertEqual(one, "2001:db8:1:2::/64")
        self.assertEqual(one, other)
        self.assertNotEqual(one, addressOf(IPv6Address("TCP", "2001:db8:1:3::5", 5)))

    def test_ipv4MappedIsIpv4(self):
        self.assertEqual(addressOf(IPv6Address("TCP", "::ffff:192.0.2.7", 5)), "192.0.2.7")

    def test_unixPeersAreOneAddress(self):
        self.assertEqual(addressOf(UNIXAddress(None)), "unix")

    def test_exemptNetworks(self):
        addresses = Addresses(None, None, [parseExempt(n) for n in [
            "10.0.0.0/8", "unix", "2001:db8::/48", "::1", "2001:db9::5"]])
        v4 = lambda host: IPv4Address("TCP", host, 5)  # noqa: E731
        v6 = lambda host: IPv6Address("TCP", host, 5)  # noqa: E731
        self.assertTrue(addresses.isExempt(v4("10.1.2.3")))
        self.assertFalse(addresses.isExempt(v4("11.1.2.3")))
        self.assertTrue(addresses.isExempt(UNIXAddress(None)))
        self.assertTrue(addresses.isExempt(v6("2001:db8:0:5::7")))
        self.assertFalse(addresses.isExempt(v6("2001:dba::1")))
        self.assertTrue(addresses.isExempt(v6("::ffff:10.0.0.1")))
        # One IPv6 host, not its /64: a bouncer or a web proxy.
        self.assertTrue(addresses.isExempt(v6("::1")))
        self.assertTrue(addresses.isExempt(v6("2001:db9::5")))
        self.assertFalse(addresses.isExempt(v6("2001:db9::6")))
        self.assertRaises(ValueError, parseExempt, "example.org")


class ConnectionLimitTests(TestCase):
    def setUp(self):
        self.lobby, self.connect = makeServer(max_clients=50, max_per_address=3)

    def test_fourthConnectionFromOneAddressRefused(self):
        mine = [self.connect(name, host=HOME) for name in ("ann", "ann2", "ann3")]
        fourth = self.connect(host=HOME)
        self.assertEqual(fourth.read(), [
            "! There are 3 connections from your address already, the most allowed."
            " Close one, or ask the operator to exempt your address."])
        self.assertTrue(fourth.transport.disconnecting)
        # Nobody else is affected, and a place comes free when one closes.
        self.assertTrue(self.connect("bob", host=AWAY).read() == [])
        mine[0].close()
        self.assertFalse(self.connect("ann4", host=HOME).transport.disconnecting)

    def test_exemptAddressIsNotCounted(self):
        lobby, connect = makeServer(max_clients=50, max_per_address=1)
        factory = connect().protocol.factory
        factory.addresses.exempt = (parseExempt(HOME),)
        for n in range(5):
            self.assertFalse(connect(f"bouncer{n}", host=HOME).transport.disconnecting)


class ConnectRateTests(TestCase):
    def test_reconnectingFasterThanTheRateIsRefused(self):
        lobby, connect = makeServer(connect_rate=1, connect_burst=3, max_per_address=0)
        for _ in range(3):
            connect(host=HOME).close()
        refused = connect(host=HOME)
        self.assertEqual(refused.read(), [
            "! Your address is connecting too often. Try again in 1 s."])
        self.assertTrue(refused.transport.disconnecting)
        self.assertFalse(connect(host=AWAY).transport.disconnecting)  # others come in
        lobby.clock.advance(1)
        self.assertFalse(connect(host=HOME).transport.disconnecting)

    def test_refusedAttemptsDoNotPushTheWaitFurther(self):
        lobby, connect = makeServer(connect_rate=1, connect_burst=1, max_per_address=0)
        connect(host=HOME)
        for _ in range(100):
            connect(host=HOME)
        lobby.clock.advance(1)
        self.assertFalse(connect(host=HOME).transport.disconnecting)


class LoginSlotTests(TestCase):
    def setUp(self):
        self.lobby, self.connect = makeServer(
            max_clients=4, max_per_address=0, login_slots_per_address=2, connect_rate=0)

    def test_oneAddressHoldsAtMostItsSlots(self):
        squatters = [self.connect(host=HOME) for _ in range(2)]
        third = self.connect(host=HOME)
        self.assertEqual(third.read()[-1],
                         "! 2 connections from your address are choosing a screen name"
                         " already. Choose a name there first, or close it.")
        self.assertTrue(third.transport.disconnecting)
        self.assertFalse(any(s.transport.disconnecting for s in squatters))

    def test_squatterMakesWayNotThePersonTyping(self):
        """With every place taken, the address holding the most makes way."""
        typing = self.connect(host=AWAY)
        other = self.connect(host="127.0.0.4")
        squatters = [self.connect(host=HOME) for _ in range(2)]
        newcomer = self.connect(host="127.0.0.5")  # the fifth: one must make way
        self.assertTrue(squatters[0].transport.disconnecting)
        self.assertFalse(typing.transport.disconnecting)
        self.assertFalse(other.transport.disconnecting)
        self.assertFalse(newcomer.transport.disconnecting)
        typing.send("carol")
        self.assertIn("* Welcome, carol. You are in the Lobby. Commands:", typing.read())

    def test_namingFreesTheSlot(self):
        first = self.connect(host=HOME)
        self.connect(host=HOME)
        first.send("ann")
        self.assertFalse(self.connect(host=HOME).transport.disconnecting)


class SharedFloodTests(TestCase):
    def setUp(self):
        self.lobby, self.connect = makeServer(flood_rate=5, flood_burst=10,
                                              connect_rate=0, max_per_address=0)
        self.clock = self.lobby.clock
        self.watcher = self.connect("watcher", host=AWAY)
        self.watcher.send("create kitchen")
        self.clock.advance(10)
        self.watcher.read()

    def flooder(self, name):
        session = self.connect(name, host=HOME)
        session.send("join kitchen")
        return session

    def said(self):
        return [line for line in self.watcher.read() if line.startswith("<")]

    def test_reconnectingGetsNoFreshBurst(self):
        first = self.flooder("f1")
        first.send(b"".join(b"burst %d\n" % n for n in range(20)))
        first.close()
        # The burst of 10 lines had its name and join in it: 8 were said.
        self.assertEqual(len(self.said()), 8)
        again = self.flooder("f2")
        again.send(b"".join(b"more %d\n" % n for n in range(20)))
        # The new connection starts where the address left off: paused.
        self.assertEqual(self.said(), [])
        self.assertEqual(again.transport.producerState, "paused")
        for _ in range(10):
            self.clock.advance(0.2)
        # 10 lines in 2 s: one repaid the debt of its name line, one was its join.
        self.assertEqual(len(self.said()), 10 - 2)

    def test_connectionsFromOneAddressShareTheRate(self):
        flooders = [self.flooder(f"f{n}") for n in range(3)]
        self.said()
        self.clock.advance(10)  # the address's bucket is full again
        for session in flooders:
            session.send(b"".join(b"x\n" for _ in range(100)))
        for _ in range(100):
            self.clock.advance(0.1)
        # In 10 s: the burst and 5 a second for the address, not for each
        # connection (each may go one line into debt before it is paused).
        said = len(self.said())
        self.assertGreaterEqual(said, 10 + 50 - 3)
        self.assertLessEqual(said, 10 + 50 + 3)

    def test_slowedSenderIsToldOnce(self):
        alice = self.flooder("alice")
        self.clock.advance(10)
        alice.read()
        alice.send(b"".join(b"line %d\n" % n for n in range(30)))
        for _ in range(50):
            self.clock.advance(0.2)
        told = [line for line in alice.read() if "more slowly" in line]
        self.assertEqual(told, [
            "* You are sending more than 5 lines a second (10 at once) from your"
            " address, so the server now reads your lines more slowly. Nothing you"
            " sent is lost."])

    def test_clockSteppingBackHoldsNobody(self):
        """Durations come from a monotonic clock; one that goes back anyway refills nothing."""
        alice = self.flooder("alice")
        self.clock.advance(10)
        self.clock.rightNow -= 60  # as a wall clock stepped back by NTP would
        alice.send("after the step")
        self.assertEqual(self.said(), ["<alice> after the step"])
        self.assertEqual(alice.transport.producerState, "producing")


class RoomCreationTests(TestCase):
    def test_addressCreatesAtItsRateWhicheverConnection(self):
        lobby, connect = makeServer(create_rate=60, create_burst=2, connect_rate=0)
        ann = connect("ann", host=HOME)
        ann.send("create one")
        ann.send("create two")
        ann.close()
        again = connect("ann", host=HOME)
        again.send("create three")
        self.assertEqual(again.read(), [
            "! Your address has created rooms too often. Try again in 1 minute,"
            " or join one that exists (type list)."])
        self.assertEqual(sorted(lobby.rooms), ["one", "two"])
        bob = connect("bob", host=AWAY)
        bob.send("create three")
        self.assertIn("three", lobby.rooms)
        lobby.clock.advance(60)
        again.send("create four")
        self.assertIn("four", lobby.rooms)

    def test_refusedCreateCostsNothing(self):
        lobby, connect = makeServer(create_rate=60, create_burst=1)
        ann = connect("ann", host=HOME)
        ann.send("create bad!name")
        ann.send("create Lobby")
        ann.send("create good")
        self.assertIn("good", lobby.rooms)

    def test_totalRoomsBounded(self):
        lobby, connect = makeServer(max_rooms=2, create_rate=0)
        ann = connect("ann")
        ann.send("create one")
        ann.send("create two")
        ann.read()
        ann.send("create three")
        self.assertEqual(ann.read(), [
            "! The server holds 2 rooms, the most it keeps. Join one that exists"
            " (type list WORD to find one)."])
        self.assertEqual(sorted(lobby.rooms), ["one", "two"])


class RefusalLogTests(TestCase):
    def test_floodOfRefusalsIsOneLineAndASummary(self):
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        lobby, connect = makeServer(max_per_address=1, connect_rate=0)
        factory = connect("ann", host=HOME).protocol.factory
        factory.addresses.startService()
        self.addCleanup(factory.addresses.stopService)
        for _ in range(500):
            connect(host=HOME)
        refusals = [e for e in events if "Refus" in e.get("log_format", "")]
        self.assertEqual(len(refusals), 1)
        lobby.clock.advance(SUMMARY_INTERVAL)
        refusals = [e for e in events if "Refus" in e.get("log_format", "")]
        self.assertEqual(len(refusals), 2)
        self.assertEqual(refusals[1]["total"], 499)
        self.assertEqual(refusals[1]["address"], HOME)
        self.assertEqual(refusals[1]["reasons"], "499 too many connections at once")
        # A quiet address is forgotten.
        lobby.clock.advance(SUMMARY_INTERVAL)
        self.assertEqual(factory.addresses._refused, {})

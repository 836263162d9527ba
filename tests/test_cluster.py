"""
Several Lobbys, one chat: two servers on one store (MemoryStore numbers
messages at commit, as PostgreSQL does) and a bus between them (LocalBus on
a Hub, on the same Clock). Every server delivers every room's messages in
seq order, once, with no gaps, whatever the bus loses.
"""

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from chatsvc import errors
from chatsvc.bus.local import Hub, LocalBus
from chatsvc.cluster import BUS_DOWN_INTERVAL, GAP_GRACE, POSITION_INTERVAL
from chatsvc.elsewhere import GONE
from chatsvc.events import Invited, Joined, Kicked, Killed, Left, Quit, Renamed, Said
from chatsvc.lobby import Lobby
from chatsvc.settings import Settings
from tests.memorystore import MemoryStore
from tests.support import NOW
from tests.test_lobby import Mind


class TwoServers(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(NOW)
        self.store = MemoryStore()
        self.hub = Hub(self.clock)
        self.a, self.b = self.server(), self.server()
        self.alice = self.named(self.a, "alice")
        self.bob = self.named(self.b, "bob")
        self.successResultOf(self.a.createRoom(self.alice, "kitchen"))
        self.settle()
        self.successResultOf(self.b.join(self.bob, "kitchen"))
        self.settle()

    def server(self):
        bus = LocalBus(self.hub, self.clock)
        lobby = Lobby(self.store, Settings(flood_rate=0), self.clock,
                      wallclock=self.clock.seconds, bus=bus)
        bus.startService()
        lobby.startService()
        self.addCleanup(lobby.stopCluster)
        return lobby

    def named(self, lobby, name):
        user = lobby.connect(Mind())
        lobby.chooseName(user, name)
        return user

    def settle(self, seconds=0):
        """Let the turn end (broadcasts, the hub) and C{seconds} pass."""
        for _ in range(5):
            self.clock.advance(0)
        if seconds:
            self.clock.advance(seconds)
            for _ in range(5):
                self.clock.advance(0)

    def said(self, user):
        return [(m.seq, m.sender, m.text) for e in user.mind.events if type(e) is Said
                for m in e.messages]

    def test_aRoomCreatedOnOneServerIsOnTheOther(self):
        self.assertIn("kitchen", self.b.rooms)
        self.assertEqual(self.a.rooms["kitchen"].id, self.b.rooms["kitchen"].id)

    def test_everyServerDeliversInTheSameOrder(self):
        room_a, room_b = self.a.rooms["kitchen"], self.b.rooms["kitchen"]
        for n in range(3):
            self.a.say(self.alice, room_a, f"a{n}")
            self.b.say(self.bob, room_b, f"b{n}")
        self.settle()
        self.assertEqual(len(self.said(self.alice)), 6)
        self.assertEqual(self.said(self.alice), self.said(self.bob))
        self.assertEqual([seq for seq, _, _ in self.said(self.bob)], [1, 2, 3, 4, 5, 6])

    def test_whatTheBusLostIsFilledFromTheStore(self):
        room_a, room_b = self.a.rooms["kitchen"], self.b.rooms["kitchen"]
        self.b.bus.cut()
        for n in range(3):
            self.a.say(self.alice, room_a, f"lost{n}")
        self.settle()
        self.assertEqual(self.said(self.bob), [])  # nothing came by the bus
        self.b.say(self.bob, room_b, "here")  # seq 4: ahead of a hole, filled at once
        self.settle()
        self.assertEqual(self.said(self.bob), [(1, "alice", "lost0"), (2, "alice", "lost1"),
                                               (3, "alice", "lost2"), (4, "bob", "here")])
        # bob's publish was lost too: a finds it by its position check
        self.assertEqual(len(self.said(self.alice)), 3)
        self.settle(POSITION_INTERVAL)
        self.assertEqual(self.said(self.alice), self.said(self.bob))

    def test_whileTheBusIsDownPositionsAreCheckedOften(self):
        """A lone talker's listeners on another server wait a moment, not a second."""
        self.b.bus.cut()
        self.a.say(self.alice, self.a.rooms["kitchen"], "lost")
        self.settle(BUS_DOWN_INTERVAL)
        self.assertEqual(self.said(self.bob), [(1, "alice", "lost")])
        self.b.bus.restore()
        self.settle()
        self.a.bus.cut()  # b's bus is up: b finds a's lost publish at its usual check
        self.a.say(self.alice, self.a.rooms["kitchen"], "also lost")
        self.settle(BUS_DOWN_INTERVAL)
        self.assertEqual(len(self.said(self.bob)), 1)
        self.settle(POSITION_INTERVAL)
        self.assertEqual(self.said(self.bob), [(1, "alice", "lost"), (2, "alice", "also lost")])

    def test_aHoleWaitsBrieflyForTheBus(self):
        """Messages that come out of order by the bus are reordered, not re-read."""
        room_b = self.b.rooms["kitchen"]
        early = self.store.messages  # the messages are stored first ...
        self.a.say(self.alice, self.a.rooms["kitchen"], "one")
        self.a.say(self.alice, self.a.rooms["kitchen"], "two")
        first, second = early[room_b.id]
        self.b.accept(room_b, second)  # ... and come to b the wrong way round
        self.assertEqual(room_b.ahead, {2: second})
        self.b.accept(room_b, first)
        self.assertEqual(room_b.ahead, {})
        self.settle(GAP_GRACE)
        self.assertEqual([seq for seq, _, _ in self.said(self.bob)], [1, 2])  # once each

    def test_aJoinAfterwardsSeesEverything(self):
        self.b.leave(self.bob, self.b.rooms["kitchen"])
        for n in range(3):
            self.a.say(self.alice, self.a.rooms["kitchen"], f"m{n}")
        self.settle()
        arrival = self.successResultOf(self.b.join(self.bob, "kitchen"))
        self.assertEqual([m.text for m in arrival.replay], ["m0", "m1", "m2"])
        self.a.say(self.alice, self.a.rooms["kitchen"], "live")
        self.settle()
        self.assertEqual(self.said(self.bob), [(4, "alice", "live")])

    def test_howARoomIsRunIsTheSameEverywhere(self):
        room_a, room_b = self.a.rooms["kitchen"], self.b.rooms["kitchen"]
        told = self.successResultOf(self.a.setTopic(self.alice, room_a, "Soup on Fridays"))
        self.successResultOf(self.a.setModes(self.alice, room_a, [(True, "b", "troll")]))
        self.settle()
        self.assertIn(told, self.bob.mind.events)
        self.assertEqual(room_b.topic.text, "Soup on Fridays")
        self.assertIn("troll!*@*", room_b.bans)
        troll = self.named(self.b, "troll")
        self.assertRaises(errors.Banned, self.b.join, troll, "kitchen")

    def test_aRoomNobodyWasInIsReadAfresh(self):
        """b hears nothing of a room while nobody is in it there: it reads it on the first join."""
        self.b.leave(self.bob, self.b.rooms["kitchen"])
        self.successResultOf(self.a.setTopic(self.alice, self.a.rooms["kitchen"], "New"))
        self.settle()
        arrival = self.successResultOf(self.b.join(self.bob, "kitchen"))
        self.assertEqual(arrival.topic.text, "New")


class PeopleOnOtherServersTests(TwoServers):
    """Who is in a room, and what they do, is the same on every server."""

    def events(self, user, kind):
        return [e for e in user.mind.events if type(e) is kind]

    def names(self, lobby, room="kitchen"):
        return [person.name for person in lobby.rooms[room].everyone()]

    def test_whoIsInARoomIsTheSameOnEveryServer(self):
        self.assertEqual(self.names(self.a), ["alice", "bob"])
        self.assertEqual(self.names(self.b), ["bob", "alice"])
        self.assertEqual([item for item in self.a.roomList() if item], [("kitchen", 2)])
        self.assertEqual([item for item in self.b.roomList() if item], [("kitchen", 2)])
        arrival = self.successResultOf(self.b.join(self.named(self.b, "carol"), "kitchen"))
        self.assertEqual(sorted(arrival.members), ["alice", "bob"])

    def test_joinsLeavesRenamesAndQuitsAreShownEverywhere(self):
        self.assertEqual(self.events(self.alice, Joined), [Joined("kitchen", "bob")])
        self.b.rename(self.bob, "robert")
        self.settle()
        self.assertEqual(self.events(self.alice, Renamed), [Renamed("bob", "robert")])
        self.assertEqual(self.names(self.a), ["alice", "robert"])
        self.b.leave(self.bob, self.b.rooms["kitchen"], "lunch")
        self.settle()
        self.assertEqual(self.events(self.alice, Left), [Left("kitchen", "robert", "left",
                                                              "lunch")])
        self.assertEqual([item for item in self.a.roomList() if item], [("kitchen", 1)])
        self.successResultOf(self.b.join(self.bob, "kitchen"))
        self.b.disconnect(self.bob, "quit", "bye")
        self.settle()
        self.assertEqual(self.events(self.alice, Quit), [Quit("robert", "quit", "bye")])
        self.assertEqual(self.names(self.a), ["alice"])

    def test_theFirstOnTheSecondServerDoesNotRunTheRoom(self):
        self.assertIn(self.alice, self.a.rooms["kitchen"].operators)
        self.assertNotIn(self.bob, self.b.rooms["kitchen"].operators)
        self.assertEqual(self.b.rooms["kitchen"].roleOf(self.b.stranger("alice")), "o")

    def test_whatTheBusLostIsPutRightAtTheNextBeat(self):
        self.b.bus.cut()
        carol = self.named(self.b, "carol")
        self.successResultOf(self.b.join(carol, "kitchen"))
        self.b.leave(self.bob, self.b.rooms["kitchen"])
        self.settle()
        self.assertEqual(self.names(self.a), ["alice", "bob"])  # a heard nothing
        self.a.confirmElsewhere([(self.b.me, self.b.portraitOfHere())])
        self.assertEqual(self.names(self.a), ["alice", "carol"])
        self.assertIn(Joined("kitchen", "carol"), self.alice.mind.events)
        self.assertIn(Left("kitchen", "bob", "left", ""), self.alice.mind.events)
        seen = len(self.alice.mind.events)
        self.a.confirmElsewhere([(self.b.me, self.b.portraitOfHere())])
        self.assertEqual(len(self.alice.mind.events), seen)  # told once

    def test_aPortraitOlderThanWhatTheBusSaidChangesNothing(self):
        before = self.b.portraitOfHere()
        carol = self.named(self.b, "carol")
        self.successResultOf(self.b.join(carol, "kitchen"))
        self.b.leave(self.bob, self.b.rooms["kitchen"])
        self.settle()
        seen = list(self.alice.mind.events)
        self.a.confirmElsewhere([(self.b.me, before)])
        self.assertEqual(self.alice.mind.events, seen)
        self.assertEqual(self.names(self.a), ["alice", "carol"])

    def test_theUsersOfAServerGoneSilentQuit(self):
        self.a.confirmElsewhere([(self.b.me, self.b.portraitOfHere())])
        self.a.confirmElsewhere([])  # b's heartbeat went stale
        self.assertEqual(self.events(self.alice, Quit), [Quit("bob", "lost", GONE)])
        self.assertEqual(self.names(self.a), ["alice"])

    def test_anOperatorKicksAUserOfAnotherServer(self):
        self.a.kick(self.alice, self.a.rooms["kitchen"], "bob", "enough")
        self.settle()
        kicked = Kicked("kitchen", "bob", "alice", "enough")
        self.assertNotIn("kitchen", self.bob.rooms)
        self.assertIn(kicked, self.bob.mind.events)
        self.assertIn(kicked, self.alice.mind.events)
        self.assertEqual(self.names(self.a), ["alice"])

    def test_anOperatorGivesARoleToAUserOfAnotherServer(self):
        self.successResultOf(self.a.setModes(self.alice, self.a.rooms["kitchen"],
                                             [(True, "o", "bob")]))
        self.settle()
        self.assertIn(self.bob, self.b.rooms["kitchen"].operators)
        self.assertEqual(self.a.rooms["kitchen"].roleOf(self.a.stranger("bob")), "o")
        self.b.kick(self.bob, self.b.rooms["kitchen"], "alice")  # and runs the room there
        self.settle()
        self.assertNotIn("kitchen", self.alice.rooms)

    def test_aServerOperatorDisconnectsAUserOfAnotherServer(self):
        self.alice.operator = True
        self.assertEqual(self.a.killUser(self.alice, "bob", "spam"), "bob")
        self.settle()
        self.assertNotIn("bob", self.b.names)
        self.assertIn(Quit("bob", "killed", "Killed by alice: spam"), self.alice.mind.events)

    def test_anAddressBanHoldsOnEveryServer(self):
        self.alice.operator = True
        carol = self.b.connect(Mind(), host="192.0.2.7")
        self.b.chooseName(carol, "carol")
        carol.host = "192.0.2.7"
        self.assertEqual(self.successResultOf(self.a.banAddress(self.alice, "192.0.2.0/24",
                                                                "spam")), 0)  # none on a
        self.settle()
        self.assertIn(Killed(None, "Your address is banned from this server: spam"),
                      carol.mind.events)
        self.assertNotIn("carol", self.b.names)
        self.assertRaises(errors.AddressBanned, self.b.connect, Mind(), host="192.0.2.9")
        self.successResultOf(self.a.unbanAddress(self.alice, "192.0.2.0/24"))
        self.settle()
        self.b.connect(Mind(), host="192.0.2.9")

    def test_theBansReadAtAHeartbeatHold(self):
        """What the bus lost, as read from the database at the next heartbeat."""
        self.b.serverChanged({"bans": {"192.0.2.*": ["root", NOW, ""]}})  # as read at a beat
        self.assertRaises(errors.AddressBanned, self.b.connect, Mind(), host="192.0.2.9")
        self.b.serverChanged({})
        self.b.connect(Mind(), host="192.0.2.9")

    def test_anInvitationReachesAUserOfAnotherServer(self):
        self.successResultOf(self.a.setModes(self.alice, self.a.rooms["kitchen"],
                                             [(True, "i", None)]))
        carol = self.named(self.b, "carol")
        self.settle()
        self.assertRaises(errors.InviteOnly, self.b.join, carol, "kitchen")
        self.a.invite(self.alice, self.a.rooms["kitchen"], "carol")
        self.settle()
        self.assertIn(Invited("kitchen", "carol", "alice"), carol.mind.events)
        self.successResultOf(self.b.join(carol, "kitchen"))

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
from chatsvc.cluster import GAP_GRACE, POSITION_INTERVAL
from chatsvc.events import Said
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

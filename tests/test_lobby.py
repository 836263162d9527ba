"""The chat's rules, without any front door: a Lobby and stand-in clients."""

from twisted.internet.defer import Deferred, fail
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from chatsvc import errors
from chatsvc.events import Arrival, IChatClient, Joined, Quit, Said
from chatsvc.store import Message, RoomRecord
from tests.memorystore import MemoryStore
from tests.support import makeLobby


@implementer(IChatClient)
class Mind:
    def __init__(self):
        self.events = []
        self.disconnected = None

    def deliver(self, event):
        self.events.append(event)

    def disconnect(self, reason):
        self.disconnected = reason


class LobbyTests(TestCase):
    def setUp(self):
        self.lobby = makeLobby()

    def say(self, user, room, text):
        d = self.lobby.say(user, room, text)
        self.lobby.clock.advance(0)  # broadcast at the end of the turn
        return self.successResultOf(d)

    def named(self, name):
        user = self.lobby.connect(Mind())
        self.lobby.chooseName(user, name)
        return user

    def test_startLoadsStoredRooms(self):
        store = MemoryStore()
        store.rooms[4] = RoomRecord(4, "kitchen", 0.0)
        store.messages[4] = [Message(4, n, f"id{n}", "ann", f"m{n}", 0.0)
                             for n in range(1, 11)]
        lobby = makeLobby(store, history_replay=3)
        self.assertEqual(list(lobby.roomList()), [("kitchen", 0)])
        room = lobby.rooms["kitchen"]
        self.assertEqual(room.delivered, 10)  # the newest seq: the store numbers the next
        self.assertIsNone(room.recent)  # read when someone joins, not at start-up
        user = lobby.connect(Mind())
        lobby.chooseName(user, "bob")
        self.successResultOf(lobby.createRoom(user, "hall"))
        self.assertEqual(lobby.rooms["hall"].id, 5)  # ids never reused

    def test_stopClosesStore(self):
        self.successResultOf(self.lobby.stopService())
        self.assertTrue(self.lobby.store.closed)

    def test_replayIsBoundedWhateverTheHistory(self):
        """A join reads the newest messages from memory, never the whole history."""
        alice = self.named("alice")
        self.successResultOf(self.lobby.createRoom(alice, "kitchen"))
        room = self.lobby.rooms["kitchen"]
        for n in range(500):
            self.say(alice, room, f"m{n}")
        self.assertEqual(len(room.recent), 50)
        arrival = self.successResultOf(self.lobby.join(self.named("bob"), "kitchen"))
        self.assertIsInstance(arrival, Arrival)
        self.assertEqual([m.text for m in arrival.replay], [f"m{n}" for n in range(450, 500)])
        self.assertEqual(arrival.older, 450)

    def test_createExistingNamesAFewRooms(self):
        alice = self.named("alice")
        for n in range(30):
            self.successResultOf(self.lobby.createRoom(alice, f"room{n:02}"))
        e = self.assertRaises(errors.RoomExists, self.lobby.createRoom, alice, "ROOM00")
        self.assertIn("room19 and 10 more (type list).", str(e))
        self.assertNotIn("room20", str(e))

    def test_createReservesNameWhileStoring(self):
        self.lobby.store.holding = []
        alice, bob = self.named("alice"), self.named("bob")
        d = self.lobby.createRoom(alice, "kitchen")
        self.assertRaises(errors.RoomExists, self.lobby.createRoom, bob, "KITCHEN")
        self.assertNoResult(d)
        self.lobby.store.release()
        self.assertEqual(self.successResultOf(d).room, "kitchen")

    def test_createFailureLeavesNothing(self):
        self.lobby.store.failing = True
        alice = self.named("alice")
        self.failureResultOf(self.lobby.createRoom(alice, "kitchen"), errors.NotStored)
        self.assertEqual(list(self.lobby.roomList()), [])
        self.assertEqual(alice.rooms, {})
        self.lobby.store.failing = False
        self.successResultOf(self.lobby.createRoom(alice, "kitchen"))
        self.flushLoggedErrors(OSError)

    def test_createdAfterCreatorLeft(self):
        self.lobby.store.holding = []
        alice = self.named("alice")
        d = self.lobby.createRoom(alice, "kitchen")
        self.lobby.disconnect(alice)
        self.lobby.store.release()
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(list(self.lobby.roomList()), [("kitchen", 0)])

    def test_joinWhileTheRoomIsBeingCreated(self):
        """IRC's JOIN creates: a second JOIN of a room being stored waits for it."""
        self.lobby.store.holding = []
        alice, bob = self.named("alice"), self.named("bob")
        created = self.lobby.createRoom(alice, "kitchen", exclusive=False)
        joined = self.lobby.join(bob, "kitchen", exclusive=False)
        self.assertNoResult(joined)
        self.lobby.store.release()
        self.assertEqual(self.successResultOf(created).members, ())
        self.assertEqual(self.successResultOf(joined).members, ("alice",))

    def test_severalRoomsAtOnce(self):
        """Front doors other than the native one may keep a user in many rooms."""
        alice, bob = self.named("alice"), self.named("bob")
        self.successResultOf(self.lobby.createRoom(alice, "one"))
        self.successResultOf(self.lobby.createRoom(alice, "two", exclusive=False))
        self.assertEqual(sorted(alice.rooms), ["one", "two"])
        self.lobby.join(bob, "one")
        self.lobby.join(bob, "two", exclusive=False)
        self.assertEqual(list(self.lobby.roomList()), [("one", 2), ("two", 2)])
        self.lobby.disconnect(bob)
        self.assertEqual(list(self.lobby.roomList()), [("one", 1), ("two", 1)])
        # Told once that bob has gone, however many rooms they shared.
        self.assertEqual(alice.mind.events[-1], Quit("bob", "lost"))
        self.assertNotIsInstance(alice.mind.events[-2], Quit)

    def test_eventsInOrder(self):
        alice, bob = self.named("alice"), self.named("bob")
        self.successResultOf(self.lobby.createRoom(alice, "kitchen"))
        self.lobby.join(bob, "kitchen")
        self.say(bob, self.lobby.rooms["kitchen"], "hi")
        joined, said = alice.mind.events
        self.assertEqual(joined, Joined("kitchen", "bob"))
        self.assertIsInstance(said, Said)
        ((sender, text, seq),) = [(m.sender, m.text, m.seq) for m in said.messages]
        self.assertEqual((sender, text, seq), ("bob", "hi", 1))

    def test_oneTurnOneEvent(self):
        """What is stored in one reactor turn reaches each member as one event."""
        alice, bob = self.named("alice"), self.named("bob")
        self.successResultOf(self.lobby.createRoom(alice, "kitchen"))
        self.lobby.join(bob, "kitchen")
        room = self.lobby.rooms["kitchen"]
        said = [self.lobby.say(alice, room, "one"), self.lobby.say(bob, room, "two")]
        self.assertEqual(alice.mind.events[-1], Joined("kitchen", "bob"))
        self.lobby.clock.advance(0)
        (event,) = alice.mind.events[1:]
        self.assertEqual([m.text for m in event.messages], ["one", "two"])
        self.assertEqual([self.successResultOf(d).text for d in said], ["one", "two"])

    def test_joinBetweenStoreAndBroadcast(self):
        """A message stored but not yet broadcast comes live, not in the replay."""
        alice, bob = self.named("alice"), self.named("bob")
        self.successResultOf(self.lobby.createRoom(alice, "kitchen"))
        room = self.lobby.rooms["kitchen"]
        self.lobby.say(alice, room, "in flight")
        arrival = self.successResultOf(self.lobby.join(bob, "kitchen"))
        self.assertEqual(arrival.replay, ())
        self.lobby.clock.advance(0)
        (event,) = bob.mind.events
        self.assertEqual([m.text for m in event.messages], ["in flight"])

    def holdTwo(self):
        """alice and bob in kitchen; "one" and "two" said, both still being stored."""
        alice, bob = self.named("alice"), self.named("bob")
        self.successResultOf(self.lobby.createRoom(alice, "kitchen"))
        self.lobby.join(bob, "kitchen")
        room = self.lobby.rooms["kitchen"]
        self.lobby.store.holding = []
        said = [self.lobby.say(alice, room, "one"), self.lobby.say(bob, room, "two")]
        return alice, bob, room, said

    def saidTexts(self, user):
        return [[m.text for m in e.messages] for e in user.mind.events if type(e) is Said]

    def test_storedWaitsForTheNextCommit(self):
        """
        A message stored while another is already on its way to the store is
        broadcast with it, in one event: one write per member, not two.
        """
        alice, bob, room, said = self.holdTwo()
        self.lobby.store.release(1)  # "one" is stored; "two" is not yet
        self.lobby.clock.advance(0)
        self.assertEqual(self.saidTexts(bob), [])
        self.assertNoResult(said[0])
        self.lobby.store.release()
        self.lobby.clock.advance(0)
        self.assertEqual(self.saidTexts(bob), [["one", "two"]])
        self.assertEqual(self.saidTexts(alice), [["one", "two"]])
        self.assertEqual([self.successResultOf(d).text for d in said], ["one", "two"])

    def test_laterMessagesDoNotHoldIt(self):
        """It waits only for what was handed to the store before it came back."""
        alice, bob, room, said = self.holdTwo()
        self.lobby.store.release(1)
        self.lobby.store.release(1)  # "two": everything "one" waited for is back
        self.lobby.say(alice, room, "three")
        self.lobby.clock.advance(0)
        self.assertEqual(self.saidTexts(bob), [["one", "two"]])
        self.lobby.store.release()
        self.lobby.clock.advance(0)
        self.assertEqual(self.saidTexts(bob), [["one", "two"], ["three"]])

    def test_failedWriteReleasesTheHold(self):
        """If the message it waits for cannot be stored, it goes out alone."""
        alice, bob, room, said = self.holdTwo()
        self.lobby.store.release(1)
        self.lobby.store.failing = True
        self.lobby.store.release()
        self.lobby.clock.advance(0)
        self.assertEqual(self.saidTexts(bob), [["one"]])
        self.assertEqual(self.successResultOf(said[0]).text, "one")
        self.failureResultOf(said[1], errors.NotStored)

    def test_writeFailingAtOnceReleasesTheHold(self):
        """
        A store may fail a message at once, before an earlier one comes back
        (a closing store does): the earlier one still goes out when stored.
        """
        alice, bob = self.named("alice"), self.named("bob")
        self.successResultOf(self.lobby.createRoom(alice, "kitchen"))
        self.lobby.join(bob, "kitchen")
        room = self.lobby.rooms["kitchen"]
        self.lobby.store.holding = []
        one = self.lobby.say(alice, room, "one")
        self.lobby.store.failing = True
        self.failureResultOf(self.lobby.say(bob, room, "two"), errors.NotStored)
        self.lobby.store.failing = False
        self.lobby.store.release()
        self.lobby.clock.advance(0)
        self.assertEqual(self.saidTexts(bob), [["one"]])
        self.assertEqual(self.successResultOf(one).text, "one")

    def test_historyCursorMovesBeforeRowsArrive(self):
        alice = self.named("alice")
        self.successResultOf(self.lobby.createRoom(alice, "kitchen"))
        room = self.lobby.rooms["kitchen"]
        for n in range(120):
            self.say(alice, room, f"m{n}")
        bob = self.named("bob")
        self.lobby.join(bob, "kitchen")  # sent m70..m119
        pages = [self.lobby.history(bob, room, 30), self.lobby.history(bob, room, 30)]
        first, second = (self.successResultOf(d) for d in pages)
        self.assertEqual([m.text for m in first.messages], [f"m{n}" for n in range(40, 70)])
        self.assertEqual([m.text for m in second.messages], [f"m{n}" for n in range(10, 40)])
        self.assertEqual(second.older, 10)

    def test_guestNumbersCount(self):
        names = [self.lobby.chooseName(self.lobby.connect(Mind()), "") for _ in range(3)]
        self.assertEqual(names, ["Guest1", "Guest2", "Guest3"])


class ReplayCacheTests(TestCase):
    """Recent messages are kept only for rooms people are in."""

    def setUp(self):
        self.lobby = makeLobby(history_replay=3)
        self.ann = self.lobby.connect(Mind())
        self.lobby.chooseName(self.ann, "ann")

    def say(self, room, text):
        self.lobby.say(self.ann, room, text)
        self.lobby.clock.advance(0)

    def test_emptyRoomsKeepNothingInMemory(self):
        for n in range(100):
            self.successResultOf(self.lobby.createRoom(self.ann, f"room{n}"))
            room = self.lobby.rooms[f"room{n}"]
            for m in range(5):
                self.say(room, f"m{m}")
        self.lobby.leave(self.ann, self.lobby.rooms["room99"])
        self.assertEqual([r for r in self.lobby.rooms.values() if r.recent is not None], [])

    def test_joinAnEmptyRoomReadsItsNewestFromTheStore(self):
        self.successResultOf(self.lobby.createRoom(self.ann, "kitchen"))
        room = self.lobby.rooms["kitchen"]
        for m in range(10):
            self.say(room, f"m{m}")
        self.lobby.leave(self.ann, room)
        arrival = self.successResultOf(self.lobby.join(self.ann, "kitchen"))
        self.assertEqual([m.text for m in arrival.replay], ["m7", "m8", "m9"])
        self.assertEqual(arrival.older, 7)

    def test_joinsWaitingForOneReadShareIt(self):
        self.successResultOf(self.lobby.createRoom(self.ann, "kitchen"))
        room = self.lobby.rooms["kitchen"]
        self.say(room, "hello")
        self.lobby.leave(self.ann, room)
        reads = []
        page = self.lobby.store.page
        held = Deferred()

        def slowPage(*args):
            reads.append(args)
            return held.addCallback(lambda _: page(*args))
        self.lobby.store.page = slowPage
        bob = self.lobby.connect(Mind())
        self.lobby.chooseName(bob, "bob")
        first, second = self.lobby.join(self.ann, "kitchen"), self.lobby.join(bob, "kitchen")
        self.assertNoResult(first)
        held.callback(None)
        self.assertEqual(len(reads), 1)
        self.assertEqual([m.text for m in self.successResultOf(first).replay], ["hello"])
        self.assertEqual([m.text for m in self.successResultOf(second).replay], ["hello"])

    def test_messageSentWhileReadingIsNotMissed(self):
        """One stored after the last member left, while a join reads: read again."""
        self.successResultOf(self.lobby.createRoom(self.ann, "kitchen"))
        room = self.lobby.rooms["kitchen"]
        self.say(room, "hello")
        self.lobby.store.holding = []
        self.lobby.say(self.ann, room, "goodbye")  # stored after ann has gone
        self.lobby.leave(self.ann, room)
        page = self.lobby.store.page
        held = []

        def slowPage(*args):
            d = Deferred()
            held.append((d, args))
            return d
        self.lobby.store.page = slowPage
        joining = self.lobby.join(self.ann, "kitchen")
        self.lobby.store.release()
        self.lobby.clock.advance(0)
        d, args = held.pop()
        d.callback(self.successResultOf(page(*args)))  # the read began before "goodbye"
        self.assertNoResult(joining)  # ... so it reads again
        d, args = held.pop()
        d.callback(self.successResultOf(page(*args)))
        self.assertEqual([m.text for m in self.successResultOf(joining).replay],
                         ["hello", "goodbye"])

    def test_unreadableHistoryIsAClearRefusal(self):
        self.successResultOf(self.lobby.createRoom(self.ann, "kitchen"))
        room = self.lobby.rooms["kitchen"]
        self.say(room, "hello")
        self.lobby.leave(self.ann, room)
        self.lobby.store.page = lambda *args: fail(OSError("disk gone"))
        failure = self.failureResultOf(self.lobby.join(self.ann, "kitchen"), errors.NotRead)
        self.assertEqual(str(failure.value), "The history of kitchen could not be read,"
                         " so you did not join it. Please try again.")
        self.assertEqual(self.ann.rooms, {})
        self.flushLoggedErrors(OSError)

    def test_joinerGoneWhileReadingLeavesNothingKept(self):
        self.successResultOf(self.lobby.createRoom(self.ann, "kitchen"))
        room = self.lobby.rooms["kitchen"]
        self.say(room, "hello")
        self.lobby.leave(self.ann, room)
        page, held = self.lobby.store.page, Deferred()
        self.lobby.store.page = lambda *args: held.addCallback(lambda _: page(*args))
        joining = self.lobby.join(self.ann, "kitchen")
        self.lobby.disconnect(self.ann)
        held.callback(None)
        self.assertIsNone(self.successResultOf(joining))
        self.assertIsNone(room.recent)
        self.assertEqual(room.members, {})


class RoomListTests(TestCase):
    def setUp(self):
        self.lobby = makeLobby(max_rooms=10_000, create_rate=0)
        self.ann = self.lobby.connect(Mind())
        self.lobby.chooseName(self.ann, "ann")
        for n in range(0, 100, 2):
            self.successResultOf(self.lobby.createRoom(self.ann, f"r{n:03}"))
        self.lobby.leave(self.ann, self.lobby.rooms["r098"])

    def test_roomsCreatedWhileListingRepeatNothing(self):
        listing = self.lobby.roomList()
        first = [next(listing) for _ in range(10)]
        self.successResultOf(self.lobby.createRoom(self.ann, "r001"))  # sorts before them
        self.lobby.leave(self.ann, self.lobby.rooms["r001"])
        names = [name for name, _ in first + list(listing)]
        self.assertEqual(names, [f"r{n:03}" for n in range(0, 100, 2)])

    def test_roomFilledWhileListingIsStillListed(self):
        listing = self.lobby.roomList()
        first = [next(listing) for _ in range(10)]
        self.successResultOf(self.lobby.join(self.ann, "r050"))
        rest = list(listing)
        self.assertIn(("r050", 1), rest)
        self.assertEqual(len(first) + len(rest), 50)

"""Running rooms and the server, without any front door: a Lobby and stand-in clients."""

from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from chatsvc import errors
from chatsvc.events import Invited, Kicked, Killed, ModeChanged, Quit, Said, TopicChanged
from chatsvc.rooms import Topic
from tests.memorystore import MemoryStore
from tests.support import NOW, makeLobby
from tests.test_accounts import PASSWORD, accountsLobby
from tests.test_lobby import Mind


class RoomTests(TestCase):
    """alice created kitchen (so runs it while there); bob is in it; carol is not."""

    def setUp(self):
        self.store = MemoryStore()
        self.lobby = makeLobby(self.store)
        self.alice, self.bob, self.carol = (self.named(n) for n in ("alice", "bob", "carol"))
        self.successResultOf(self.lobby.createRoom(self.alice, "kitchen"))
        self.successResultOf(self.lobby.join(self.bob, "kitchen"))
        self.room = self.lobby.rooms["kitchen"]
        self.clear()

    def named(self, name, host=None):
        user = self.lobby.connect(Mind())
        self.lobby.chooseName(user, name)
        user.host = host
        return user

    def clear(self):
        for user in (self.alice, self.bob, self.carol):
            user.mind.events.clear()

    def modes(self, *changes, by=None):
        event, refused = self.successResultOf(
            self.lobby.setModes(by or self.alice, self.room, list(changes)))
        self.assertEqual(refused, [])
        return event

    def say(self, user, text, room=None):
        d = self.lobby.say(user, room or self.room, text)
        self.lobby.clock.advance(0)
        return self.successResultOf(d)

    def test_creatorRunsTheRoom(self):
        self.assertEqual(self.room.operators, {self.alice})
        self.assertRaises(errors.NotOperator, self.lobby.setModes, self.bob, self.room,
                          [(True, "m", None)])

    def test_topicStoredAndShownOnJoin(self):
        event = self.successResultOf(self.lobby.setTopic(self.alice, self.room, " Cats only "))
        self.assertEqual(event, TopicChanged("kitchen", "alice", "Cats only", NOW))
        self.assertEqual(self.bob.mind.events, [event])
        self.assertEqual(self.store.settings["room/1"]["topic"], ["Cats only", "alice", NOW])
        arrival = self.successResultOf(self.lobby.join(self.carol, "kitchen"))
        self.assertEqual(arrival.topic, Topic("Cats only", "alice", NOW))
        # ... and after a restart
        again = makeLobby(self.store)
        self.assertEqual(again.rooms["kitchen"].topic, Topic("Cats only", "alice", NOW))
        # +t (the default): only operators; "" clears it
        self.assertRaises(errors.NotOperator, self.lobby.setTopic, self.bob, self.room, "x")
        self.assertRaises(errors.NotInRoom, self.lobby.setTopic, self.named("dave"),
                          self.room, "x")
        self.successResultOf(self.lobby.setTopic(self.alice, self.room, ""))
        self.assertIsNone(self.room.topic)
        self.assertIsNone(self.successResultOf(self.lobby.join(self.named("erin"),
                                                               "kitchen")).topic)

    def test_withoutTAnyMemberSetsTheTopic(self):
        self.modes((False, "t", None))
        self.successResultOf(self.lobby.setTopic(self.bob, self.room, "bob's"))
        self.assertEqual(self.room.topic.by, "bob")

    def test_banBlocksJoinAndSpeech(self):
        event = self.modes((True, "b", "carol"), (True, "b", "BOB"))
        self.assertEqual(event, ModeChanged("kitchen", "alice",
                                            (("+b", "carol!*@*"), ("+b", "BOB!*@*"))))
        self.assertRaises(errors.Banned, self.lobby.join, self.carol, "kitchen")
        self.assertRaises(errors.CannotSend, self.lobby.say, self.bob, self.room, "hi")
        self.assertEqual([m for m, _, _ in self.lobby.maskList(self.room, "b")],
                         ["carol!*@*", "BOB!*@*"])
        self.modes((False, "b", "bob!*@*"))  # lifted whatever its case
        self.say(self.bob, "free")
        self.assertEqual(self.store.settings["room/1"]["lists"]["b"][0][0], "carol!*@*")

    def test_banByAccountAndHost(self):
        self.carol.account = "carol_acct"
        self.modes((True, "b", "$a:carol_*"))
        self.assertRaises(errors.Banned, self.lobby.join, self.carol, "kitchen")
        dave = self.named("dave", host="192.0.2.5")
        self.modes((True, "b", "*@192.0.2.*"))
        self.assertRaises(errors.Banned, self.lobby.join, dave, "kitchen")

    def test_muteLetsInButNotSpeak(self):
        event = self.modes((True, "b", "$m:carol"))
        self.assertEqual(event.changes, (("+b", "$m:carol!*@*"),))
        self.successResultOf(self.lobby.join(self.carol, "kitchen"))
        self.assertRaises(errors.CannotSend, self.lobby.say, self.carol, self.room, "hi")

    def test_exceptionToBans(self):
        self.modes((True, "b", "*!*@*"), (True, "e", "carol"))
        self.successResultOf(self.lobby.join(self.carol, "kitchen"))
        self.say(self.carol, "excepted")
        self.assertRaises(errors.Banned, self.lobby.join, self.named("dave"), "kitchen")

    def test_inviteOnly(self):
        self.modes((True, "i", None))
        self.assertRaises(errors.InviteOnly, self.lobby.join, self.carol, "kitchen")
        self.assertRaises(errors.NotOperator, self.lobby.invite, self.bob, self.room, "carol")
        event = self.lobby.invite(self.alice, self.room, "Carol")
        self.assertEqual(event, Invited("kitchen", "carol", "alice"))
        self.assertEqual(self.carol.mind.events, [event])
        self.successResultOf(self.lobby.join(self.carol, "kitchen"))
        self.lobby.leave(self.carol, self.room)
        self.assertRaises(errors.InviteOnly, self.lobby.join, self.carol, "kitchen")  # once
        self.modes((True, "I", "car*"))
        self.successResultOf(self.lobby.join(self.carol, "kitchen"))
        self.assertRaises(errors.BadMode, self.lobby.invite, self.alice, self.room, "bob")

    def test_key(self):
        event = self.modes((True, "k", "sesame"))
        self.assertEqual(event.changes, (("+k", "sesame"),))
        self.assertRaises(errors.BadKey, self.lobby.join, self.carol, "kitchen")
        self.assertRaises(errors.BadKey, self.lobby.join, self.carol, "kitchen", key="nope")
        self.successResultOf(self.lobby.join(self.carol, "kitchen", key="sesame"))
        self.modes((False, "k", None))
        self.successResultOf(self.lobby.join(self.named("dave"), "kitchen"))

    def test_limit(self):
        self.modes((True, "l", "2"))
        self.assertRaises(errors.RoomFull, self.lobby.join, self.carol, "kitchen")
        self.lobby.leave(self.bob, self.room)
        self.successResultOf(self.lobby.join(self.carol, "kitchen"))
        self.successResultOf(self.lobby.join(self.alice, "kitchen"))  # its operator was in
        self.modes((False, "l", None))
        self.successResultOf(self.lobby.join(self.bob, "kitchen"))

    def test_moderatedAndVoice(self):
        self.modes((True, "m", None))
        self.assertRaises(errors.Moderated, self.lobby.say, self.bob, self.room, "hi")
        self.say(self.alice, "operators speak")
        self.modes((True, "v", "bob"))
        self.say(self.bob, "voiced")
        self.modes((False, "v", "bob"))
        self.assertRaises(errors.Moderated, self.lobby.say, self.bob, self.room, "hi")

    def test_withoutNOutsidersTalk(self):
        self.assertRaises(errors.NotInRoom, self.lobby.say, self.carol, self.room, "hi")
        self.modes((False, "n", None))
        message = self.say(self.carol, "from outside")
        self.assertEqual(message.sender, "carol")
        self.assertEqual(type(self.bob.mind.events[-1]), Said)
        self.assertEqual(self.carol.mind.events, [])  # not a member: no copy

    def test_secretRoomsAreHiddenFromOutsiders(self):
        self.successResultOf(self.lobby.createRoom(self.carol, "hall"))
        self.modes((True, "s", None))
        listed = [r for r in self.lobby.roomList(viewer=self.carol) if r is not None]
        self.assertEqual(listed, [("hall", 1)])
        listed = [r for r in self.lobby.roomList(viewer=self.bob) if r is not None]
        self.assertEqual(listed, [("kitchen", 2), ("hall", 1)])
        self.assertNotIn(("kitchen", 2), list(self.lobby.roomList("kit*", viewer=self.carol)))

    def test_kick(self):
        self.assertRaises(errors.NotOperator, self.lobby.kick, self.bob, self.room, "alice")
        self.assertRaises(errors.NotInThatRoom, self.lobby.kick, self.alice, self.room, "carol")
        self.assertRaises(errors.NoSuchUser, self.lobby.kick, self.alice, self.room, "zed")
        event = self.lobby.kick(self.alice, self.room, "BOB", "too loud")
        self.assertEqual(event, Kicked("kitchen", "bob", "alice", "too loud"))
        self.assertEqual(self.alice.mind.events, [event])
        self.assertEqual(self.bob.mind.events, [event])  # the target is told too
        self.assertNotIn(self.bob, self.room.members)
        self.assertEqual(self.bob.rooms, {})
        self.successResultOf(self.lobby.join(self.bob, "kitchen"))  # a kick is not a ban

    def test_refusedChangesAreReported(self):
        event, refused = self.successResultOf(self.lobby.setModes(
            self.alice, self.room, [(True, "i", None), (True, "o", "zed"), (True, "q", None)]))
        self.assertEqual(event.changes, (("+i", None),))
        self.assertEqual([(letter, type(e)) for letter, e in refused],
                         [("o", errors.NoSuchUser), ("q", errors.BadMode)])

    def test_atomicRefusalChangesNothing(self):
        event, refused = self.successResultOf(self.lobby.setModes(
            self.alice, self.room, [(True, "i", None), (True, "v", "bob"), (True, "o", "zed")],
            atomic=True))
        self.assertIsNone(event)
        self.assertEqual(len(refused), 1)
        self.assertEqual((self.room.modes, self.room.voiced), ({"n", "t"}, set()))
        self.assertEqual(self.bob.mind.events, [])

    def test_refusedStoreWriteLeavesNothingChanged(self):
        self.successResultOf(self.lobby.setTopic(self.alice, self.room, "before"))
        saved = dict(self.store.settings)
        self.clear()
        self.store.failing = True
        self.failureResultOf(self.lobby.setTopic(self.alice, self.room, "after"),
                             errors.NotStored)
        self.failureResultOf(self.lobby.setModes(
            self.alice, self.room, [(True, "i", None), (True, "o", "bob"),
                                    (True, "b", "carol"), (True, "k", "key")]),
            errors.NotStored)
        self.assertEqual(self.room.topic.text, "before")
        self.assertEqual((self.room.modes, self.room.operators, dict(self.room.bans),
                          self.room.password), ({"n", "t"}, {self.alice}, {}, None))
        self.assertEqual(self.bob.mind.events, [])
        self.assertEqual(self.store.settings, saved)
        self.flushLoggedErrors(OSError)


class RolesTests(TestCase):
    @inlineCallbacks
    def test_rolesByAccountSurviveARestart(self):
        store = MemoryStore()
        lobby = accountsLobby(self, store)
        alice, bob, guest = (self.named(lobby, n) for n in ("alice", "bob", "gus"))
        yield lobby.register(alice, PASSWORD)
        yield lobby.register(bob, PASSWORD)
        self.successResultOf(lobby.createRoom(alice, "kitchen"))
        room = lobby.rooms["kitchen"]
        self.assertEqual(room.owner, "alice")
        for user in (bob, guest):
            self.successResultOf(lobby.join(user, "kitchen"))
        self.successResultOf(lobby.setModes(alice, room, [(True, "o", "bob"),
                                                          (True, "v", "gus")]))
        self.assertEqual(store.settings["room/1"]["roles"], {"bob": "o"})  # a guest's is not kept
        lobby.accounts.stopService()

        again = accountsLobby(self, store)
        room = again.rooms["kitchen"]
        gus = self.named(again, "gus")
        self.successResultOf(again.join(gus, "kitchen"))
        self.assertEqual((room.operators, room.voiced), (set(), set()))  # its owner runs it
        bob = again.connect(Mind())
        yield again.identify(bob, "bob", PASSWORD)
        self.successResultOf(again.join(bob, "kitchen"))
        self.assertEqual(room.operators, {bob})
        alice = self.named(again, "carol")
        self.successResultOf(again.join(alice, "kitchen"))
        alice.mind.events.clear()
        yield again.identify(alice, "alice", PASSWORD)  # its owner signs in while there
        self.assertIn(alice, room.operators)
        self.assertIn(ModeChanged("kitchen", None, (("+o", "alice"),)), gus.mind.events)
        self.successResultOf(again.setModes(alice, room, [(False, "o", "bob")]))
        self.assertEqual(store.settings["room/1"]["roles"], {})

    @staticmethod
    def named(lobby, name):
        user = lobby.connect(Mind())
        lobby.chooseName(user, name)
        return user


class ServerOperatorTests(TestCase):
    @inlineCallbacks
    def setUp(self):
        self.store = MemoryStore()
        self.lobby = accountsLobby(self, self.store, operators=("root",))
        self.root = self.named("root")
        yield self.lobby.register(self.root, PASSWORD)
        self.assertTrue(self.root.operator)
        self.bob = self.named("bob", "192.0.2.7")
        self.carol = self.named("carol", "198.51.100.1")
        self.successResultOf(self.lobby.createRoom(self.carol, "kitchen"))
        self.successResultOf(self.lobby.join(self.bob, "kitchen"))
        self.room = self.lobby.rooms["kitchen"]
        for user in (self.bob, self.carol):
            user.mind.events.clear()

    def named(self, name, host=None):
        user = self.lobby.connect(Mind(), host=host)
        self.lobby.chooseName(user, name)
        user.host = host
        return user

    def test_othersAreRefused(self):
        self.assertRaises(errors.NotServerOperator, self.lobby.killUser, self.bob, "carol")
        self.assertRaises(errors.NotServerOperator, self.lobby.banAddress, self.bob, "1.2.3.4")
        self.assertRaises(errors.NotServerOperator, self.lobby.unbanAddress, self.bob, "x")
        self.assertRaises(errors.NotServerOperator, self.lobby.removeRoom, self.bob, self.room)

    def test_kill(self):
        self.assertEqual(self.lobby.killUser(self.root, "BOB", "flooding"), "bob")
        self.assertEqual(self.bob.mind.events, [Killed("root", "flooding")])
        self.assertEqual(self.carol.mind.events, [Quit("bob", "killed",
                                                       "Killed by root: flooding")])
        self.assertNotIn("bob", self.lobby.names)
        self.assertNotIn(self.bob, self.room.members)
        self.assertRaises(errors.NoSuchUser, self.lobby.killUser, self.root, "bob")

    def test_banAddress(self):
        count = self.successResultOf(self.lobby.banAddress(self.root, "192.0.2.0/24", "spam"))
        self.assertEqual(count, 1)
        self.assertEqual(self.bob.mind.events, [Killed(None, "Your address is banned from"
                                                             " this server: spam")])
        self.assertNotIn(self.bob, self.lobby.users)
        self.assertRaises(errors.AddressBanned, self.lobby.connect, Mind(), host="192.0.2.200")
        again = makeLobby(self.store)  # kept in the store
        self.addCleanup(again.accounts.stopService)
        self.assertRaises(errors.AddressBanned, again.connect, Mind(), host="192.0.2.200")
        self.successResultOf(self.lobby.unbanAddress(self.root, "192.0.2.0/24"))
        self.lobby.connect(Mind(), host="192.0.2.200")
        self.assertRaises(errors.BadMode, self.lobby.unbanAddress, self.root, "192.0.2.0/24")

    def test_banAddressGlob(self):
        self.successResultOf(self.lobby.banAddress(self.root, "198.51.*"))
        self.assertNotIn(self.carol, self.lobby.users)
        self.assertIn(self.bob, self.lobby.users)

    def test_removeRoomKeepsItsHistory(self):
        d = self.lobby.say(self.carol, self.room, "kept")
        self.lobby.clock.advance(0)
        self.successResultOf(d)
        self.carol.mind.events.clear()
        self.assertEqual(self.successResultOf(self.lobby.removeRoom(self.root, self.room)),
                         "kitchen")
        reason = "This room was removed by a server operator"
        self.assertEqual(self.carol.mind.events, [Kicked("kitchen", "carol", "root", reason)])
        self.assertEqual(self.bob.rooms, {})
        self.assertNotIn("kitchen", self.lobby.rooms)
        self.assertEqual([m.text for m in self.store.messages[1]], ["kept"])
        again = makeLobby(self.store)
        self.addCleanup(again.accounts.stopService)
        self.assertNotIn("kitchen", again.rooms)
        self.successResultOf(self.lobby.createRoom(self.carol, "kitchen"))  # its name is free
        self.assertEqual(self.lobby.rooms["kitchen"].id, 2)

    def test_removeRoomAndForgetIt(self):
        self.successResultOf(self.lobby.removeRoom(self.root, self.room, forget=True))
        self.assertNotIn(1, self.store.rooms)
        self.assertNotIn("room/1", self.store.settings)

    def test_refusedStoreWriteLeavesNothingChanged(self):
        self.store.failing = True
        self.failureResultOf(self.lobby.banAddress(self.root, "192.0.2.7"), errors.NotStored)
        self.assertEqual(self.lobby.addressBans, {})
        self.assertIn(self.bob, self.lobby.users)
        self.failureResultOf(self.lobby.removeRoom(self.root, self.room), errors.NotStored)
        self.assertIs(self.lobby.rooms["kitchen"], self.room)
        self.assertEqual(set(self.room.members), {self.bob, self.carol})
        self.assertEqual((self.bob.mind.events, self.carol.mind.events), ([], []))
        self.flushLoggedErrors(OSError)


class ReviewedRulesTests(RoomTests):
    """Rules a review found loose: who an invitation lets in, changes one at a time, ..."""

    def test_onlyAnOperatorsInvitationLetsAnyonePast(self):
        self.modes((True, "k", "sesame"), (True, "b", "carol"))
        self.lobby.invite(self.bob, self.room, "carol")  # bob is no operator
        self.assertRaises(errors.Banned, self.lobby.join, self.carol, "kitchen")
        self.lobby.invite(self.alice, self.room, "carol")
        self.successResultOf(self.lobby.join(self.carol, "kitchen"))

    def test_anInvitationIsForThePersonNotTheName(self):
        self.modes((True, "i", None))
        self.lobby.invite(self.alice, self.room, "carol")
        self.lobby.disconnect(self.carol)
        someoneElse = self.named("carol")
        self.assertRaises(errors.InviteOnly, self.lobby.join, someoneElse, "kitchen")

    def test_changesToARoomAreStoredOneAtATime(self):
        """A refused change is undone to exactly what was before it, whatever follows."""
        self.store.holding = []
        first = self.lobby.setModes(self.alice, self.room, [(True, "i", None)])
        second = self.lobby.setModes(self.alice, self.room, [(True, "m", None)])
        self.assertEqual(len(self.store.holding), 1)  # the second waits for the first
        _, write = self.store.holding.pop(0)
        write.errback(OSError("disk full"))  # the first is refused ...
        self.failureResultOf(first, errors.NotStored)
        self.flushLoggedErrors(OSError)
        self.store.release()  # ... the second, applied only then, is stored
        self.successResultOf(second)
        self.assertEqual(self.room.modes, {"m", "n", "t"})
        self.assertEqual(self.store.settings["room/1"]["modes"], "mnt")

    def test_limitsAreAsciiNumbers(self):
        event, refused = self.successResultOf(
            self.lobby.setModes(self.alice, self.room, [(True, "l", "\u00b2")]))
        self.assertIsNone(event)
        self.assertIsInstance(refused[0][1], errors.BadMode)

    def test_keysAndMasksAreOneIrcWord(self):
        for change in ((True, "k", ":x"), (True, "k", "a:b"), (True, "b", ":x!*@*")):
            event, refused = self.successResultOf(
                self.lobby.setModes(self.alice, self.room, [change]))
            self.assertIsNone(event, change)

    def test_nobodyIsNickServ(self):
        self.assertRaises(errors.NameTaken, self.lobby.chooseName,
                          self.lobby.connect(Mind()), "nickserv")
        self.assertRaises(errors.NameTaken, self.lobby.rename, self.bob, "NickServ")

    def test_reactionsKeepTheRoomsRules(self):
        self.modes((True, "m", None))
        self.assertRaises(errors.Moderated, self.lobby.signal, self.bob, room=self.room)


class Owned:
    """olga owns kitchen and made otto (signed in) an operator; gus (a guest) is there too."""

    @inlineCallbacks
    def setUp(self):
        self.lobby = accountsLobby(self)
        self.owner = self.lobby.connect(Mind())
        self.lobby.chooseName(self.owner, "olga")
        yield self.lobby.register(self.owner, PASSWORD)
        yield self.lobby.createRoom(self.owner, "kitchen")
        self.room = self.lobby.rooms["kitchen"]
        self.op = self.lobby.connect(Mind())
        self.lobby.chooseName(self.op, "otto")
        yield self.lobby.register(self.op, PASSWORD)
        yield self.lobby.join(self.op, "kitchen")
        self.guest = self.lobby.connect(Mind())
        self.lobby.chooseName(self.guest, "gus")
        yield self.lobby.join(self.guest, "kitchen")
        yield self.lobby.setModes(self.owner, self.room, [(True, "o", "otto")])


class OwnerTests(Owned, TestCase):
    def test_theOwnersOperatorsKeepItByAccount(self):
        self.assertEqual(self.room.roles, {"otto": "o"})

    def test_operatorsCannotActAgainstTheOwner(self):
        self.assertRaises(errors.OwnerProtected, self.lobby.kick, self.op, self.room, "olga")
        event, refused = self.successResultOf(
            self.lobby.setModes(self.op, self.room, [(False, "o", "olga")]))
        self.assertIsNone(event)
        self.assertIsInstance(refused[0][1], errors.OwnerProtected)
        self.assertIn(self.owner, self.room.operators)

    @inlineCallbacks
    def test_anOperatorsGrantsLastTheSession(self):
        other = self.lobby.connect(Mind())
        self.lobby.chooseName(other, "pia")
        yield self.lobby.register(other, PASSWORD)
        yield self.lobby.join(other, "kitchen")
        yield self.lobby.setModes(self.op, self.room, [(True, "o", "pia")])
        self.assertIn(other, self.room.operators)
        self.assertEqual(self.room.roles, {"otto": "o"})  # not pia's account


class RegistrationLimitTests(TestCase):
    @inlineCallbacks
    def test_oneAddressRegistersAFewAnHour(self):
        lobby = accountsLobby(self, login_slots_per_address=0)
        for n in range(3):
            user = lobby.connect(Mind(), "192.0.2.1")
            lobby.chooseName(user, f"squat{n}")
            yield lobby.register(user, PASSWORD)
        user = lobby.connect(Mind(), "192.0.2.1")
        lobby.chooseName(user, "squat3")
        self.assertRaises(errors.TooManyAttempts, lobby.register, user, PASSWORD)
        lobby.clock.advance(3600 / 5)
        yield lobby.register(user, PASSWORD)

    @inlineCallbacks
    def test_stoppingRefusesPasswordsClearly(self):
        lobby = accountsLobby(self)
        user = lobby.connect(Mind())
        lobby.chooseName(user, "late")
        lobby.accounts.startService()
        lobby.accounts.stopService()
        self.assertRaises(errors.ServerStopping, lobby.register, user, PASSWORD)
        yield None


class SecretRoomTests(Owned, TestCase):
    def test_theOwnerSeesTheirSecretRoomFromOutside(self):
        self.successResultOf(self.lobby.setModes(self.owner, self.room, [(True, "s", None)]))
        self.lobby.leave(self.owner, self.room)
        self.lobby.leave(self.guest, self.room)
        outsider = self.lobby.connect(Mind())
        self.lobby.chooseName(outsider, "nosy")
        listed = lambda user: [r for r in self.lobby.roomList(None, user) if r]  # noqa: E731
        self.assertEqual(listed(self.owner), [("kitchen", 1)])
        self.assertEqual(self.lobby.roomCount(self.owner), 1)
        self.assertEqual(listed(outsider), [])
        self.assertEqual(self.lobby.roomCount(outsider), 0)
        self.assertEqual(listed(self.guest), [])  # a guest who left is an outsider again

"""Accounts: hashing, registering, signing in, brute force slowed; hashed on the thread pool."""

from twisted.internet.defer import inlineCallbacks
from twisted.logger import globalLogPublisher, formatEvent
from twisted.trial.unittest import TestCase

from chatsvc import errors
from chatsvc.accounts import checkPassword, hashPassword
from chatsvc.events import AccountChanged, Killed, Quit
from tests.memorystore import MemoryStore
from tests.support import makeLobby
from tests.test_lobby import Mind

CHEAP = (2 ** 4, 1, 1)  # scrypt's cost in these tests: microseconds, not tens of ms
PASSWORD = "correct-horse"


def accountsLobby(case, store=None, **settings):
    """A started Lobby hashing cheaply on its own thread pool, stopped after the test."""
    lobby = makeLobby(store, **settings)
    lobby.accounts._cost = CHEAP
    case.addCleanup(lambda: lobby.accounts.running and lobby.accounts.stopService())
    return lobby


def named(lobby, name, address=None):
    user = lobby.connect(Mind(), address)
    lobby.chooseName(user, name)
    return user


class HashTests(TestCase):
    def test_roundTrip(self):
        hashed = hashPassword(PASSWORD, *CHEAP)
        self.assertTrue(hashed.startswith("scrypt$16$1$1$"))
        self.assertNotIn(PASSWORD, hashed)
        self.assertTrue(checkPassword(PASSWORD, hashed))
        self.assertFalse(checkPassword(PASSWORD + "!", hashed))
        self.assertFalse(checkPassword("", hashed))

    def test_salted(self):
        self.assertNotEqual(hashPassword(PASSWORD, *CHEAP), hashPassword(PASSWORD, *CHEAP))

    def test_malformedHashesMatchNothing(self):
        for stored in ["", "plain", "md5$1$1$1$AAAA$AAAA", "scrypt$x$1$1$AAAA$AAAA"]:
            self.assertFalse(checkPassword(PASSWORD, stored), stored)


class RegisterTests(TestCase):
    def setUp(self):
        self.lobby = accountsLobby(self)

    @inlineCallbacks
    def test_registerThenIdentify(self):
        alice = named(self.lobby, "Alice")
        account = yield self.lobby.register(alice, PASSWORD)
        self.assertEqual((account.name, alice.account), ("Alice", "Alice"))
        name, hashed, _ = self.lobby.store.accounts["alice"]
        self.assertEqual(name, "Alice")
        self.assertTrue(checkPassword(PASSWORD, hashed))
        self.lobby.disconnect(alice)
        again = self.lobby.connect(Mind())
        self.assertRaises(errors.NameRegistered, self.lobby.chooseName, again, "ALICE")
        self.assertIsNone(again.name)
        self.assertEqual((yield self.lobby.identify(again, "alice", PASSWORD)), "Alice")
        self.assertEqual((again.name, again.account), ("Alice", "Alice"))

    @inlineCallbacks
    def test_identifyAfterNaming(self):
        self.lobby.accounts.load([("dora", hashPassword(PASSWORD, *CHEAP), 0.0)])
        guest = named(self.lobby, "")
        ann = named(self.lobby, "ann")
        self.successResultOf(self.lobby.createRoom(ann, "kitchen"))
        self.successResultOf(self.lobby.join(guest, "kitchen"))
        ann.mind.events.clear()
        self.assertEqual((yield self.lobby.identify(guest, "dora", PASSWORD)), "dora")
        self.assertEqual(guest.account, "dora")
        self.assertIn(AccountChanged("dora", "dora"), ann.mind.events)
        self.assertIn("dora", [u.name for u in self.lobby.rooms["kitchen"].members])

    @inlineCallbacks
    def test_wrongPassword(self):
        self.lobby.accounts.load([("dora", hashPassword(PASSWORD, *CHEAP), 0.0)])
        user = self.lobby.connect(Mind())
        yield self.assertFailure(self.lobby.identify(user, "dora", "not it at all"),
                                 errors.WrongPassword)
        self.assertEqual((user.name, user.account), (None, None))
        self.assertRaises(errors.NotRegistered, self.lobby.identify, user, "nobody", PASSWORD)

    @inlineCallbacks
    def test_changePassword(self):
        bob = named(self.lobby, "bob")
        self.assertRaises(errors.NotIdentified, self.lobby.changePassword, bob, "a", "b")
        yield self.lobby.register(bob, PASSWORD)
        yield self.assertFailure(self.lobby.changePassword(bob, "wrong one", "new-password"),
                                 errors.WrongPassword)
        yield self.assertFailure(self.lobby.changePassword(bob, PASSWORD, "short"),
                                 errors.BadPassword)
        yield self.lobby.changePassword(bob, PASSWORD, "new-password")
        other = self.lobby.connect(Mind())
        yield self.assertFailure(self.lobby.authenticate(other, "bob", PASSWORD),
                                 errors.WrongPassword)
        yield self.lobby.authenticate(other, "bob", "new-password")
        self.assertEqual(other.account, "bob")

    def test_refusedPasswordsAndNames(self):
        bob = named(self.lobby, "bob")
        self.assertRaises(errors.BadPassword, self.lobby.register, bob, "short")
        self.assertRaises(errors.BadPassword, self.lobby.register, bob, " " * 10)
        self.assertRaises(errors.BadPassword, self.lobby.register, bob, "x" * 1025)
        guest = named(self.lobby, "")
        self.assertRaises(errors.BadMode, self.lobby.register, guest, PASSWORD)
        self.assertEqual(self.lobby.store.accounts, {})

    @inlineCallbacks
    def test_registeredTwice(self):
        bob = named(self.lobby, "bob")
        first = self.lobby.register(bob, PASSWORD)
        self.lobby.disconnect(bob)
        other = named(self.lobby, "bob")
        self.assertRaises(errors.AlreadyRegistered, self.lobby.register, other, PASSWORD)
        yield first

    @inlineCallbacks
    def test_storeRefusesNothingChanged(self):
        bob = named(self.lobby, "bob")
        self.lobby.store.failing = True
        yield self.assertFailure(self.lobby.register(bob, PASSWORD), errors.NotStored)
        self.assertIsNone(bob.account)
        self.assertFalse(self.lobby.accounts.isRegistered("bob"))
        self.lobby.store.failing = False
        yield self.lobby.register(bob, PASSWORD)  # not left half-registered
        self.assertEqual(bob.account, "bob")

    @inlineCallbacks
    def test_passwordsAreNeverLogged(self):
        logged = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        bob = named(self.lobby, "bob")
        yield self.lobby.register(bob, PASSWORD)
        yield self.assertFailure(self.lobby.changePassword(bob, "wrong one", "next-password"),
                                 errors.WrongPassword)
        yield self.lobby.changePassword(bob, PASSWORD, "next-password")
        self.assertTrue(logged)
        for event in logged:
            text = formatEvent(event) + repr(event)
            self.assertNotIn(PASSWORD, text)
            self.assertNotIn("next-password", text)


class BruteForceTests(TestCase):
    def setUp(self):
        self.lobby = accountsLobby(self, login_slots_per_address=0)
        hashed = hashPassword(PASSWORD, *CHEAP)
        self.lobby.accounts.load([(f"user{n}", hashed, 0.0) for n in range(12)])

    @inlineCallbacks
    def wrong(self, name, address="192.0.2.1"):
        user = self.lobby.connect(Mind(), address)
        try:
            yield self.assertFailure(self.lobby.authenticate(user, name, "guessing"),
                                     errors.WrongPassword)
        finally:
            self.lobby.disconnect(user)

    def attempt(self, name, password=PASSWORD, address="192.0.2.1"):
        user = self.lobby.connect(Mind(), address)
        self.addCleanup(self.lobby.disconnect, user)
        return self.lobby.authenticate(user, name, password)

    @inlineCallbacks
    def test_perAccount(self):
        for n in range(3):
            yield self.wrong("user0")
        e = self.assertRaises(errors.TooManyAttempts, self.attempt, "user0")
        self.assertEqual(e.wait, 2.0)  # even the right password waits
        self.lobby.clock.advance(2)
        yield self.wrong("user0")
        self.assertEqual(self.assertRaises(errors.TooManyAttempts, self.attempt,
                                           "user0").wait, 4.0)  # twice as long each time
        account = yield self.attempt("user0", address="203.0.113.9")  # the owner, elsewhere
        self.assertEqual(account.name, "user0")
        self.lobby.clock.advance(4)
        account = yield self.attempt("user0")
        yield self.wrong("user0")  # a right password started the count again
        yield self.attempt("user1")  # other accounts were never slowed

    @inlineCallbacks
    def test_perAccountFromEverywhere(self):
        """Guesses spread over many addresses slow the account everywhere, later."""
        for n in range(20):
            yield self.wrong("user0", address=f"198.51.100.{n}")
        self.assertRaises(errors.TooManyAttempts, self.attempt, "user0", address="203.0.113.1")

    @inlineCallbacks
    def test_rightPasswordsAreCountedToo(self):
        """Every check costs a hash: an address gets 10 at once, then one a second."""
        for n in range(10):
            yield self.attempt(f"user{n}")
        self.assertEqual(self.assertRaises(errors.TooManyAttempts, self.attempt,
                                           "user10").wait, 1.0)
        self.lobby.clock.advance(1)
        yield self.attempt("user10")

    @inlineCallbacks
    def test_triesAtOnceAreSlowedToo(self):
        """Tries sent together, before any has been checked, cannot dodge the count."""
        tries = [self.attempt("user0", "guessing") for n in range(3)]
        self.assertRaises(errors.TooManyAttempts, self.attempt, "user0")
        for d in tries:
            yield self.assertFailure(d, errors.WrongPassword)

    @inlineCallbacks
    def test_rightPasswordsDoNotSlowAnAddress(self):
        for n in range(12):
            yield self.attempt(f"user{n}")
            self.lobby.clock.advance(1)

    @inlineCallbacks
    def test_perAddress(self):
        for n in range(10):  # different accounts, one address
            yield self.wrong(f"user{n}")
            self.lobby.clock.advance(1)
        self.assertRaises(errors.TooManyAttempts, self.attempt, "user11")
        account = yield self.attempt("user11", address="192.0.2.99")
        self.assertEqual(account.name, "user11")

    @inlineCallbacks
    def test_forgottenAfterAWhile(self):
        for _ in range(3):
            yield self.wrong("user0")
        self.lobby.clock.advance(900)
        yield self.wrong("user0")
        yield self.attempt("user0")


class RestartTests(TestCase):
    @inlineCallbacks
    def test_accountsSurviveARestart(self):
        store = MemoryStore()
        first = accountsLobby(self, store)
        yield first.register(named(first, "alice"), PASSWORD)
        first.accounts.stopService()
        second = accountsLobby(self, store)
        self.assertTrue(second.accounts.isRegistered("ALICE"))
        user = second.connect(Mind())
        self.assertRaises(errors.NameRegistered, second.chooseName, user, "alice")
        self.assertEqual((yield second.identify(user, "alice", PASSWORD)), "alice")
        guest = named(second, "")
        self.assertNotEqual(guest.name.casefold(), "alice")


class GhostTests(TestCase):
    @inlineCallbacks
    def test_staleHolderIsDisconnected(self):
        lobby = accountsLobby(self)
        stale = named(lobby, "alice")
        yield lobby.register(stale, PASSWORD)
        bob = named(lobby, "bob")
        self.successResultOf(lobby.createRoom(stale, "kitchen"))
        self.successResultOf(lobby.join(bob, "kitchen"))
        bob.mind.events.clear()
        fresh = lobby.connect(Mind())
        self.assertEqual((yield lobby.identify(fresh, "alice", PASSWORD)), "alice")
        self.assertIs(lobby.names["alice"], fresh)
        self.assertEqual(stale.mind.events[-1],
                         Killed(None, "The owner of this name signed in elsewhere"))
        self.assertNotIn(stale, lobby.users)
        self.assertEqual(bob.mind.events, [
            Quit("alice", "killed", "The owner of this name signed in elsewhere")])

    @inlineCallbacks
    def test_nobodyElseTakesIt(self):
        lobby = accountsLobby(self)
        yield lobby.register(named(lobby, "alice"), PASSWORD)
        other = named(lobby, "mallory")
        self.assertRaises(errors.NameRegistered, lobby.rename, other, "Alice")
        self.assertEqual(other.name, "mallory")


class RequiredTests(TestCase):
    @inlineCallbacks
    def test_accountsRequired(self):
        lobby = accountsLobby(self, accounts="required")
        ann = named(lobby, "ann")  # a name may be chosen, to register it
        self.assertRaises(errors.AccountsRequired, lobby.createRoom, ann, "kitchen")
        yield lobby.register(ann, PASSWORD)
        room = self.successResultOf(lobby.createRoom(ann, "kitchen"))
        self.assertEqual(room.room, "kitchen")
        bob = named(lobby, "bob")
        self.assertRaises(errors.AccountsRequired, lobby.join, bob, "kitchen")
        kitchen = lobby.rooms["kitchen"]
        kitchen.modes.discard("n")  # messages from outside are welcome, but not from guests
        self.assertRaises(errors.AccountsRequired, lobby.say, bob, kitchen, "from outside")
        said = lobby.say(ann, kitchen, "members only")
        lobby.clock.advance(0)
        self.assertEqual(self.successResultOf(said).text, "members only")

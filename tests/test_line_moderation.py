"""The native door's accounts and room moderation, driven line by line over StringTransport."""

from twisted.internet.defer import maybeDeferred
from twisted.trial.unittest import TestCase

from chatsvc.doors.line import wording
from chatsvc.doors.line.commands import COMMANDS, Chat, Invocation, parse
from chatsvc.errors import BadArguments
from tests.support import NOW_STAMP, makeServer

PASSWORD = "sesame-open"


def makeAccountServer(**settings):
    """
    A server whose passwords are hashed cheaply and at once: these tests are
    about what the door says. (tests/test_accounts.py hashes on the thread pool.)
    """
    lobby, connect = makeServer(**settings)
    lobby.accounts._cost = (2 ** 4, 1, 1)
    lobby.accounts._offThread = lambda f, *args: maybeDeferred(f, *args)
    return lobby, connect


def registered(connect, name, password=PASSWORD):
    """A session named C{name} that has registered it."""
    session = connect(name)
    session.send(f"register {password}")
    assert session.read()[0].startswith(f"* The name {name} is registered to you"), name
    return session


class ParseTests(TestCase):
    def test_passwordLinesAreNeverChat(self):
        """A password command with the wrong shape is refused, never said to the room."""
        for line in ["register my secret words", "identify a b c", "password onlyone",
                     "REGISTER", "identify"]:
            e = self.assertRaises(BadArguments, parse, line)
            self.assertNotIn("secret", str(e))
        self.assertEqual(parse("identify pw"), Invocation("identify", (None, "pw")))
        self.assertEqual(parse("identify ann pw"), Invocation("identify", ("ann", "pw")))
        self.assertEqual(parse("password a b"), Invocation("password", ("a", "b")))

    def test_roomCommands(self):
        self.assertEqual(parse("topic"), Invocation("topic", (None,)))
        self.assertEqual(parse("topic cats only"), Invocation("topic", ("cats only",)))
        self.assertEqual(parse("kick bob"), Invocation("kick", ("bob", "")))
        self.assertEqual(parse("kick bob too loud"), Invocation("kick", ("bob", "too loud")))
        self.assertEqual(parse("ban"), Invocation("ban", (None,)))
        self.assertEqual(parse("ban bob"), Invocation("ban", ("bob",)))
        self.assertEqual(parse("mode"), Invocation("mode", (None, ())))
        self.assertEqual(parse("mode +k secret"), Invocation("mode", ("+k", ("secret",))))
        self.assertEqual(parse("mode is fun"), Chat("mode is fun"))
        self.assertEqual(parse("ban this guy"), Chat("ban this guy"))
        self.assertEqual(parse("join the party"), Chat("join the party"))
        self.assertEqual(parse("/join vault key"), Invocation("join", ("vault", "key")))

    def test_serverOperatorWordsAreChatForOthers(self):
        self.assertEqual(parse("kill it"), Chat("kill it"))
        self.assertEqual(parse("remove it"), Chat("remove it"))
        self.assertEqual(parse("kill bob spam", operator=True),
                         Invocation("kill", ("bob", "spam")))
        self.assertEqual(parse("remove hall forget", operator=True),
                         Invocation("remove", ("hall", True)))
        self.assertEqual(parse("/kill bob"), Invocation("kill", ("bob", "")))

    def test_everyCommandIsListed(self):
        """To a server operator, every command; to anyone else, all but the operators'."""
        lines, theirs = wording.commands(operator=True), wording.commands()
        for command in COMMANDS:
            self.assertTrue(any(command.usage in line for line in lines), command.name)
            self.assertEqual(any(command.usage in line for line in theirs),
                             not command.operatorOnly, command.name)


class NamePromptTests(TestCase):
    def setUp(self):
        self.lobby, self.connect = makeAccountServer()
        registered(self.connect, "alice").send("quit")

    def test_registeredNameThenIdentify(self):
        session = self.connect()
        session.read()
        session.send("Alice")
        self.assertEqual(session.read(), [
            "! alice is a registered name. If it is yours, type identify PASSWORD"
            " (or identify alice PASSWORD); if not, choose another name.",
            "* " + wording.NAME_PROMPT])
        session.send("identify wrong-password")
        self.assertEqual(session.read(), [
            "! That is not the password of alice. Nothing changed.",
            "* " + wording.NAME_PROMPT])
        session.send(f"identify {PASSWORD}")
        lines = session.read()
        self.assertEqual(lines[:2], ["* You are signed in to alice.",
                                     "* Welcome, alice. You are in the Lobby. Commands:"])
        self.assertEqual(self.lobby.names["alice"].account, "alice")
        self.assertFalse(any(PASSWORD in line for line in lines))

    def test_orAnotherName(self):
        session = self.connect()
        session.send("alice")
        session.send("bob")
        self.assertIn("* Welcome, bob. You are in the Lobby. Commands:", session.read())
        self.assertIsNone(self.lobby.names["bob"].account)

    def test_identifyNameAndPasswordAtThePrompt(self):
        session = self.connect()
        session.read()
        session.send(f"identify nobody {PASSWORD}")
        self.assertEqual(session.read()[1:], ["* " + wording.NAME_PROMPT])
        session.send("identify pw-without-a-name")
        self.assertEqual(session.read(), [
            "! Type identify NAME PASSWORD, or your screen name first.",
            "* " + wording.NAME_PROMPT])
        session.send(f"/identify ALICE {PASSWORD}")
        self.assertIn("* Welcome, alice. You are in the Lobby. Commands:", session.read())

    def test_staleHolderIsGhosted(self):
        old = self.connect()
        old.send(f"identify alice {PASSWORD}")
        bob = self.connect("bob")
        old.send("create kitchen")
        bob.send("join kitchen")
        old.read()
        bob.read()
        new = self.connect()
        new.send("alice")
        new.send(f"identify {PASSWORD}")
        self.assertIn("* Welcome, alice. You are in the Lobby. Commands:", new.read())
        self.assertEqual(old.read(), ["! The owner of this name signed in elsewhere. Goodbye."])
        self.assertTrue(old.transport.disconnecting)
        self.assertEqual(bob.read(), ["* alice left kitchen (disconnected): The owner of this"
                                      " name signed in elsewhere"])
        self.assertIs(self.lobby.names["alice"], new.protocol.user)

    def test_tooManyWrongPasswords(self):
        session = self.connect()
        session.send("alice")
        session.read()
        for _ in range(3):
            session.send("identify not-it-at-all")
            self.assertEqual(session.read()[0],
                             "! That is not the password of alice. Nothing changed.")
        session.send(f"identify {PASSWORD}")  # even the right one must wait
        self.assertEqual(session.read(), ["! Too many wrong passwords. Try again in 2 seconds.",
                                          "* " + wording.NAME_PROMPT])
        self.lobby.clock.advance(2)
        session.send(f"identify {PASSWORD}")
        self.assertIn("* Welcome, alice. You are in the Lobby. Commands:", session.read())


class AccountCommandTests(TestCase):
    def setUp(self):
        self.lobby, self.connect = makeAccountServer()

    def test_registerIdentifyAndChangePassword(self):
        bob = self.connect("bob")
        bob.send("register short")
        self.assertEqual(bob.read(), ["! A password is 8 to 1024 characters, with no spaces."
                                      " Choose another one."])
        bob.send(f"register {PASSWORD}")
        self.assertEqual(bob.read(), [
            "* The name bob is registered to you, and you are signed in. From now on only"
            " you can use it: next time, type identify PASSWORD after it."])
        bob.send(f"register {PASSWORD}")
        self.assertEqual(bob.read(), ["! You are signed in to bob already."])
        bob.send("password wrong-old-one new-password")
        self.assertEqual(bob.read(), ["! That is not the password of bob. Nothing changed."])
        bob.send(f"password {PASSWORD} new-password")
        self.assertEqual(bob.read(), ["* Your password is changed."])
        bob.send("quit")
        again = self.connect("carol")
        again.send(f"identify bob {PASSWORD}")
        self.assertEqual(again.read(), ["! That is not the password of bob. Nothing changed."])
        again.send("identify bob new-password")
        self.assertEqual(again.read(), ["* carol is now known as bob",
                                        "* You are signed in to bob."])

    def test_identifyTheNameYouHave(self):
        registered(self.connect, "dora").send("quit")
        self.connect("erin").send("quit")
        erin = self.connect("erin")
        erin.send(f"identify {PASSWORD}")
        self.assertEqual(erin.read(), ["! No account is named erin. Type register PASSWORD to"
                                       " register the name you have."])

    def test_passwordsAreNotSaid(self):
        ann, bob = self.connect("ann"), self.connect("bob")
        ann.send("create kitchen")
        bob.send("join kitchen")
        ann.read()
        bob.read()
        bob.send("register my secret words")
        self.assertTrue(bob.read()[0].startswith("! Usage: register PASSWORD"))
        self.assertEqual(ann.read(), [])
        self.assertEqual(self.lobby.store.messages.get(1, []), [])

    def test_guestsCannotRegister(self):
        guest = self.connect("")
        guest.send(f"register {PASSWORD}")
        self.assertTrue(guest.read()[0].startswith("! Guest1 is a guest name"))

    def test_othersSeeASignIn(self):
        ann, bob = self.connect("ann"), registered(self.connect, "bob")
        bob.send("quit")
        cleo = self.connect("cleo")
        ann.send("create kitchen")
        cleo.send("join kitchen")
        ann.read()
        cleo.send(f"identify bob {PASSWORD}")
        self.assertEqual(ann.read(), ["* cleo is now known as bob", "* bob signed in to their registered name"])

    def test_accountsRequired(self):
        lobby, connect = makeAccountServer(accounts="required")
        ann = connect()
        ann.send("ann")
        self.assertEqual(ann.read()[-1], "* This server is for registered users: type register"
                         " PASSWORD to register your name before you join or create a room.")
        ann.send("create kitchen")
        self.assertTrue(ann.read()[0].startswith("! This server is for registered users"))
        ann.send(f"register {PASSWORD}")
        ann.send("create kitchen")
        self.assertEqual(ann.read()[1:], ["* You joined kitchen. Here: no one else."])


class RoomModerationTests(TestCase):
    """alice created kitchen and runs it; bob is there too; carol is in the Lobby."""

    def setUp(self):
        self.lobby, self.connect = makeAccountServer()
        self.alice = registered(self.connect, "alice")
        self.bob, self.carol = self.connect("bob"), self.connect("carol")
        self.alice.send("create kitchen")
        self.bob.send("join kitchen")
        self.read()

    def read(self):
        return [s.read() for s in (self.alice, self.bob, self.carol)]

    def test_topicIsStoredAndShownOnJoin(self):
        self.carol.send("topic")
        self.assertTrue(self.carol.read()[0].startswith("! You are not in a room"))
        self.alice.send("topic")
        self.assertEqual(self.alice.read(), ["* kitchen has no topic. Type topic TEXT to set"
                                             " one."])
        self.bob.send("topic bob rules")  # +t: operators only
        self.assertEqual(self.bob.read(), ["! Only an operator of kitchen can do that."])
        self.alice.send("topic Cats, and only cats")
        self.assertEqual(self.read()[:2], [["* alice set the topic of kitchen: Cats, and only"
                                            " cats"]] * 2)
        self.assertEqual(self.lobby.store.settings["room/1"]["topic"][0],
                         "Cats, and only cats")
        self.carol.send("join kitchen")
        self.assertEqual(self.carol.read(), [
            "* You joined kitchen. Here: alice, bob.",
            f"* Topic: Cats, and only cats (set by alice, {NOW_STAMP[1:-1]})"])
        self.bob.read()
        self.bob.send("topic")
        self.assertEqual(self.bob.read(), [
            f"* The topic of kitchen: Cats, and only cats (set by alice, {NOW_STAMP[1:-1]})"])
        self.alice.send("/topic")
        self.alice.read()
        self.alice.send("mode -t")
        self.bob.send("topic bob rules")
        self.assertEqual(self.carol.read(), ["* alice let everyone in kitchen set its topic",
                                             "* bob set the topic of kitchen: bob rules"])

    def test_topicRefusedByTheStoreChangesNothing(self):
        self.lobby.store.failing = True
        self.alice.send("topic lost")
        self.assertEqual(self.alice.read(), [
            "! That change could not be saved, so nothing changed. Please try again."])
        self.assertEqual(self.bob.read(), [])
        self.lobby.store.failing = False
        self.alice.send("topic")
        self.assertEqual(self.alice.read(), ["* kitchen has no topic. Type topic TEXT to set"
                                             " one."])
        self.flushLoggedErrors(OSError)

    def test_kick(self):
        self.bob.send("kick alice")
        self.assertEqual(self.bob.read(), ["! Only an operator of kitchen can do that."])
        self.alice.send("kick bob too loud")
        alice, bob, _ = self.read()
        self.assertEqual(alice, ["* alice kicked bob from kitchen: too loud"])
        self.assertEqual(bob, ["* You were kicked from kitchen by alice: too loud."
                               " You are in the Lobby."])
        self.bob.send("who")
        self.assertEqual(self.bob.read(), ["* Online (3): alice, bob, carol."
                                           " You are in the Lobby."])
        self.alice.send("kick carol")
        self.assertEqual(self.alice.read(), ["! carol is not in kitchen."])

    def test_banBlocksJoinAndSpeech(self):
        self.alice.send("ban")
        self.assertEqual(self.alice.read(), ["* No one is banned in kitchen."])
        self.alice.send("ban bob")
        self.alice.send("ban carol")
        self.assertEqual(self.bob.read(), ["* alice banned bob!*@* from kitchen",
                                           "* alice banned carol!*@* from kitchen"])
        self.bob.send("can I still talk?")
        self.assertEqual(self.bob.read(), ["! You cannot talk in kitchen: you are banned"
                                           " from it."])
        self.carol.send("join kitchen")
        self.assertEqual(self.carol.read(), ["! You are banned from kitchen."])
        self.alice.send("ban carol")
        self.alice.read()
        self.alice.send("ban")
        self.assertEqual(self.alice.read(), [
            "* 2 masks banned in kitchen:",
            f"*   bob!*@* (by alice, {NOW_STAMP[1:-1]})",
            f"*   carol!*@* (by alice, {NOW_STAMP[1:-1]})"])
        self.alice.send("unban CAROL")
        self.assertEqual(self.alice.read(), ["* alice lifted the ban on carol!*@* in kitchen"])
        self.alice.send("unban carol")
        self.assertEqual(self.alice.read(), ["* Nothing changed: that is not banned from"
                                             " kitchen. Type ban to see the bans."])
        self.carol.send("join kitchen")
        self.assertEqual(self.carol.read()[0], "* You joined kitchen. Here: alice, bob.")
        self.bob.read()
        self.bob.send("unban bob")
        self.assertEqual(self.bob.read(), ["! Only an operator of kitchen can do that."])

    def test_inviteOnly(self):
        self.alice.send("mode +i")
        self.assertEqual(self.bob.read(), ["* alice made kitchen invite only"])
        self.carol.send("join kitchen")
        self.assertEqual(self.carol.read(), ["! kitchen is invite only: ask one of its"
                                             " operators to invite you."])
        self.bob.send("invite carol")
        self.assertEqual(self.bob.read(), ["! Only an operator of kitchen can do that."])
        self.alice.read()
        self.alice.send("invite carol")
        self.assertEqual(self.alice.read(), ["* You invited carol to kitchen."])
        self.assertEqual(self.carol.read(), ["* alice invited you to kitchen: type join"
                                             " kitchen to go there."])
        self.carol.send("join kitchen")
        self.assertEqual(self.carol.read()[0], "* You joined kitchen. Here: alice, bob.")
        self.carol.send("leave")
        self.carol.send("join kitchen")  # an invitation is good once
        self.assertEqual(self.carol.read()[1:], ["! kitchen is invite only: ask one of its"
                                                 " operators to invite you."])

    def test_keyAndLimit(self):
        self.alice.send("mode +k sesame")
        self.assertEqual(self.bob.read(), ["* alice set a key on kitchen: newcomers need it"
                                           " to join"])
        self.carol.send("join kitchen")
        self.assertEqual(self.carol.read(), ["! kitchen needs a key: type join kitchen KEY"
                                             " with the right one."])
        self.carol.send("/join kitchen nope")
        self.assertEqual(self.carol.read(), ["! kitchen needs a key: type join kitchen KEY"
                                             " with the right one."])
        self.carol.send("join kitchen sesame")  # a command: kitchen has a key
        self.assertEqual(self.carol.read()[0], "* You joined kitchen. Here: alice, bob.")
        self.carol.send("leave")
        self.bob.send("join the party")  # chat: no room "the" has a key
        self.assertEqual(self.alice.read()[-1], "<bob> join the party")
        self.alice.send("mode -k")
        self.alice.send("mode +l 2")
        self.assertEqual(self.bob.read(), ["* carol joined kitchen", "* carol left kitchen",
                                           "<bob> join the party",
                                           "* alice removed the key of kitchen",
                                           "* alice limited kitchen to 2 members"])
        self.carol.send("join kitchen")
        self.assertEqual(self.carol.read()[1:], ["! kitchen is full: it holds 2 members."
                                                 " Try later."])

    def test_modesShownAndChanged(self):
        self.bob.send("mode")
        self.assertEqual(self.bob.read()[0], "* Modes of kitchen: +nt (no messages from"
                         " outside, topic set by operators).")
        self.alice.send("mode +k sesame")
        self.alice.send("mode +ls-n 10")
        self.read()
        self.alice.send("mode")
        self.assertEqual(self.alice.read()[0], "* Modes of kitchen: +stkl sesame 10 (needs a"
                         " key, limited to 10 members, secret, topic set by operators).")
        self.bob.send("mode")  # the key is for operators to tell
        self.assertEqual(self.bob.read()[0], "* Modes of kitchen: +stkl 10 (needs a key,"
                         " limited to 10 members, secret, topic set by operators).")
        self.bob.send("mode +m")
        self.assertEqual(self.bob.read(), ["! Only an operator of kitchen can do that."])
        self.alice.send("mode +m")
        self.alice.send("mode +m")
        self.assertEqual(self.alice.read(), [
            "* alice made kitchen moderated: only its operators and voiced members speak",
            "* Nothing changed: kitchen is like that already."])

    def test_aRefusedModeChangesNothing(self):
        for line, error in [
                ("mode +i+l", "! +l needs a NUMBER; nothing changed."),
                ("mode +i nonsense", "! nonsense: no change takes that; nothing changed."),
                ("mode +iq", "! q is not a room mode: they are iklmnst, o, v, b."),
                ("mode +i+o dave", "! No one named 'dave' is online. Type online to see"
                                   " who is."),
                ("mode +il zero", "! A limit is a number of members, 1 or more.")]:
            self.alice.send(line)
            self.assertEqual(self.alice.read(), [error], line)
        self.assertEqual(self.bob.read(), [])
        self.assertEqual(self.lobby.rooms["kitchen"].modes, {"n", "t"})

    def test_moderatedAndVoice(self):
        self.alice.send("mode +m")
        self.bob.send("hello?")
        self.assertEqual(self.bob.read(), [
            "* alice made kitchen moderated: only its operators and voiced members speak",
            "! kitchen is moderated: only its operators and voiced members speak."])
        self.alice.send("voice bob")
        self.bob.send("hello!")
        self.assertEqual(self.bob.read(), ["* alice gave bob voice in kitchen", "<bob> hello!"])
        self.alice.send("voice bob")
        self.assertEqual(self.alice.read()[-1], "* bob is voiced in kitchen already.")
        self.alice.send("devoice bob")
        self.bob.send("and now?")
        self.assertEqual(self.bob.read(), [
            "* alice took voice in kitchen from bob",
            "! kitchen is moderated: only its operators and voiced members speak."])

    def test_opAndDeop(self):
        self.alice.send("op carol")
        self.assertEqual(self.alice.read(), ["! carol is not in kitchen."])
        self.alice.send("op bob")
        self.assertEqual(self.bob.read(), ["* alice gave bob operator in kitchen"])
        self.bob.send("topic bob was here")
        self.bob.send("deop bob")
        self.bob.send("topic again")
        self.assertEqual(self.bob.read(), [
            "* bob set the topic of kitchen: bob was here",
            "* bob took operator in kitchen from bob",
            "! Only an operator of kitchen can do that."])
        self.alice.send("deop bob")
        self.assertEqual(self.alice.read()[-1], "* bob is not an operator in kitchen.")

    def test_outsidersTalkOnlyWithoutN(self):
        self.alice.send("mode -n")
        self.read()
        # The native door talks only to the room it is in; the Lobby's rule is what counts.
        room = self.lobby.rooms["kitchen"]
        carol = self.lobby.names["carol"]
        self.lobby.say(carol, room, "from outside")
        self.lobby.clock.advance(0)
        self.assertEqual(self.bob.read(), ["<carol> from outside"])

    def test_secretRoomsAreHiddenFromOutsiders(self):
        self.alice.send("mode +s")
        self.read()
        self.carol.send("list")
        self.assertEqual(self.carol.read(), ["* There are no rooms yet. Type create ROOM to"
                                             " make one."])
        self.carol.send("create hall")
        self.carol.send("list")
        self.assertEqual(self.carol.read()[1:], ["* Rooms (1), busiest first:",
                                                 "*   hall (1 user) <- you are here"])
        self.bob.send("list")
        self.assertEqual(self.bob.read(), ["* Rooms (2), busiest first:",
                                           "*   kitchen (2 users) <- you are here",
                                           "*   hall (1 user)"])


class ServerOperatorTests(TestCase):
    def setUp(self):
        self.lobby, self.connect = makeAccountServer(operators=("root",))
        self.root = registered(self.connect, "root")
        self.bob = self.connect("bob", host="192.0.2.7")
        self.carol = self.connect("carol")

    def test_othersAreRefused(self):
        for line in ["/kill root", "/banaddress 10.0.0.1", "/unbanaddress 10.0.0.1",
                     "/remove kitchen"]:
            self.bob.send(line)
            self.assertEqual(self.bob.read(), ["! Only a server operator can do that."], line)

    def test_kill(self):
        self.root.send("create kitchen")
        self.carol.send("join kitchen")
        self.root.read()
        self.root.send("kill carol flooding")
        self.assertEqual(self.root.read(), [
            "* carol left kitchen (disconnected): Killed by root: flooding",
            "* You disconnected carol."])
        self.assertEqual(self.carol.read()[-1], "! You were disconnected by root, a server"
                         " operator: flooding. Goodbye.")
        self.assertTrue(self.carol.transport.disconnecting)
        self.assertNotIn("carol", self.lobby.names)

    def test_banAddress(self):
        self.root.send("banaddress 192.0.2.0/24 spam from there")
        self.assertEqual(self.root.read(), ["* The address 192.0.2.0/24 is banned from the"
                                            " server; 1 connection from it closed."])
        self.assertEqual(self.bob.read(), ["! Your address is banned from this server: spam"
                                           " from there. Goodbye."])
        self.assertTrue(self.bob.transport.disconnecting)
        again = self.connect(host="192.0.2.9")
        self.assertEqual(again.read(), ["! Your address is banned from this server: spam from"
                                        " there"])
        self.root.send("unbanaddress 192.0.2.0/24")
        self.assertEqual(self.root.read(), ["* The address 192.0.2.0/24 is no longer banned."])
        self.assertFalse(self.connect(host="192.0.2.9").transport.disconnecting)

    def test_removeRoom(self):
        self.carol.send("create kitchen")
        self.carol.send("hello")
        self.carol.read()
        self.root.send("remove attic")
        self.assertEqual(self.root.read(), ["! No room named 'attic'. Type list to see rooms,"
                                            " or create attic."])
        self.root.send("remove kitchen")
        self.assertEqual(self.root.read(), ["* You removed kitchen; its history is kept."])
        self.assertEqual(self.carol.read(), [
            "* You were kicked from kitchen by root: This room was removed by a server"
            " operator. You are in the Lobby."])
        self.carol.send("list")
        self.assertEqual(self.carol.read(), ["* There are no rooms yet. Type create ROOM to"
                                             " make one."])
        self.assertEqual(len(self.lobby.store.messages[1]), 1)  # kept
        self.carol.send("create kitchen")
        self.root.send("remove kitchen forget")
        self.assertEqual(self.root.read(), ["* You removed kitchen and its history."])

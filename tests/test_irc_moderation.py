"""
Accounts and room moderation on the IRC door, beside the native door on one
Lobby: SASL, REGISTER, NickServ, registered nicks, account tags; topics,
channel modes and lists, KICK, INVITE, KILL. The rules are the Lobby's:
what an IRC operator sets holds for a native user, and the other way round.
"""

from twisted.internet.defer import maybeDeferred
from twisted.trial.unittest import TestCase

from tests.support import NOW
from tests.test_irc import Doors, IrcSession

PASSWORD = "correct-horse"


def sasl(name, password=PASSWORD):
    import base64
    return base64.b64encode(f"{name}\0{name}\0{password}".encode()).decode()


class Accounts(Doors):
    """Doors whose password hashing is cheap and synchronous, for StringTransport."""

    def setUp(self):
        super().setUp()
        accounts = self.lobby.accounts
        accounts._cost = (2 ** 4, 1, 1)
        accounts._offThread = lambda f, *args: maybeDeferred(f, *args)

    def registered(self, name, password=PASSWORD):
        """A native user who registered NAME and is still online."""
        s = self.nativeUser(name)
        s.send(f"register {password}")
        s.read()
        self.assertIsNotNone(self.lobby.names[name.casefold()].account)
        return s

    def saslUser(self, nick, account=None, password=PASSWORD, caps=()):
        s = IrcSession(self.irc)
        s.send("CAP LS 302")
        s.send("CAP REQ :" + " ".join(("sasl", *caps)))
        s.send(f"NICK {nick}")
        s.send(f"USER {nick} 0 * :{nick.title()} Example")
        s.send("AUTHENTICATE PLAIN")
        s.send("AUTHENTICATE " + sasl(account or nick, password))
        s.send("CAP END")
        return s


class SaslTests(Accounts, TestCase):
    def test_registeredNickNeedsItsAccount(self):
        self.registered("bob").send("quit")
        s = IrcSession(self.irc)
        s.send("NICK bob")
        s.send("USER bob 0 * :Bob")
        self.assertIn(":irc.test 433 * bob :bob is a registered name: sign in to it (SASL,"
                      " or /msg NickServ IDENTIFY bob PASSWORD) or choose another", s.read())
        self.assertNotIn("bob", self.lobby.names)

    def test_saslSignsIn(self):
        self.registered("bob").send("quit")
        s = self.saslUser("bob")
        lines = s.read()
        self.assertIn(":irc.test 900 bob bob!~bob@irc.chatsvc bob :You are now logged in as"
                      " bob", lines)
        self.assertIn(":irc.test 903 bob :SASL authentication successful", lines)
        self.assertIn(":irc.test 001 bob :Welcome to the chatsvc IRC network,"
                      " bob!~bob@irc.chatsvc", lines)
        self.assertEqual(self.lobby.names["bob"].account, "bob")

    def test_wrongPasswordThenSlowed(self):
        self.registered("bob").send("quit")
        s = IrcSession(self.irc)
        s.send("CAP REQ :sasl")
        for n in range(3):
            s.send("AUTHENTICATE PLAIN")
            s.send("AUTHENTICATE " + sasl("bob", "not it"))
        lines = s.read()
        self.assertEqual(lines.count(":irc.test 904 * :SASL authentication failed: That is"
                                     " not the password of bob. Nothing changed."), 3)
        s.send("AUTHENTICATE PLAIN")
        s.send("AUTHENTICATE " + sasl("bob"))  # the right one, too soon
        self.assertEqual(s.read(), ["AUTHENTICATE +", ":irc.test 904 * :SASL authentication"
                                    " failed: Too many wrong passwords. Try again in 2 seconds."])
        self.irc.clock.advance(2)
        s.send("AUTHENTICATE PLAIN")
        s.send("AUTHENTICATE " + sasl("bob"))
        self.assertIn(":irc.test 903 * :SASL authentication successful", s.read())

    def test_ownerTakesTheirNameBack(self):
        stale = self.registered("bob")
        s = self.saslUser("bob")
        self.assertIn(":irc.test 001 bob :Welcome to the chatsvc IRC network,"
                      " bob!~bob@irc.chatsvc", s.read())
        self.assertIn("! The owner of this name signed in elsewhere", "\n".join(stale.read()))
        self.assertTrue(stale.transport.disconnecting)
        self.assertEqual(self.lobby.names["bob"].door, "irc")

    def test_registerCommand(self):
        s = self.ircUser("carol", ["draft/account-registration"])
        s.send("REGISTER * * short")
        self.assertEqual(s.read(), [":irc.test FAIL REGISTER WEAK_PASSWORD carol :A password"
                                    " is 8 to 1024 characters, with no spaces. Choose another"
                                    " one."])
        s.send(f"REGISTER * * {PASSWORD}")
        self.assertEqual(s.read(), [
            ":irc.test REGISTER SUCCESS carol :Account successfully registered",
            ":irc.test 900 carol carol!~carol@irc.chatsvc carol :You are now logged in as carol"])
        other = self.nativeUser("dave")
        other.send("identify carol wrong-password")
        self.assertIn("! That is not the password of carol. Nothing changed.", other.read())

    def test_nickServIdentify(self):
        self.registered("bob").send("quit")
        s = self.ircUser("bob_")
        s.send(f"PRIVMSG NickServ :IDENTIFY bob {PASSWORD}")
        lines = s.read()
        self.assertIn(":bob_!~bob_@irc.chatsvc NICK bob", lines)
        self.assertIn(":NickServ!NickServ@irc.test NOTICE bob :You are now identified as bob.",
                      lines)

    def test_accountTagAndExtendedJoin(self):
        self.registered("bob").send("quit")
        watcher = self.ircUser("alice", ["account-tag", "extended-join", "account-notify"])
        watcher.send("JOIN #kitchen")
        watcher.read()
        bob = self.saslUser("bob")
        bob.send("JOIN #kitchen")
        bob.send("PRIVMSG #kitchen :hi")
        guest = self.ircUser("carol")
        guest.send("JOIN #kitchen")
        self.assertEqual(watcher.read(), [
            "@account=bob :bob!~bob@irc.chatsvc JOIN #kitchen bob :Bob Example",
            "@account=bob :bob!~bob@irc.chatsvc PRIVMSG #kitchen hi",
            ":carol!~carol@irc.chatsvc JOIN #kitchen * :Carol Example"])
        guest.send(f"REGISTER * * {PASSWORD}")
        self.assertEqual(watcher.read(), ["@account=carol :carol!~carol@irc.chatsvc ACCOUNT carol"])

    def test_whoisTellsTheAccount(self):
        self.registered("bob")
        s = self.ircUser("alice")
        s.send("WHOIS bob")
        self.assertIn(":irc.test 330 alice bob bob :is logged in as", s.read())


class ChannelTests(Accounts, TestCase):
    def setUp(self):
        super().setUp()
        self.alice = self.ircUser("alice")
        self.alice.send("JOIN #kitchen")
        self.alice.read()

    def test_operatorBansANativeUser(self):
        bob = self.nativeUser("bob")
        bob.send("join kitchen")
        bob.read()
        self.alice.read()
        self.alice.send("MODE #kitchen +b bob")
        self.assertEqual(self.alice.read(), [":alice!~alice@irc.chatsvc MODE #kitchen +b bob!*@*"])
        bob.read()
        bob.send("hello?")
        self.assertEqual(bob.read(), ["! You cannot talk in kitchen: you are banned from it."])
        bob.send("leave")
        bob.send("join kitchen")
        self.assertEqual(bob.read()[-1], "! You are banned from kitchen.")
        self.assertEqual(self.alice.read(), [":bob!~bob@native.chatsvc PART #kitchen"])
        self.alice.send("MODE #kitchen +b")
        self.assertEqual(self.alice.read(), [
            f":irc.test 367 alice #kitchen bob!*@* alice {int(NOW)}",
            ":irc.test 368 alice #kitchen :End of channel ban list"])

    def test_banByAccountHoldsWhateverTheName(self):
        self.registered("bob").send("quit")
        self.alice.send("MODE #kitchen +b $a:bob")
        self.alice.read()
        bob = self.saslUser("bobby", account="bob")
        bob.send("JOIN #kitchen")
        self.assertIn(":irc.test 474 bobby #kitchen :Cannot join channel (+b)", bob.read())

    def test_topicIsKeptAndShownOnJoin(self):
        self.alice.send("TOPIC #kitchen :Soup on Fridays")
        self.assertEqual(self.alice.read(),
                         [":alice!~alice@irc.chatsvc TOPIC #kitchen :Soup on Fridays"])
        carol = self.ircUser("carol")
        carol.send("JOIN #kitchen")
        lines = carol.read()
        self.assertIn(":irc.test 332 carol #kitchen :Soup on Fridays", lines)
        self.assertIn(f":irc.test 333 carol #kitchen alice {int(NOW)}", lines)
        carol.send("TOPIC #kitchen :mine now")
        self.assertEqual(carol.read(), [":irc.test 482 carol #kitchen :You're not channel"
                                        " operator"])
        saved = self.lobby.store.settings[f"room/{self.lobby.rooms['kitchen'].id}"]
        self.assertEqual(saved["topic"][0], "Soup on Fridays")

    def test_keyLimitAndInviteOnly(self):
        self.alice.send("MODE #kitchen +kl sesame 2")
        self.assertEqual(self.alice.read(),
                         [":alice!~alice@irc.chatsvc MODE #kitchen +kl sesame 2"])
        bob = self.ircUser("bob")
        bob.send("JOIN #kitchen")
        self.assertIn(":irc.test 475 bob #kitchen :Cannot join channel (+k)", bob.read())
        bob.send("JOIN #kitchen sesame")
        self.assertIn(":bob!~bob@irc.chatsvc JOIN #kitchen", bob.read())
        carol = self.nativeUser("carol")
        carol.send("join kitchen sesame")
        self.assertIn("! kitchen is full: it holds 2 members. Try later.", carol.read())
        self.alice.send("MODE #kitchen -kl+i")
        self.alice.read()
        carol.send("join kitchen")
        self.assertIn("! kitchen is invite only: ask one of its operators to invite you.",
                      carol.read())
        self.alice.send("INVITE carol #kitchen")
        self.assertEqual(self.alice.read(), [":irc.test 341 alice carol #kitchen"])
        self.assertIn("alice", "".join(carol.read()))
        carol.send("join kitchen")
        self.assertIn("* You joined kitchen.", "".join(carol.read()))

    def test_moderatedLetsTheVoicedSpeak(self):
        bob = self.ircUser("bob")
        bob.send("JOIN #kitchen")
        self.alice.send("MODE #kitchen +m")
        bob.read()
        self.alice.read()
        bob.send("PRIVMSG #kitchen :hi")
        self.assertEqual(bob.read(), [":irc.test 404 bob #kitchen :Cannot send to channel:"
                                      " kitchen is moderated: only its operators and voiced"
                                      " members speak."])
        self.alice.send("MODE #kitchen +v bob")
        bob.send("PRIVMSG #kitchen :hi")
        self.assertEqual(self.alice.read()[-1], ":bob!~bob@irc.chatsvc PRIVMSG #kitchen hi")

    def test_kickANativeUser(self):
        bob = self.nativeUser("bob")
        bob.send("join kitchen")
        bob.read()
        self.alice.read()
        self.alice.send("KICK #kitchen bob :not now")
        self.assertEqual(self.alice.read(),
                         [":alice!~alice@irc.chatsvc KICK #kitchen bob :not now"])
        self.assertIn("kitchen", "".join(bob.read()))
        self.assertNotIn("kitchen", self.lobby.names["bob"].rooms)

    def test_modeIsAndRemovingEveryMode(self):
        self.alice.send("MODE #kitchen")
        self.assertEqual(self.alice.read()[0], ":irc.test 324 alice #kitchen +nt")
        self.alice.send("MODE #kitchen -nt")
        self.assertEqual(self.alice.read(), [":alice!~alice@irc.chatsvc MODE #kitchen -nt"])
        bob = self.ircUser("bob")
        bob.send("PRIVMSG #kitchen :from outside")  # -n: outsiders may talk
        self.assertEqual(self.alice.read(),
                         [":bob!~bob@irc.chatsvc PRIVMSG #kitchen :from outside"])

    def test_badModeArgumentsChangeNothing(self):
        self.alice.send("MODE #kitchen +l 0")
        self.assertEqual(self.alice.read(), [":irc.test 696 alice #kitchen l 0 :A limit is a"
                                             " number of members, 1 or more"])
        self.alice.send("MODE #kitchen +o nobody")
        self.assertEqual(self.alice.read(), [":irc.test 401 alice nobody :No such nick/channel"])
        self.assertIsNone(self.lobby.rooms["kitchen"].limit)

    def test_killNeedsAServerOperator(self):
        bob = self.ircUser("bob")
        bob.send("KILL alice :go")
        self.assertEqual(bob.read(), [":irc.test 481 bob :Permission Denied- You're not an"
                                      " IRC operator"])
        bob.send("OPER admin secret")
        bob.send("KILL alice :go")
        self.assertIn("ERROR :Closing link: Killed by bob: go", self.alice.read())
        self.assertNotIn("alice", self.lobby.names)

    def test_ownersKeepTheirRoomAcrossReconnects(self):
        self.registered("bob").send("quit")
        bob = self.saslUser("bob")
        bob.send("JOIN #bobs")
        bob.send("PART #bobs")
        carol = self.ircUser("carol")
        carol.send("JOIN #bobs")  # first in, but not its owner's
        self.assertIn(":irc.test 353 carol = #bobs carol", carol.read())
        bob.send("JOIN #bobs")
        self.assertIn(":irc.test 353 bob = #bobs :carol @bob", bob.read())


class NickServTests(Accounts, TestCase):
    def test_changePassword(self):
        self.registered("bob").send("quit")
        s = self.saslUser("bob")
        s.read()
        s.send(f"NS PASSWORD {PASSWORD} new-password")
        self.assertEqual(s.read(), [":NickServ!NickServ@irc.test NOTICE bob :Your password is"
                                    " changed."])
        other = self.ircUser("carol")
        other.send("PRIVMSG NickServ :IDENTIFY bob new-password")
        self.assertIn(":NickServ!NickServ@irc.test NOTICE bob :You are now identified as bob.",
                      other.read())


class ReviewedTests(Accounts, TestCase):
    def test_registerTakesOnlyAName(self):
        s = IrcSession(self.irc)
        s.send("CAP REQ :draft/account-registration")
        s.send("NICK :alice x")
        s.send(f"REGISTER * * {PASSWORD}")
        self.assertEqual(s.read()[-1], ":irc.test FAIL REGISTER NEED_NICK * :Choose a nickname"
                                       " (NICK) first: it is what you register")
        self.assertEqual(self.lobby.accounts.byKey, {})

    def test_aSecretRoomIsNoChannelToOutsiders(self):
        alice = self.ircUser("alice")
        alice.send("JOIN #hideout")
        alice.send("MODE #hideout +s")
        bob = self.ircUser("bob")
        bob.send("MODE #hideout +b")
        self.assertEqual(bob.read(), [":irc.test 403 bob #hideout :No such channel"])

    def test_badLimitsAndReactionsUnderModeration(self):
        alice = self.ircUser("alice", ["message-tags"])
        alice.send("JOIN #kitchen")
        bob = self.ircUser("bob", ["message-tags"])
        bob.send("JOIN #kitchen")
        alice.send("MODE #kitchen +m")
        alice.send("MODE #kitchen +l \u00b2")
        self.assertEqual(alice.read()[-1], ":irc.test 696 alice #kitchen l \u00b2 :A limit is a"
                                           " number of members, 1 or more")
        bob.read()
        bob.send("@+draft/react=x TAGMSG #kitchen")
        self.assertEqual(bob.read(), [":irc.test 404 bob #kitchen :Cannot send to channel:"
                                      " kitchen is moderated: only its operators and voiced"
                                      " members speak."])

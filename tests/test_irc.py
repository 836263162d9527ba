"""
The IRC front door over StringTransport, beside the native door on one Lobby:
registration, channels as rooms, talking across doors, labels, history, and
the numerics bad input gets. (irctest checks the door against the RFCs; see
tests/irctest/.)
"""

from twisted.trial.unittest import TestCase

from chatsvc.doors.irc import message, wording
from chatsvc.doors.irc.protocol import IRCFactory
from chatsvc.doors.line.protocol import ChatFactory
from tests.support import NOW, Session, makeLobby


class IrcSession(Session):
    def send(self, line):
        data = line if isinstance(line, bytes) else line.encode("utf-8") + b"\r\n"
        self.protocol.dataReceived(data)
        self.protocol.factory.clock.advance(0)

    def messages(self):
        return [message.parse(line) for line in self.read()]


class Doors:
    """A Lobby with both doors, and ways to open a session on each."""

    def setUp(self):
        self.lobby = makeLobby()
        self.native = ChatFactory(self.lobby)
        self.irc = IRCFactory(self.lobby, self.native.addresses, self.native.pacer,
                              "irc.test", operators={"admin": "secret"})

    def ircUser(self, nick, caps=()):
        s = IrcSession(self.irc)
        if caps:
            s.send("CAP LS 302")
            s.send("CAP REQ :" + " ".join(caps))
        s.send(f"NICK {nick}")
        s.send(f"USER {nick} 0 * :{nick.title()} Example")
        if caps:
            s.send("CAP END")
        lines = s.read()
        self.assertIn(f":irc.test 001 {nick} :Welcome to the chatsvc IRC network,"
                      f" {nick}!~{nick}@irc.chatsvc", lines)
        return s

    def nativeUser(self, name):
        return Session(self.native, name)


class RegistrationTests(Doors, TestCase):
    def test_welcomeBurst(self):
        s = IrcSession(self.irc)
        s.send("NICK alice")
        s.send("USER al 0 * :Alice Example")
        commands = [m.command for m in s.messages()]
        self.assertEqual(commands[:4], ["001", "002", "003", "004"])
        self.assertIn("005", commands)
        self.assertEqual(commands[-1], "376")  # the end of the MOTD

    def test_isupportTellsTheLimits(self):
        s = IrcSession(self.irc)
        s.send("NICK alice")
        s.send("USER al 0 * :Alice")
        tokens = [t for m in s.messages() if m.command == "005" for t in m.params[1:-1]]
        self.assertIn("NICKLEN=20", tokens)
        self.assertIn("CHANNELLEN=33", tokens)
        self.assertIn("CHATHISTORY=500", tokens)
        self.assertIn("PREFIX=(ov)@+", tokens)

    def test_capNegotiationHoldsRegistration(self):
        s = IrcSession(self.irc)
        s.send("CAP LS 302")
        self.assertEqual(s.read(), [":irc.test CAP * LS :" + " ".join(
            f"{cap}={wording.CAP_VALUES[cap]}" if cap in wording.CAP_VALUES else cap
            for cap in wording.CAPABILITIES)])
        s.send("NICK alice")
        s.send("USER al 0 * :Alice")
        self.assertEqual(s.read(), [])  # no welcome until CAP END
        s.send("CAP REQ :server-time nonsense")
        self.assertEqual(s.read(), [":irc.test CAP alice NAK :server-time nonsense"])
        s.send("CAP REQ :server-time echo-message")
        self.assertEqual(s.read(), [":irc.test CAP alice ACK :server-time echo-message"])
        s.send("CAP END")
        self.assertIn("001", [m.command for m in s.messages()])
        s.send("CAP LIST")
        self.assertEqual(s.read()[-1], ":irc.test CAP alice LIST :echo-message server-time")

    def test_nickAndNameAreOneNamespace(self):
        self.nativeUser("Alice")
        s = IrcSession(self.irc)
        s.send("NICK alice")
        self.assertEqual(s.read(), [":irc.test 433 * alice :Nickname is already in use"])
        s.send("NICK bad!nick")
        self.assertEqual(s.messages()[0].command, "432")
        native = Session(self.native)
        native.read()
        self.ircUser("bob")
        native.send("bob")
        self.assertIn("! The name bob is taken. Choose another one.", native.read())

    def test_quitBeforeRegistrationGetsError(self):
        s = IrcSession(self.irc)
        s.send("QUIT")
        self.assertTrue(s.read()[0].startswith("ERROR :Closing link"))
        self.assertTrue(s.transport.disconnecting)

    def test_password(self):
        self.irc.password = "sesame"
        s = IrcSession(self.irc)
        s.send("PASS wrong")
        s.send("NICK alice")
        s.send("USER al 0 * :Alice")
        lines = s.read()
        self.assertEqual(lines[0], ":irc.test 464 alice :Password incorrect")
        self.assertTrue(lines[1].startswith("ERROR "))
        t = IrcSession(self.irc)
        t.send("PASS sesame")
        t.send("NICK alice")
        t.send("USER al 0 * :Alice")
        self.assertIn("001", [m.command for m in t.messages()])

    def test_commandsBeforeRegistration(self):
        s = IrcSession(self.irc)
        s.send("JOIN #kitchen")
        self.assertEqual(s.read(), [":irc.test 451 * :You have not registered"])

    def test_idleClientIsPingedThenDropped(self):
        s = self.ircUser("alice")
        self.lobby.clock.advance(self.irc.pingInterval)
        self.assertEqual(s.read(), ["PING irc.test"])
        s.send("PONG irc.test")  # it answered: still here
        self.lobby.clock.advance(self.irc.pingInterval)
        self.assertEqual(s.read(), ["PING irc.test"])
        self.lobby.clock.advance(self.irc.pingInterval)  # no answer this time
        self.assertEqual(s.read(), ["ERROR :Closing link: ping timeout"])
        self.assertTrue(s.transport.disconnecting)
        self.assertNotIn("alice", self.lobby.names)


class AcrossDoorsTests(Doors, TestCase):
    def test_channelsAreRooms(self):
        bob = self.nativeUser("bob")
        bob.send("create kitchen")
        bob.read()
        alice = self.ircUser("alice")
        alice.send("JOIN #kitchen")
        lines = alice.read()
        self.assertEqual(lines[0], ":alice!~alice@irc.chatsvc JOIN #kitchen")
        self.assertIn(":irc.test 353 alice = #kitchen :@bob alice", lines)
        self.assertEqual(bob.read(), ["* alice joined kitchen"])
        bob.send("hello from nc")
        self.assertEqual(alice.read(),
                         [":bob!~bob@native.chatsvc PRIVMSG #kitchen :hello from nc"])
        bob.read()
        alice.send("PRIVMSG #kitchen :hello from irc")
        self.assertEqual(bob.read(), ["<alice> hello from irc"])
        self.assertEqual(alice.read(), [])  # no echo unless asked for

    def test_joinCreatesAndLeavesNothingBehind(self):
        alice = self.ircUser("alice")
        alice.send("JOIN #attic,#cellar")
        self.assertEqual(sorted(self.lobby.rooms), ["attic", "cellar"])
        bob = self.nativeUser("bob")
        bob.send("list")
        self.assertIn("*   attic (1 user)", bob.read())
        alice.read()
        alice.send("PART #attic :bye")
        self.assertEqual(alice.read(), [":alice!~alice@irc.chatsvc PART #attic bye"])
        self.assertEqual(list(self.lobby.roomList()), [("cellar", 1), ("attic", 0)])

    def test_privateMessagesBothWays(self):
        bob = self.nativeUser("bob")
        alice = self.ircUser("alice")
        alice.send("PRIVMSG bob :psst")
        self.assertEqual(bob.read(), ["<- alice: psst"])
        bob.send("msg alice hi there")
        bob.read()
        self.assertEqual(alice.read(),
                         [":bob!~bob@native.chatsvc PRIVMSG alice :hi there"])
        alice.send("PRIVMSG nobody :hello?")
        self.assertEqual(alice.read(), [":irc.test 401 alice nobody :No such nick/channel"])

    def test_quitIsToldOnceAndNativeLeavesAreParts(self):
        alice = self.ircUser("alice")
        alice.send("JOIN #one,#two")
        bob = self.nativeUser("bob")
        carol = self.ircUser("carol")
        carol.send("JOIN #one,#two")
        bob.send("join one")
        alice.read()
        bob.send("join two")  # the native door leaves one for two
        self.assertEqual(alice.read(), [":bob!~bob@native.chatsvc PART #one",
                                        ":bob!~bob@native.chatsvc JOIN #two"])
        carol.send("QUIT :off to bed")
        self.assertEqual(alice.read(), [":carol!~carol@irc.chatsvc QUIT :Quit: off to bed"])
        self.assertEqual(bob.read()[-1], "* carol left two (quit): off to bed")

    def test_whoAndWhoisSeeEveryDoor(self):
        bob = self.nativeUser("bob")
        bob.send("create kitchen")
        alice = self.ircUser("alice")
        alice.send("JOIN #kitchen")
        alice.read()
        alice.send("WHO #kitchen")
        self.assertEqual(alice.read(), [
            ":irc.test 352 alice #kitchen ~bob native.chatsvc irc.test bob H@ :0 bob",
            ":irc.test 352 alice #kitchen ~alice irc.chatsvc irc.test alice H :0 Alice Example",
            ":irc.test 315 alice #kitchen :End of /WHO list"])
        alice.send("WHOIS bob")
        lines = alice.read()
        self.assertEqual(lines[0], ":irc.test 311 alice bob ~bob native.chatsvc * bob")
        self.assertIn(":irc.test 319 alice bob @#kitchen", lines)
        bob.read()
        bob.send("who")
        self.assertEqual(bob.read(), ["* In kitchen (2): bob, alice."])

    def test_awayNotify(self):
        alice = self.ircUser("alice", ["away-notify"])
        alice.send("JOIN #kitchen")
        bob = self.ircUser("bob")
        bob.send("JOIN #kitchen")
        alice.read()
        bob.read()
        bob.send("AWAY :lunch")
        self.assertEqual(bob.read(), [":irc.test 306 bob :You have been marked as being away"])
        self.assertEqual(alice.read(), [":bob!~bob@irc.chatsvc AWAY lunch"])
        alice.send("PRIVMSG bob :there?")
        self.assertEqual(alice.read(), [":irc.test 301 alice bob lunch"])

    def test_renameIsSeenByEveryDoor(self):
        alice = self.ircUser("alice")
        alice.send("JOIN #kitchen")
        bob = self.nativeUser("bob")
        bob.send("join kitchen")
        alice.read()
        bob.read()
        alice.send("NICK ally")
        self.assertEqual(alice.read(), [":alice!~alice@irc.chatsvc NICK ally"])
        self.assertEqual(bob.read(), ["* alice is now known as ally"])
        self.assertIn("ally", self.lobby.names)
        self.assertNotIn("alice", self.lobby.names)

    def test_operatorsGiveVoice(self):
        alice = self.ircUser("alice", ["multi-prefix"])
        alice.send("JOIN #kitchen")
        bob = self.nativeUser("bob")
        bob.send("join kitchen")
        alice.read()
        bob.read()
        alice.send("MODE #kitchen +v bob")
        self.assertEqual(alice.read(), [":alice!~alice@irc.chatsvc MODE #kitchen +v bob"])
        self.assertEqual(bob.read(), ["* alice gave bob voice in kitchen"])
        carol = self.ircUser("carol")
        carol.send("JOIN #kitchen")
        carol.read()
        carol.send("MODE #kitchen +o carol")
        self.assertEqual(carol.read(),
                         [":irc.test 482 carol #kitchen :You're not channel operator"])

    def test_secretRoomsAreListedOnlyToMembers(self):
        alice = self.ircUser("alice")
        alice.send("JOIN #hideout")
        alice.send("MODE #hideout +s")
        bob = self.nativeUser("bob")
        bob.send("list")
        self.assertNotIn("hideout", "\n".join(bob.read()))
        alice.read()
        alice.send("LIST")
        self.assertIn(":irc.test 322 alice #hideout 1 :", alice.read())


class TalkingTests(Doors, TestCase):
    def test_echoIsTheAcknowledgement(self):
        self.lobby.store.holding = []
        alice = self.ircUser("alice", ["echo-message", "server-time", "message-tags"])
        alice.send("JOIN #kitchen")
        self.lobby.store.release()
        alice.read()
        self.lobby.store.holding = []
        alice.send("PRIVMSG #kitchen :stored first")
        self.assertEqual(alice.read(), [])  # not stored yet: no echo
        self.lobby.store.release()
        [echo] = alice.messages()
        self.assertEqual(echo.params, ["#kitchen", "stored first"])
        stored = self.lobby.store.messages[self.lobby.rooms["kitchen"].id][0]
        self.assertEqual(echo.tags["msgid"], stored.uid)
        self.assertEqual(echo.tags["time"], wording.isoTime(NOW))

    def test_notStoredIsAFailNobodyHears(self):
        alice = self.ircUser("alice", ["echo-message"])
        alice.send("JOIN #kitchen")
        bob = self.nativeUser("bob")
        bob.send("join kitchen")
        alice.read()
        bob.read()
        self.lobby.store.failing = True
        alice.send("PRIVMSG #kitchen :lost?")
        [fail] = alice.read()
        self.assertTrue(fail.startswith(":irc.test FAIL PRIVMSG MESSAGE_NOT_STORED #kitchen :"))
        self.assertEqual(bob.read(), [])

    def test_commandsAfterAMessageWaitForIt(self):
        """A PING after a PRIVMSG is answered once the message is stored and sent."""
        alice = self.ircUser("alice", ["echo-message"])
        alice.send("JOIN #kitchen")
        alice.read()
        self.lobby.store.holding = []
        alice.send(b"PRIVMSG #kitchen :one\r\nPRIVMSG #kitchen :two\r\nPING x\r\n")
        self.assertEqual(alice.read(), [])
        self.lobby.store.release()
        lines = alice.read()
        self.assertEqual([message.parse(line).command for line in lines],
                         ["PRIVMSG", "PRIVMSG", "PONG"])

    def test_labeledResponses(self):
        alice = self.ircUser("alice", ["labeled-response", "batch", "echo-message"])
        alice.send("@label=a1 PING x")
        self.assertEqual(alice.read(), ["@label=a1 :irc.test PONG irc.test x"])
        alice.send("@label=a2 PONG x")
        self.assertEqual(alice.read(), ["@label=a2 :irc.test ACK"])
        alice.send("@label=a3 JOIN #kitchen")
        lines = alice.messages()
        self.assertEqual(lines[0].command, "BATCH")
        self.assertEqual(lines[0].tags, {"label": "a3"})
        ref = lines[0].params[0][1:]
        self.assertTrue(all(m.tags.get("batch") == ref for m in lines[1:-1]))
        self.assertEqual(lines[-1].params, ["-" + ref])
        alice.send("@label=a4 PRIVMSG #kitchen :hi")
        [echo] = alice.messages()
        self.assertEqual((echo.tags["label"], echo.params), ("a4", ["#kitchen", "hi"]))

    def test_badInputGetsNumerics(self):
        alice = self.ircUser("alice")
        for line, expected in [
                ("FROB", ":irc.test 421 alice FROB :Unknown command"),
                ("JOIN", ":irc.test 461 alice JOIN :Not enough parameters"),
                ("PRIVMSG #nowhere :hi", ":irc.test 403 alice #nowhere :No such channel"),
                ("PRIVMSG", ":irc.test 411 alice :No recipient given (PRIVMSG)"),
                ("PRIVMSG bob", ":irc.test 412 alice :No text to send"),
                ("NICK #bad", ":irc.test 432 alice #bad :Erroneous nickname: 1 to 20"
                              " letters, digits, _ or -"),
                ("x" * 3000, ":irc.test 417 alice :Input line was too long")]:
            alice.send(line)
            self.assertEqual(alice.read(), [expected], line)
        bob = self.nativeUser("bob")
        bob.send("create kitchen")
        alice.send("PRIVMSG #kitchen :hi")
        self.assertEqual(alice.read(), [":irc.test 404 alice #kitchen :Cannot send to channel:"
                                        " join it first"])
        alice.send(b"PRIVMSG bob :\xff\xfe\r\n")
        self.assertEqual(alice.read(), [":irc.test FAIL PRIVMSG INVALID_UTF8 :That line is not"
                                        " UTF-8; it was discarded."])
        self.assertFalse(alice.transport.disconnecting)  # nothing here closes the connection

    def test_meIsKeptAsText(self):
        alice = self.ircUser("alice")
        alice.send("JOIN #kitchen")
        bob = self.nativeUser("bob")
        carol = self.ircUser("carol")
        carol.send("JOIN #kitchen")
        bob.send("join kitchen")
        carol.read()
        bob.read()
        alice.send("PRIVMSG #kitchen :\x01ACTION waves\x01")
        self.assertEqual(bob.read(), ["<alice> /me waves"])
        self.assertEqual(carol.read(),
                         [":alice!~alice@irc.chatsvc PRIVMSG #kitchen :\x01ACTION waves\x01"])

    def test_operator(self):
        alice = self.ircUser("alice")
        alice.send("OPER admin wrong")
        self.assertEqual(alice.read(), [":irc.test 464 alice :Password incorrect"])
        alice.send("OPER admin secret")
        self.assertEqual(alice.read(), [":irc.test 381 alice :You are now an IRC operator"])


class HistoryTests(Doors, TestCase):
    def setUp(self):
        super().setUp()
        bob = self.nativeUser("bob")
        bob.send("create kitchen")
        for i in range(10):
            self.lobby.clock.advance(1)
            bob.send(f"message {i}")
        self.bob = bob
        self.alice = self.ircUser("alice", ["server-time", "batch", "message-tags",
                                            "draft/chathistory"])

    def history(self, command):
        self.alice.send(command)
        lines = self.alice.messages()
        self.assertEqual(lines[0].command, "BATCH")
        self.assertEqual(lines[0].params[1:], ["chathistory", "#kitchen"])
        return [m.params[1] for m in lines[1:-1]]

    def test_joinReplaysWhatWasSaidBefore(self):
        self.alice.send("JOIN #kitchen")
        lines = self.alice.messages()
        replay = [m for m in lines if m.command == "PRIVMSG"]
        self.assertEqual([m.params[1] for m in replay], [f"message {i}" for i in range(10)])
        self.assertEqual(replay[0].tags["time"], wording.isoTime(NOW + 1))
        self.assertTrue(all("batch" in m.tags for m in replay))

    def test_clientsThatCannotShowTimesGetNoReplay(self):
        plain = self.ircUser("plain")
        plain.send("JOIN #kitchen")
        self.assertNotIn("PRIVMSG", [m.command for m in plain.messages()])

    def test_subcommands(self):
        self.alice.send("JOIN #kitchen")
        self.alice.read()
        uids = [m.uid for m in self.lobby.store.messages[self.lobby.rooms["kitchen"].id]]
        stamp = wording.isoTime(NOW + 5)  # message 4
        texts = [f"message {i}" for i in range(10)]
        self.assertEqual(self.history("CHATHISTORY LATEST #kitchen * 3"), texts[7:])
        self.assertEqual(self.history(f"CHATHISTORY LATEST #kitchen msgid={uids[4]} 50"),
                         texts[5:])
        self.assertEqual(self.history(f"CHATHISTORY BEFORE #kitchen msgid={uids[6]} 2"),
                         texts[4:6])
        self.assertEqual(self.history(f"CHATHISTORY BEFORE #kitchen timestamp={stamp} 50"),
                         texts[:4])
        self.assertEqual(self.history(f"CHATHISTORY AFTER #kitchen timestamp={stamp} 3"),
                         texts[5:8])
        self.assertEqual(self.history(f"CHATHISTORY AROUND #kitchen msgid={uids[7]} 3"),
                         texts[6:9])
        self.assertEqual(self.history(
            f"CHATHISTORY BETWEEN #kitchen msgid={uids[0]} msgid={uids[9]} 3"), texts[1:4])
        self.assertEqual(self.history(
            f"CHATHISTORY BETWEEN #kitchen msgid={uids[9]} msgid={uids[0]} 3"), texts[6:9])

    def test_pagesAreBounded(self):
        self.alice.send("JOIN #kitchen")
        self.alice.read()
        self.lobby.settings.__dict__["history_page_max"] = 4  # (frozen: tests only)
        self.assertEqual(len(self.history("CHATHISTORY LATEST #kitchen * 100")), 4)

    def test_onlyRoomsYouAreIn(self):
        self.alice.send("CHATHISTORY LATEST #kitchen * 10")
        self.assertEqual(self.alice.read(), [
            ":irc.test FAIL CHATHISTORY INVALID_TARGET LATEST #kitchen :You can read the"
            " history of channels you are in"])

    def test_targets(self):
        self.alice.send("JOIN #kitchen")
        self.alice.read()
        self.alice.send(f"CHATHISTORY TARGETS timestamp={wording.isoTime(NOW)}"
                        f" timestamp={wording.isoTime(NOW + 100)} 10")
        lines = self.alice.messages()
        self.assertEqual(lines[1].params, ["TARGETS", "#kitchen",
                                           "timestamp=" + wording.isoTime(NOW + 10)])


class LimitsTests(TestCase):
    """The hardening limits hold on this door, per address, whichever door."""

    def test_connectionsPerAddressCountBothDoors(self):
        lobby = makeLobby(max_per_address=2)
        native = ChatFactory(lobby)
        irc = IRCFactory(lobby, native.addresses, native.pacer, "irc.test")
        Session(native, "bob", host="192.0.2.9")
        IrcSession(irc, host="192.0.2.9")
        third = IrcSession(irc, host="192.0.2.9")
        [refusal] = third.read()
        self.assertTrue(refusal.startswith("ERROR :Closing link: There are 2 connections"))
        self.assertTrue(third.transport.disconnecting)

    def test_creatingChannelsSharesTheAddressAllowance(self):
        lobby = makeLobby(create_rate=1, create_burst=1)
        native = ChatFactory(lobby)
        irc = IRCFactory(lobby, native.addresses, native.pacer, "irc.test")
        s = IrcSession(irc, host="192.0.2.11")
        s.send(b"NICK alice\r\nUSER a 0 * :A\r\nJOIN #attic\r\n")
        s.read()
        bob = Session(native, "bob", host="192.0.2.11")  # the same address, the other door
        bob.send("create cellar")
        self.assertTrue(bob.read()[0].startswith("! Your address has created rooms too often."))
        s.send("JOIN #cellar")
        self.assertEqual(s.read(), [":irc.test FAIL JOIN CREATING_TOO_OFTEN #cellar :Your"
                                    " address has created channels too often; try again in"
                                    " 60 min, or join one that exists (/list)"])
        bob.send("join attic")  # joining one that exists is no creation
        self.assertEqual(bob.read()[0], "* You joined attic. Here: alice.")
        self.assertEqual(sorted(lobby.rooms), ["attic"])

    def test_floodControlPacesAndLosesNothing(self):
        lobby = makeLobby(flood_rate=1, flood_burst=2)
        irc = IRCFactory(lobby, serverName="irc.test")
        s = IrcSession(irc, host="192.0.2.10")
        s.send(b"NICK alice\r\nUSER a 0 * :A\r\nPING one\r\nPING two\r\n")
        lines = s.read()
        self.assertIn(":irc.test NOTICE alice :You are sending more than 1 lines a second"
                      " from your address; the server now reads your lines more slowly."
                      " Nothing you sent is lost.", lines)
        self.assertNotIn(":irc.test PONG irc.test two", lines)
        lobby.clock.advance(5)
        self.assertIn(":irc.test PONG irc.test two", s.read())

    def test_slowReaderIsDisconnected(self):
        lobby = makeLobby(max_output_buffer=16384)
        irc = IRCFactory(lobby, serverName="irc.test")
        reader = IrcSession(irc)
        reader.send("NICK reader")
        reader.send("USER r 0 * :R")
        reader.send("JOIN #kitchen")
        talker = IrcSession(irc)
        talker.send("NICK talker")
        talker.send("USER t 0 * :T")
        talker.send("JOIN #kitchen")
        reader.transport.producer.pauseProducing()  # its socket is full: it does not read
        for n in range(400):
            talker.send(f"PRIVMSG #kitchen :{'x' * 100} {n}")
        self.assertTrue(reader.transport.disconnected or reader.protocol._closing)


class MessageTests(TestCase):
    def test_parseAndFormat(self):
        m = message.parse(r"@label=a\sb;+x :nick!u@h PRIVMSG  #chan :hello world")
        self.assertEqual((m.tags, m.source, m.command, m.params),
                         ({"label": "a b", "+x": ""}, "nick!u@h", "PRIVMSG",
                          ["#chan", "hello world"]))
        self.assertEqual(message.format("PRIVMSG", "#chan", "hi", source="s",
                                        tags={"label": "a;b"}),
                         r"@label=a\:b :s PRIVMSG #chan hi")
        self.assertEqual(message.format("PRIVMSG", "#chan", ":)"), "PRIVMSG #chan ::)")
        self.assertEqual(message.format("PART", "#chan", ""), "PART #chan :")

    def test_longTextsGoInSeveralLinesAndLoseNothing(self):
        text = " ".join(f"word{n}" for n in range(300))  # ~2,000 bytes, as nc may send
        lines = message.said("PRIVMSG", "#kitchen", text, "bob!~bob@native.chatsvc",
                             {"msgid": "m1", "time": "t"}).split("\r\n")
        self.assertGreater(len(lines), 3)
        parsed = [message.parse(line) for line in lines]
        self.assertEqual("".join(m.params[1] for m in parsed), text)
        self.assertTrue(all(len(line.split(" ", 1)[1].encode()) <= 510 for line in lines))
        self.assertEqual([m.tags.get("msgid") for m in parsed], ["m1"] + [None] * (len(lines) - 1))
        action = message.said("PRIVMSG", "#k", "\x01ACTION " + "x" * 1000 + "\x01", "b!~b@h")
        self.assertTrue(all(message.parse(line).params[1].startswith("\x01ACTION ")
                            for line in action.split("\r\n")))

    def test_times(self):
        self.assertEqual(wording.isoTime(NOW + 0.25), "2026-11-18T11:06:40.250Z")
        self.assertEqual(wording.parseTime("2026-11-18T11:06:40.250Z"), (NOW * 1000) + 250)
        self.assertIsNone(wording.parseTime("yesterday"))


class WhatPeopleTypeTests(Doors, TestCase):
    """What a person tried with WeeChat, irssi and nc, kept as it should be."""

    def setUp(self):
        super().setUp()
        self.alice = self.ircUser("alice", ["batch", "draft/chathistory"])
        self.alice.send("JOIN #kitchen")
        self.bob = self.nativeUser("bob")
        self.bob.send("join kitchen")
        self.alice.read()
        self.bob.read()

    def test_actionsAreActionsEverywhereAndInHistory(self):
        self.alice.send("PRIVMSG #kitchen :\x01ACTION waves\x01")
        self.assertEqual(self.bob.read(), ["<alice> /me waves"])
        self.bob.send("/me dances")
        self.assertEqual(self.alice.read(), [":bob!~bob@native.chatsvc PRIVMSG #kitchen"
                                             " :\x01ACTION dances\x01"])
        self.bob.send("say /me is only text")  # typed, not an action
        self.assertEqual(self.alice.read(), [":bob!~bob@native.chatsvc PRIVMSG #kitchen"
                                             " :/me is only text"])
        self.bob.read()
        self.alice.send("CHATHISTORY LATEST #kitchen * 3")
        texts = [message.parse(line).params[1] for line in self.alice.read()[1:-1]]
        self.assertEqual(texts, ["\x01ACTION waves\x01", "\x01ACTION dances\x01",
                                 "/me is only text"])
        carol = self.nativeUser("carol")
        carol.send("join kitchen")  # the replay shows them as they were said
        self.assertEqual([line.split("> ", 1)[1] for line in carol.read()[1:]],
                         ["/me waves", "/me dances", "/me is only text"])

    def test_ctcpIsNotChat(self):
        self.alice.send("PRIVMSG #kitchen :\x01VERSION\x01")
        self.assertEqual(self.bob.read(), [])

    def test_colourCodesGoWithTheirNumbers(self):
        self.alice.send("PRIVMSG #kitchen :\x02bold\x02 and \x034,1red\x03 here")
        self.assertEqual(self.bob.read(), ["<alice> bold and red here"])

    def test_nativeSenderIsToldSomeoneIsAway(self):
        self.alice.send("AWAY :lunch")
        self.bob.send("msg alice back soon?")
        self.assertEqual(self.bob.read(), ["-> alice: back soon?", "* alice is away: lunch"])

    def test_tooManyTargets(self):
        self.alice.send("JOIN #a,#b,#c,#d,#e")
        lines = self.alice.read()
        self.assertIn(":irc.test 407 alice #e :Too many targets: at most 4 at once", lines)
        self.assertNotIn("e", self.lobby.rooms)

    def test_quitWithoutAReason(self):
        self.bob.send("quit")
        self.assertEqual(self.alice.read(), [":bob!~bob@native.chatsvc QUIT Quit"])

    def test_targetsWithoutBatch(self):
        plain = self.ircUser("plain")
        plain.send("JOIN #kitchen")
        self.bob.send("hello")
        plain.read()
        plain.send(f"CHATHISTORY TARGETS timestamp={wording.isoTime(NOW - 1)}"
                   f" timestamp={wording.isoTime(NOW + 1)} 5")
        self.assertEqual(plain.read(), [":irc.test CHATHISTORY TARGETS #kitchen"
                                        f" timestamp={wording.isoTime(NOW)}"])

    def test_isonAndVersion(self):
        self.alice.send("ISON bob nobody Alice")
        self.assertEqual(self.alice.read(), [":irc.test 303 alice :bob alice"])
        self.alice.send("VERSION")
        self.assertTrue(self.alice.read()[0].startswith(":irc.test 351 alice chatsvc-"))

"""The native front door, driven line by line over StringTransport."""

from twisted.trial.unittest import TestCase

from chatsvc.doors import connection
from chatsvc.doors.line import wording
from chatsvc.doors.line.commands import COMMANDS
from tests.support import NOW_STAMP, makeServer


class NamingTests(TestCase):
    def setUp(self):
        self.lobby, self.connect = makeServer()

    def test_welcomeAsksForName(self):
        alice = self.connect()
        self.assertEqual(alice.read(), ["* Welcome to chatsvc! Enter your screen name:"])

    def test_nameConfirmedWithCommandList(self):
        alice = self.connect()
        alice.read()
        alice.send("alice")
        lines = alice.read()
        self.assertEqual(lines[0], "* Welcome, alice. You are in the Lobby. Commands:")
        for command in COMMANDS:  # the server operators' are shown only to them
            self.assertEqual(any(command.usage in line for line in lines),
                             not command.operatorOnly, command.name)
        self.assertTrue(all(line.startswith("* ") for line in lines))

    def test_emptyNameIsGuest(self):
        first, second = self.connect(), self.connect()
        first.send("")
        second.send("   ")
        self.assertIn("* Welcome, Guest1. You are in the Lobby. Commands:", first.read())
        self.assertIn("* Welcome, Guest2. You are in the Lobby. Commands:", second.read())

    def test_guestSkipsTakenName(self):
        self.connect("Guest1")
        guest = self.connect()
        guest.send("")
        self.assertIn("* Welcome, Guest2. You are in the Lobby. Commands:", guest.read())

    def test_invalidNameAsksAgain(self):
        alice = self.connect()
        alice.read()
        for bad in ["bob smith", "x" * 21, "semi;colon", "<b>"]:
            alice.send(bad)
            lines = alice.read()
            self.assertTrue(lines[0].startswith("! A screen name is 1 to 20 letters"), lines)
            self.assertEqual(lines[1:], ["* Enter your screen name:"])
        self.assertFalse(alice.transport.disconnecting)
        alice.send("alice")
        self.assertIn("* Welcome, alice. You are in the Lobby. Commands:", alice.read())

    def test_nameTakenCaseInsensitively(self):
        self.connect("Alice")
        other = self.connect()
        other.read()
        other.send("ALICE")
        self.assertEqual(other.read(), ["! The name ALICE is taken. Choose another one.",
                                        "* Enter your screen name:"])

    def test_nameFreedOnDisconnect(self):
        self.connect("alice").close()
        again = self.connect()
        again.send("alice")
        self.assertIn("* Welcome, alice. You are in the Lobby. Commands:", again.read())

    def test_controlCharactersLeaveName(self):
        alice = self.connect()
        alice.send(b"\x1b[31mal\x07ice\r\n")
        self.assertIn("* Welcome, alice. You are in the Lobby. Commands:", alice.read())


class ServerFullTests(TestCase):
    def test_refusedWhenFull(self):
        lobby, connect = makeServer(max_clients=2)
        alice = connect("alice")
        connect("bob")
        third = connect()
        self.assertEqual(third.read(), ["! The server is full: it holds 2 users. Try again later."])
        self.assertTrue(third.transport.disconnecting)
        third.close()
        self.assertFalse(alice.transport.disconnecting)
        alice.send("who")
        self.assertEqual(alice.read(), ["* Online (2): alice, bob. You are in the Lobby."])

    def test_defaultIsTen(self):
        lobby, connect = makeServer()
        sessions = [connect(f"user{i}") for i in range(10)]
        self.assertFalse(any(s.transport.disconnecting for s in sessions))
        self.assertTrue(connect().transport.disconnecting)

    def test_leavingMakesRoom(self):
        lobby, connect = makeServer(max_clients=1)
        connect("alice").close()
        self.assertFalse(connect().transport.disconnecting)

    def test_silentConnectionsDoNotKeepUsersOut(self):
        """
        Connections that never choose a name take no user's place: past
        max_clients of them, the one that has waited longest makes way.
        """
        lobby, connect = makeServer(max_clients=2)
        first, second = connect(), connect()
        first.read()  # the welcome
        newcomer = connect()
        self.assertEqual(first.read(), ["! You did not choose a screen name, and a newer"
                                        " connection needed your place. Goodbye."])
        self.assertTrue(first.transport.disconnecting)
        self.assertFalse(second.transport.disconnecting)
        newcomer.send("carol")
        self.assertIn("* Welcome, carol. You are in the Lobby. Commands:", newcomer.read())
        first.send("alice")  # too late: nothing more is read from it
        first.send("create ghosts")
        self.assertEqual(first.read(), [])
        newcomer.send("who")
        self.assertEqual(newcomer.read(), ["* Online (1): carol. You are in the Lobby."])
        self.assertEqual(sorted(lobby.names), ["carol"])
        self.assertEqual(lobby.rooms, {})
        first.close()
        self.assertEqual(len(lobby.users), 2)

    def test_closingConnectionIsCutOffIfThePeerNeverGoes(self):
        """
        After quit (or a timeout) nothing more is read; a peer that never
        finishes the close (a TLS client that ignores the close alert) is cut
        off after CLOSE_GRACE seconds and its name is free again.
        """
        lobby, connect = makeServer()
        alice = connect("alice")
        alice.send("quit")
        self.assertEqual(alice.read(), ["* Goodbye, alice."])
        self.assertTrue(alice.transport.disconnecting)
        alice.send("create ghosts")
        self.assertEqual((alice.read(), lobby.rooms), ([], {}))
        lobby.clock.advance(connection.CLOSE_GRACE - 0.1)
        self.assertFalse(alice.transport.disconnected)
        lobby.clock.advance(0.1)
        self.assertTrue(alice.transport.disconnected)  # aborted
        alice.protocol.connectionLost(None)
        self.assertEqual(lobby.names, {})

    def test_nameRefusedWhenFullMeanwhile(self):
        """The server filled up while this one was choosing: refused, and asked again."""
        lobby, connect = makeServer(max_clients=2)
        alice, waiting = connect("alice"), connect()
        connect("bob")
        waiting.read()  # the welcome
        waiting.send("carol")
        self.assertEqual(waiting.read(), [
            "! The server is full: it holds 2 users. Try again later.",
            "* " + wording.NAME_PROMPT])
        self.assertFalse(waiting.transport.disconnecting)
        alice.close()
        waiting.send("carol")
        self.assertIn("* Welcome, carol. You are in the Lobby. Commands:", waiting.read())


class RoomTests(TestCase):
    def setUp(self):
        self.lobby, self.connect = makeServer()
        self.alice = self.connect("alice")
        self.bob = self.connect("bob")

    def test_listEmpty(self):
        self.alice.send("list")
        self.assertEqual(self.alice.read(),
                         ["* There are no rooms yet. Type create ROOM to make one."])

    def test_createJoinsRoom(self):
        self.alice.send("create kitchen")
        self.assertEqual(self.alice.read(), ["* You joined kitchen. Here: no one else."])
        self.bob.send("list")
        self.assertEqual(self.bob.read(), ["* Rooms (1), busiest first:", "*   kitchen (1 user)"])

    def test_createExisting(self):
        self.alice.send("create kitchen")
        self.bob.send("create hall")
        self.bob.read()
        self.bob.send("create KITCHEN")
        self.assertEqual(self.bob.read(), [
            "! A room named kitchen exists already. Rooms: hall, kitchen."
            " Type join kitchen to go there."])
        self.bob.send("who")
        self.assertEqual(self.bob.read(), ["* In hall (1): bob."])

    def test_createRefusedByStore(self):
        self.lobby.store.failing = True
        self.alice.send("create kitchen")
        self.assertEqual(self.alice.read(), [
            "! The room kitchen could not be saved, so it was not created. Please try again."])
        self.lobby.store.failing = False
        self.alice.send("create kitchen")
        self.assertEqual(self.alice.read(), ["* You joined kitchen. Here: no one else."])
        self.flushLoggedErrors(OSError)

    def test_createInvalidName(self):
        for bad in ["/create a/b", "/create " + "r" * 33, "/create k\u00fcche"]:
            self.alice.send(bad)
            self.assertEqual(self.alice.read(),
                             ["! A room name is 1 to 32 letters, digits, _, - or ., starting with a letter or digit."])
        self.alice.send("list")
        self.assertEqual(self.alice.read(),
                         ["* There are no rooms yet. Type create ROOM to make one."])

    def test_joinAndSwitch(self):
        self.alice.send("create kitchen")
        self.alice.send("create hall")
        self.alice.send("join kitchen")
        self.alice.read()
        self.bob.send("join kitchen")
        self.assertEqual(self.bob.read(), ["* You joined kitchen. Here: alice."])
        self.assertEqual(self.alice.read(), ["* bob joined kitchen"])
        self.bob.send("join hall")
        self.assertEqual(self.bob.read(), ["* You joined hall. Here: no one else."])
        self.assertEqual(self.alice.read(), ["* bob left kitchen"])
        self.bob.send("list")
        self.assertEqual(self.bob.read(), [
            "* Rooms (2), busiest first:", "*   hall (1 user) <- you are here", "*   kitchen (1 user)"])

    def test_joinCurrentRoomChangesNothing(self):
        self.alice.send("create kitchen")
        self.bob.send("join kitchen")
        self.alice.read()
        self.bob.read()
        self.bob.send("join Kitchen")
        self.assertEqual(self.bob.read(), ["* You are in kitchen already."])
        self.assertEqual(self.alice.read(), [])

    def test_joinMissingRoom(self):
        self.alice.send("join attic")
        self.assertEqual(self.alice.read(), [
            "! No room named 'attic'. Type list to see rooms, or create attic."])

    def test_leave(self):
        self.alice.send("create kitchen")
        self.bob.send("join kitchen")
        self.alice.read()
        self.bob.read()
        self.bob.send("leave")
        self.assertEqual(self.bob.read(), ["* You left kitchen. You are in the Lobby."])
        self.assertEqual(self.alice.read(), ["* bob left kitchen"])
        self.bob.send("leave")
        self.assertTrue(self.bob.read()[0].startswith("! You are not in a room"))

    def test_who(self):
        self.alice.send("create kitchen")
        self.bob.send("join kitchen")
        self.bob.read()
        self.bob.send("who")
        self.assertEqual(self.bob.read(), ["* In kitchen (2): alice, bob."])

    def test_disconnectAnnounced(self):
        self.alice.send("create kitchen")
        self.bob.send("join kitchen")
        self.alice.read()
        self.bob.close()
        self.assertEqual(self.alice.read(), ["* bob left kitchen (disconnected)"])
        self.alice.send("list")
        self.assertEqual(self.alice.read(), [
            "* Rooms (1), busiest first:", "*   kitchen (1 user) <- you are here"])


class ChatTests(TestCase):
    def setUp(self):
        self.lobby, self.connect = makeServer()
        self.alice = self.connect("alice")
        self.bob = self.connect("bob")
        self.carol = self.connect("carol")
        self.alice.send("create kitchen")
        self.bob.send("join kitchen")
        for s in (self.alice, self.bob, self.carol):
            s.read()

    def test_messageToEveryoneInRoomSenderIncluded(self):
        self.alice.send("hello there")
        self.assertEqual(self.alice.read(), ["<alice> hello there"])
        self.assertEqual(self.bob.read(), ["<alice> hello there"])
        self.assertEqual(self.carol.read(), [])

    def test_chatInLobbyRefused(self):
        self.carol.send("hello?")
        lines = self.carol.read()
        self.assertEqual(len(lines), 1)
        self.assertTrue(lines[0].startswith("! You are not in a room"), lines)
        self.assertIn("join ROOM", lines[0])

    def test_commandLookalikesAreChat(self):
        self.bob.send("leave me alone")
        self.bob.send("join the party")
        self.assertEqual(self.alice.read(), ["<bob> leave me alone", "<bob> join the party"])

    def test_sayLooksLikeCommand(self):
        self.bob.send("say list")
        self.bob.send("/say /quit")
        self.assertEqual(self.alice.read(), ["<bob> list", "<bob> /quit"])
        self.assertFalse(self.bob.transport.disconnecting)

    def test_crlfAndControlsStripped(self):
        self.bob.send(b"red \x1b[31malert\x1b[0m\x07\r\n")
        self.assertEqual(self.alice.read(), ["<bob> red alert"])

    def test_invalidUtf8Replaced(self):
        self.bob.send(b"caf\xc3\xa9 \xff\xfe!\n")
        self.assertEqual(self.alice.read(), ["<bob> caf\u00e9 \ufffd\ufffd!"])

    def test_emptyMessageRefused(self):
        self.bob.send(b"\x1b[0m\x07\n")
        self.assertEqual(self.bob.read(), ["! Nothing to send: the line is empty once cleaned."])
        self.bob.send(b"\n")
        self.assertEqual(len(self.bob.read()), 1)
        self.assertEqual(self.alice.read(), [])

    def test_unknownCommand(self):
        self.bob.send("/dance")
        lines = self.bob.read()
        self.assertEqual(len(lines), 1)
        self.assertTrue(lines[0].startswith("! Unknown command '/dance'"))
        self.assertEqual(self.alice.read(), [])

    def test_wrongArguments(self):
        self.bob.send("/join")
        self.assertEqual(self.bob.read(), [
            "! Usage: join ROOM (join ROOM, leaving the room you are in;"
            " join ROOM KEY if it has a key)."])
        self.bob.send("/history lots")
        self.assertTrue(self.bob.read()[0].startswith("! Usage: history [N]"))
        self.bob.send("/history 501")
        self.assertEqual(self.bob.read(), ["! history takes a number from 1 to 500."])

    def test_privateMessage(self):
        self.alice.send("msg Carol are you there?")
        self.assertEqual(self.alice.read(), ["-> carol: are you there?"])
        self.assertEqual(self.carol.read(), ["<- alice: are you there?"])
        self.assertEqual(self.bob.read(), [])

    def test_privateMessageUnknownUser(self):
        self.alice.send("/msg dave hi")
        self.assertEqual(self.alice.read(), [
            "! No one named 'dave' is online. Type online to see who is."])

    def test_overlongLineDiscardedRestKept(self):
        self.bob.send(b"x" * 5000 + b"\nstill here\n")
        self.assertEqual(self.bob.read(), [
            "! That line is longer than 2048 bytes; it was discarded.",
            "<bob> still here"])
        self.assertEqual(self.alice.read(), ["<bob> still here"])

    def test_overlongLineAcrossChunks(self):
        for _ in range(10):
            self.bob.send(b"y" * 1000)
        self.bob.send(b"y" * 10 + b"\r\nafter\r\n")
        self.assertEqual(self.bob.read(), [
            "! That line is longer than 2048 bytes; it was discarded.",
            "<bob> after"])

    def test_longestLineAccepted(self):
        self.bob.send(b"z" * 2048 + b"\r\n")
        self.assertEqual(self.alice.read(), ["<bob> " + "z" * 2048])

    def test_quit(self):
        self.bob.send("quit")
        self.assertEqual(self.bob.read(), ["* Goodbye, bob."])
        self.assertTrue(self.bob.transport.disconnecting)

    def test_quitAfterPendingMessageEchoesFirst(self):
        self.lobby.store.holding = []
        self.bob.send("last words")
        self.bob.send("quit")
        self.bob.send("never read")
        self.assertEqual(self.bob.read(), [])
        self.lobby.store.release()
        self.lobby.clock.advance(0)
        self.assertEqual(self.bob.read(), ["<bob> last words", "* Goodbye, bob."])
        self.assertTrue(self.bob.transport.disconnecting)

    def test_leaveAfterPendingMessageEchoesFirst(self):
        self.lobby.store.holding = []
        self.bob.send(b"bye all\nleave\nwho\n")
        self.assertEqual(self.bob.read(), [])
        self.lobby.store.release()
        self.lobby.clock.advance(0)
        self.assertEqual(self.bob.read(), [
            "<bob> bye all", "* You left kitchen. You are in the Lobby.",
            "* Online (3): alice, bob, carol. You are in the Lobby."])
        self.assertEqual(self.alice.read(), ["<bob> bye all", "* bob left kitchen"])

    def test_storeFailureNothingSent(self):
        self.lobby.store.failing = True
        self.bob.send("lost?")
        self.assertEqual(self.bob.read(), [
            "! Your message could not be saved, so it was not sent. Please try again."])
        self.assertEqual(self.alice.read(), [])
        self.lobby.store.failing = False
        self.bob.send("again")
        self.assertEqual(self.alice.read(), ["<bob> again"])
        self.assertEqual([m.text for m in self.lobby.store.messages[1]], ["again"])
        self.flushLoggedErrors(OSError)

    def test_storeNeverConfirmedSaysItMayBeSaved(self):
        """A commit sent but never confirmed: the sender is not told to send it again."""
        unconfirmed = OSError("connection lost during COMMIT")
        unconfirmed.unknown = True  # as PostgresStore's DatabaseUnavailable says
        self.lobby.store.failing = unconfirmed
        self.bob.send("saved?")
        self.assertEqual(self.bob.read(), [
            "! Your message may or may not have been saved: the database stopped answering."
            " If it was saved, you will see it shortly; wait before you send it again."])
        self.assertEqual(self.alice.read(), [])
        self.flushLoggedErrors(OSError)

    def test_messageStoredBeforeDelivery(self):
        self.lobby.store.holding = []
        self.bob.send("wait for it")
        self.assertEqual(self.alice.read() + self.bob.read(), [])
        self.lobby.store.release()
        self.lobby.clock.advance(0)
        self.assertEqual(self.alice.read(), ["<bob> wait for it"])

    def test_brokenMemberDoesNotStopBroadcast(self):
        self.carol.send("join kitchen")
        for s in (self.alice, self.bob, self.carol):
            s.read()

        def broken(data):
            raise RuntimeError("socket gone")

        self.bob.transport.write = broken
        self.alice.send("still delivered")
        self.assertEqual(self.carol.read(), ["<alice> still delivered"])
        self.assertEqual(self.alice.read(), ["<alice> still delivered"])
        self.assertTrue(self.bob.transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class HistoryTests(TestCase):
    def setUp(self):
        self.lobby, self.connect = makeServer(history_replay=3)
        self.alice = self.connect("alice")
        self.alice.send("create kitchen")
        for n in range(1, 8):
            self.alice.send(f"message {n}")
        self.alice.read()

    def test_replayBoundedWithOlderCount(self):
        bob = self.connect("bob")
        bob.send("join kitchen")
        self.assertEqual(bob.read(), [
            "* You joined kitchen. Here: alice.",
            "* 4 older messages: type history to see them.",
            f"{NOW_STAMP} <alice> message 5",
            f"{NOW_STAMP} <alice> message 6",
            f"{NOW_STAMP} <alice> message 7"])

    def test_historyPagesBack(self):
        bob = self.connect("bob")
        bob.send("join kitchen")
        bob.read()
        bob.send("history 3")
        self.assertEqual(bob.read(), [
            "* 3 earlier messages in kitchen:",
            f"{NOW_STAMP} <alice> message 2",
            f"{NOW_STAMP} <alice> message 3",
            f"{NOW_STAMP} <alice> message 4",
            "* 1 older message: type history to see more."])
        bob.send("history")
        self.assertEqual(bob.read(), [
            "* 1 earlier message in kitchen:",
            f"{NOW_STAMP} <alice> message 1",
            "* That is the beginning of kitchen's history."])
        bob.send("history")
        self.assertEqual(bob.read(), ["* That is the beginning of kitchen's history."])

    def test_rejoinStartsOver(self):
        bob = self.connect("bob")
        bob.send("join kitchen")
        bob.send("history")
        bob.send("leave")
        bob.read()
        bob.send("join kitchen")
        self.assertIn("* 4 older messages: type history to see them.", bob.read())

    def test_replayOff(self):
        lobby, connect = makeServer(history_replay=0)
        alice = connect("alice")
        alice.send("create hall")
        alice.send("one")
        alice.send("two")
        bob = connect("bob")
        bob.send("join hall")
        self.assertEqual(bob.read(), [
            "* You joined hall. Here: alice.",
            "* 2 older messages: type history to see them."])
        bob.send("history")
        self.assertEqual(bob.read()[1:3], [f"{NOW_STAMP} <alice> one", f"{NOW_STAMP} <alice> two"])

    def test_historyInLobby(self):
        self.alice.send("leave")
        self.alice.read()
        self.alice.send("history")
        self.assertTrue(self.alice.read()[0].startswith("! You are not in a room"))


class LegacyClientTests(TestCase):
    """The original select-based chatClient.py."""

    def setUp(self):
        self.lobby, self.connect = makeServer()

    def test_namePrefixAndPrompt(self):
        old = self.connect()
        old.read()
        old.send("name: oldtimer")
        self.assertIn("* Welcome, oldtimer. You are in the Lobby. Commands:", old.read())
        old.send("> create kitchen")
        self.assertEqual(old.read(), ["* You joined kitchen. Here: no one else."])
        old.send("> > hello")
        self.assertEqual(old.read(), ["<oldtimer> > hello"])

    def test_badNameThenPrompted(self):
        old = self.connect()
        old.send("name: two words")
        old.read()
        old.send("> oldtimer")
        self.assertIn("* Welcome, oldtimer. You are in the Lobby. Commands:", old.read())

    def test_quitSendsHashQuit(self):
        old = self.connect()
        old.send("name: oldtimer")
        old.read()
        old.send("> quit")
        self.assertEqual(old.transport.value(), b"#quit")
        self.assertTrue(old.transport.disconnecting)

    def test_otherClientsUnaffected(self):
        nc = self.connect()
        nc.send("> bob")  # not a name: prefix, so "> " is not stripped
        self.assertTrue(nc.read()[1].startswith("! A screen name"))


def runTimersFirst(clock):
    """
    Run the timers that are due now, as the reactor does at the start of a
    turn, before it reads the sockets: what they schedule waits for the next.
    """
    due = [call for call in clock.calls if call.getTime() <= clock.seconds()]
    for call in due:
        clock.calls.remove(call)
        call.called = 1
        call.func(*call.args, **call.kw)


class StallTests(TestCase):
    """After the process was stopped (SIGSTOP) or starved, what waited is read first."""

    def test_idleTimeoutAfterAStallReadsFirst(self):
        lobby, connect = makeServer(idle_timeout=4)
        alice = connect("alice")
        alice.send("create kitchen")
        alice.read()
        lobby.clock.rightNow += 6  # stopped for 6 s; alice typed meanwhile
        runTimersFirst(lobby.clock)
        alice.protocol.dataReceived(b"typed during the stall\n")
        lobby.clock.advance(0)
        self.assertEqual(alice.read(), ["<alice> typed during the stall"])
        self.assertFalse(alice.transport.disconnecting)
        lobby.clock.advance(4)  # and silence is still found out afterwards
        self.assertEqual(alice.read(), [
            "* You were silent for 4 seconds. Closing the connection."])

    def test_loginTimeoutAfterAStallReadsFirst(self):
        lobby, connect = makeServer(login_timeout=5)
        bob = connect()
        bob.read()
        lobby.clock.rightNow += 6
        runTimersFirst(lobby.clock)
        bob.protocol.dataReceived(b"bob\n")
        lobby.clock.advance(0)
        self.assertIn("* Welcome, bob. You are in the Lobby. Commands:", bob.read())
        self.assertFalse(bob.transport.disconnecting)

    def test_heldConnectionIsNotSilent(self):
        """Lines that wait because the server paused reading are not silence."""
        lobby, connect = makeServer(idle_timeout=4, flood_rate=1, flood_burst=1)
        alice = connect("alice")
        alice.send("create kitchen")
        alice.send(b"".join(b"line %d\n" % n for n in range(10)))
        for _ in range(12):
            lobby.clock.advance(1)
        self.assertFalse(alice.transport.disconnecting)
        self.assertIn("<alice> line 9", alice.read())


class NewUserTests(TestCase):
    """What a new user ran into (issue: hardening)."""

    def setUp(self):
        self.lobby, self.connect = makeServer()

    def test_quitAtTheNamePrompt(self):
        for word in ["quit", "/quit", "QUIT"]:
            session = self.connect()
            session.read()
            session.send(word)
            self.assertEqual(session.read(), ["* Goodbye."])
            self.assertTrue(session.transport.disconnecting)
        self.assertEqual(self.lobby.names, {})

    def test_helpAtTheNamePrompt(self):
        session = self.connect()
        session.read()
        session.send("help")
        self.assertEqual(session.read(), [
            "* Type the screen name you want (1 to 20 letters, digits, _ or -) and press"
            " Enter, or press Enter alone to be a guest. Type quit to leave.",
            "* " + wording.NAME_PROMPT])
        session.send("ann")
        self.assertIn("* Welcome, ann. You are in the Lobby. Commands:", session.read())

    def test_quitIsToldApartFromALostConnection(self):
        ann, bob, cleo = self.connect("ann"), self.connect("bob"), self.connect("cleo")
        ann.send("create kitchen")
        bob.send("join kitchen")
        cleo.send("join kitchen")
        ann.read()
        bob.send("quit")
        self.assertEqual(ann.read(), ["* bob left kitchen (quit)"])  # at once
        bob.close()
        cleo.close()
        self.assertEqual(ann.read(), ["* cleo left kitchen (disconnected)"])

    def test_bareCommandWordGetsItsUsage(self):
        ann = self.connect("ann")
        ann.send("create")
        self.assertEqual(ann.read(), ["! Usage: create ROOM (create ROOM and move into it)."])
        ann.send("create kitchen")
        ann.read()
        ann.send("join")
        self.assertEqual(ann.read(), [
            "! Usage: join ROOM (join ROOM, leaving the room you are in;"
            " join ROOM KEY if it has a key)."])
        ann.send("join the party")  # still chat
        self.assertEqual(ann.read(), ["<ann> join the party"])

    def test_reservedRoomNames(self):
        ann = self.connect("ann")
        ann.send("create lobby")
        self.assertEqual(ann.read(), ["! lobby is not a room name you can use."
                                      " Choose another one."])
        for name in [".", "..", ".hidden", "-x"]:
            ann.send(f"create {name}")
            self.assertEqual(ann.read(), [
                "! A room name is 1 to 32 letters, digits, _, - or ., starting with a"
                " letter or digit."], name)
        self.assertEqual(self.lobby.rooms, {})

    def test_onlineFromInsideARoom(self):
        ann, bob = self.connect("ann"), self.connect("bob")
        ann.send("create kitchen")
        ann.read()
        ann.send("who")
        self.assertEqual(ann.read(), ["* In kitchen (1): ann."])
        ann.send("online")
        self.assertEqual(ann.read(), ["* Online (2):", "*   ann, bob"])

    def test_manyOnlineAreSeveralLines(self):
        lobby, connect = makeServer(max_clients=200)
        sessions = [connect(f"user{n:03}") for n in range(200)]
        sessions[0].send("online")
        lines = sessions[0].read()
        self.assertEqual(lines[0], "* Online (200):")
        names = ", ".join(line[4:] for line in lines[1:]).split(", ")
        self.assertEqual(names, [f"user{n:03}" for n in range(200)])
        self.assertTrue(all(len(line) < 500 for line in lines))

    def test_invalidUtf8BoundByMaxLineOnceReplaced(self):
        lobby, connect = makeServer(max_line=100)
        ann = connect("ann")
        ann.send("create kitchen")
        ann.read()
        ann.send(b"\xff" * 100 + b"\n")
        self.assertEqual(ann.read(), [
            "! That line is longer than 100 bytes once its invalid UTF-8 bytes are"
            " replaced (each by 3 bytes); it was discarded."])
        ann.send(b"ok \xff\n")
        self.assertEqual(ann.read(), ["<ann> ok \ufffd"])
        room = lobby.rooms["kitchen"]
        self.assertEqual([m.text for m in lobby.store.messages[room.id]], ["ok \ufffd"])


class ListTests(TestCase):
    def setUp(self):
        self.lobby, self.connect = makeServer(max_rooms=100_000, create_rate=0)
        self.ann = self.connect("ann")

    def test_busiestFirstThenByName(self):
        for name in ["attic", "cellar", "kitchen"]:
            self.ann.send(f"create {name}")
        self.ann.send("leave")
        for name, room in [("bob", "kitchen"), ("cleo", "kitchen"), ("dee", "cellar")]:
            self.connect(name).send(f"join {room}")
        self.ann.read()
        self.ann.send("list")
        self.assertEqual(self.ann.read(), [
            "* Rooms (3), busiest first:", "*   kitchen (2 users)", "*   cellar (1 user)",
            "*   attic (0 users)"])

    def test_pattern(self):
        for name in ["kitchen", "Kitchenette", "hall", "kit-bag"]:
            self.ann.send(f"create {name}")
        self.ann.read()
        self.ann.send("list KITCH")
        self.assertEqual(self.ann.read(), [
            "* Rooms matching KITCH, busiest first:", "*   kitchen (0 users)",
            "*   Kitchenette (0 users)", "* 2 rooms matching KITCH."])
        self.ann.send("list k*g")  # * and ? make a pattern of the whole name
        self.assertEqual(self.ann.read()[1:-1], ["*   kit-bag (1 user) <- you are here"])
        self.ann.send("list nothing")
        self.assertEqual(self.ann.read(), [
            "* Rooms matching nothing, busiest first:",
            "* No room matches nothing. Type list to see them all."])

    def addRooms(self, count):
        """Rooms straight into the Lobby, as a server with many would load them."""
        from chatsvc.rooms import Room
        from chatsvc.store import RoomRecord
        for n in range(count):
            self.lobby._addRoom(Room(RoomRecord(1000 + n, f"room{n:05}", 0.0)))

    def test_longListIsSentAsTheClientReads(self):
        self.addRooms(20_000)
        self.ann.send("list")
        self.ann.send("who")
        received = []
        for _ in range(500):
            more = self.ann.read()
            # Never more than the socket takes at once and one piece.
            self.assertLessEqual(len("\n".join(more)), 65536 + connection.PAGE_CHUNK + 100)
            received += more
            if more and more[-1].startswith("* Online"):
                break
        self.assertEqual(received[0], "* Rooms (20000), busiest first:")
        self.assertEqual(len(received), 20_002)
        self.assertEqual(received[-1], "* Online (1): ann. You are in the Lobby.")

    def test_oneTurnDoesBoundedWork(self):
        """A pattern that matches nothing passes over the rooms a piece at a time."""
        self.addRooms(20_000)
        self.ann.read()
        self.ann.protocol.dataReceived(b"list zzz\n")  # not through Session.send: no turn ends
        clock = self.lobby.clock
        turns = 0
        while clock.getDelayedCalls():
            runTimersFirst(clock)
            turns += 1
        self.assertGreaterEqual(turns, 20_000 // connection.PAGE_SCAN)
        self.assertEqual(self.ann.read()[-1],
                         "* No room matches zzz. Type list to see them all.")


class StoppingTests(TestCase):
    def setUp(self):
        self.lobby, self.connect = makeServer()
        self.ann, self.bob = self.connect("ann"), self.connect("bob")
        self.ann.send("create kitchen")
        self.bob.send("join kitchen")
        self.ann.read()
        self.bob.read()

    def test_everyoneIsToldAndWhatIsBeingStoredGoesFirst(self):
        self.lobby.store.holding = []
        self.ann.send("last words")
        stopped = self.lobby.stopService()
        self.ann.send("too late")
        self.assertEqual(self.ann.read(), [
            "! The server is stopping. Your message was not sent."])
        self.lobby.store.release()
        self.lobby.clock.advance(0)
        for session in (self.ann, self.bob):
            self.assertEqual(session.read(), [
                "<ann> last words", "* The server is stopping. Goodbye."])
            self.assertTrue(session.transport.disconnecting)
        self.assertNoResult(stopped)
        self.ann.close()
        self.bob.close()
        self.successResultOf(stopped)

    def test_stopDoesNotWaitForeverForThoseWhoStay(self):
        stopped = self.lobby.stopService()
        self.assertNoResult(stopped)
        self.lobby.clock.advance(5)
        self.successResultOf(stopped)

    def test_floodingAtTheNamePromptDoesNotDodgeTheLoginTimeout(self):
        lobby, connect = makeServer(login_timeout=5, flood_rate=1, flood_burst=1)
        lurker = connect()
        lurker.send(b"!\n" * 100)  # invalid names, faster than it may send
        for _ in range(10):
            lobby.clock.advance(1)
        self.assertTrue(lurker.transport.disconnecting)
        self.assertIn("! You did not choose a screen name within 5 seconds. Goodbye.",
                      lurker.read())

    def test_notReadingWhatIsPacedIsSilence(self):
        """A client that asked for a long page and never reads it is not excused."""
        lobby, connect = makeServer(idle_timeout=60, history_replay=50)
        ann = connect("ann")
        ann.send("create kitchen")
        for n in range(50):
            ann.send(f"{n:02} " + "x" * 2000)
        ann.read()
        bob = connect("bob")
        bob.send("join kitchen")  # 100 KB of replay; bob reads none of it
        for _ in range(70):
            lobby.clock.advance(1)
        self.assertTrue(bob.transport.disconnecting)

"""
The IRC door end to end: the real server process on loopback, an IRC client
(raw lines) and a native client in one room; and a kill -9 that loses no
message either door acknowledged.
"""

from twisted.internet import defer, endpoints, reactor
from twisted.trial.unittest import TestCase

from chatsvc.doors.irc.message import parse
from tests.e2e import LOOPBACK, LineClient, ServerProcessTests, source

CAPS = "server-time message-tags echo-message batch labeled-response draft/chathistory"


class IrcClient(LineClient):
    delimiter = b"\r\n"

    def send(self, line):
        self.transport.write(line.encode("utf-8") + b"\r\n")

    def lineReceived(self, line):
        if line.startswith(b"PING "):  # the server checks idle clients are still there
            self.send("PONG " + line[5:].decode("utf-8"))
        super().lineReceived(line)

    def command(self, *words):
        """Wait for a line whose command (and first parameters) are C{words}."""
        def match(line):
            m = parse(line)
            return [m.command, *m.params][:len(words)] == list(words)
        return self.waitFor(match)


class IrcServerTests(ServerProcessTests):
    """The real server with its IRC door, and IRC clients of it."""

    @defer.inlineCallbacks
    def startServer(self, *options):
        server, _ = yield super().startServer(
            "--irc", LOOPBACK, "--irc-server-name", "irc.test", "--flood-rate", "0",
            "--history-replay", "5", *options)
        native, irc = yield server.listening(2)
        return server, native, irc

    @defer.inlineCallbacks
    def ircConnect(self, port, nick, caps=CAPS):
        endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port,
                                                bindAddress=(source(), 0))
        client = yield endpoints.connectProtocol(endpoint, IrcClient())
        self.clients.append(client)
        if caps:
            client.send("CAP LS 302")
            client.send(f"CAP REQ :{caps}")
        client.send(f"NICK {nick}")
        client.send(f"USER {nick} 0 * :{nick} on IRC")
        if caps:
            client.send("CAP END")
        yield client.command("376")  # the end of the MOTD: registered
        return client


class IrcEndToEndTests(IrcServerTests, TestCase):
    @defer.inlineCallbacks
    def test_bothDoorsInOneRoom(self):
        server, nativePort, ircPort = yield self.startServer()
        bob = yield self.connect(nativePort, "bob")
        bob.send("create kitchen")
        yield bob.waitFor("* You joined kitchen.")
        for n in range(8):
            bob.send(f"said before alice came {n}")
        yield bob.waitFor("<bob> said before alice came 7")

        alice = yield self.ircConnect(ircPort, "alice")
        alice.send("JOIN #kitchen")
        joined = yield alice.command("366", "alice", "#kitchen")
        self.assertEqual(parse(joined[0]).command, "JOIN")
        yield bob.waitFor("* alice joined kitchen")
        # The join replays the newest (--history-replay 5) in a batch ...
        replay = yield alice.command("BATCH")
        replay = yield alice.command("BATCH")
        self.assertEqual([parse(line).params[1] for line in replay[:-1]],
                         [f"said before alice came {n}" for n in range(3, 8)])
        # ... and CHATHISTORY pages back through the rest, from the store.
        alice.send("CHATHISTORY BEFORE #kitchen msgid="
                   + parse(replay[0]).tags["msgid"] + " 10")
        yield alice.command("BATCH")
        page = yield alice.command("BATCH")
        self.assertEqual([parse(line).params[1] for line in page[:-1]],
                         [f"said before alice came {n}" for n in range(3)])

        # Messages both ways; alice's echo is her acknowledgement.
        alice.send("PRIVMSG #kitchen :hello from IRC")
        echo = yield alice.command("PRIVMSG", "#kitchen")
        self.assertEqual(parse(echo[-1]).params[1], "hello from IRC")
        yield bob.waitFor("<alice> hello from IRC")
        bob.send("hello from nc")
        said = yield alice.command("PRIVMSG", "#kitchen")
        self.assertTrue(parse(said[-1]).source.startswith("bob!"))

        # Private messages both ways.
        alice.send("PRIVMSG bob :just you")
        yield bob.waitFor("<- alice: just you")
        bob.send("msg alice and you")
        private = yield alice.command("PRIVMSG", "alice")
        self.assertEqual(parse(private[-1]).params[1], "and you")

        # Names and lists see both doors.
        alice.send("NAMES #kitchen")
        names = yield alice.command("353")
        self.assertEqual(parse(names[-1]).params[-1].split(), ["@bob", "alice"])
        alice.send("LIST")
        listed = yield alice.command("323")
        self.assertIn(["alice", "#kitchen", "2", ""],
                      [parse(line).params for line in listed if parse(line).command == "322"])

        # Leaving and quitting, seen from the other door.
        bob.send("leave")
        part = yield alice.command("PART", "#kitchen")
        self.assertTrue(parse(part[-1]).source.startswith("bob!"))
        bob.send("join kitchen")
        yield alice.command("JOIN", "#kitchen")
        alice.send("PART #kitchen :brb")
        yield bob.waitFor("* alice left kitchen: brb")
        alice.send("JOIN #kitchen")
        yield bob.waitFor("* alice joined kitchen")
        bob.send("quit")
        quit = yield alice.command("QUIT")
        self.assertTrue(parse(quit[-1]).source.startswith("bob!"))
        alice.send("QUIT :bye")
        yield alice.command("ERROR")
        yield alice.closed

    @defer.inlineCallbacks
    def test_kill9LosesNothingEitherDoorAcknowledged(self):
        server, nativePort, ircPort = yield self.startServer()
        bob = yield self.connect(nativePort, "bob")
        bob.send("create kitchen")
        yield bob.waitFor("* You joined kitchen.")
        alice = yield self.ircConnect(ircPort, "alice")
        alice.send("JOIN #kitchen")
        yield alice.command("366")
        for n in range(40):
            alice.send(f"PRIVMSG #kitchen :a{n}")
            bob.send(f"b{n}")
        yield bob.waitFor("<bob> b39")
        for last in ("PRIVMSG #kitchen a39", "PRIVMSG #kitchen b39"):  # both seen by alice
            if not any(line.endswith(last) for line in alice.lines):
                yield alice.waitFor(lambda line, last=last: line.endswith(last))
        for n in range(40, 120):  # in flight when the server dies: kept or not
            alice.send(f"PRIVMSG #kitchen :a{n}")
        acknowledged = [f"<{parse(line).source.split('!')[0]}> {parse(line).params[1]}"
                        for line in alice.lines if parse(line).command == "PRIVMSG"]
        yield server.kill()
        yield defer.gatherResults([alice.closed, bob.closed])

        server, nativePort, ircPort = yield self.startServer()
        carol = yield self.ircConnect(ircPort, "carol")
        carol.send("JOIN #kitchen")
        yield carol.command("366")
        yield carol.command("BATCH")  # the join's replay: its start ...
        yield carol.command("BATCH")  # ... and its end
        carol.send("CHATHISTORY LATEST #kitchen * 500")
        yield carol.command("BATCH")
        page = yield carol.command("BATCH")
        history = [f"<{parse(line).source.split('!')[0]}> {parse(line).params[1]}"
                   for line in page if parse(line).command == "PRIVMSG"]
        # Everything acknowledged (the echoes alice saw, bob's lines among
        # them in the order delivered) is kept, in that order ...
        self.assertEqual(history[:len(acknowledged)], acknowledged)
        # ... and after it only alice's later lines, in order, none twice.
        rest = history[len(acknowledged):]
        self.assertEqual(rest, [f"<alice> a{n}" for n in range(40, 40 + len(rest))])

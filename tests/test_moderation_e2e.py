"""
Accounts and how rooms are run are durable like history: what the server
acknowledged survives `kill -9` of the real process.
"""

import base64

from twisted.internet import defer, endpoints, reactor
from twisted.trial.unittest import TestCase

from chatsvc.doors.irc.message import parse
from tests.e2e import source
from tests.test_irc_e2e import IrcClient, IrcServerTests


class ModerationKill9Tests(IrcServerTests, TestCase):
    @defer.inlineCallbacks
    def saslConnect(self, port, nick, password):
        endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port,
                                                bindAddress=(source(), 0))
        client = yield endpoints.connectProtocol(endpoint, IrcClient())
        self.clients.append(client)
        client.send("CAP REQ :sasl")
        client.send(f"NICK {nick}")
        client.send(f"USER {nick} 0 * :{nick}")
        client.send("AUTHENTICATE PLAIN")
        client.send("AUTHENTICATE " + base64.b64encode(
            f"{nick}\0{nick}\0{password}".encode()).decode())
        client.send("CAP END")
        yield client.command("376")
        return client

    @defer.inlineCallbacks
    def test_accountsTopicsAndBansSurviveKill9(self):
        server, nativePort, ircPort = yield self.startServer()
        alice = yield self.ircConnect(ircPort, "alice")
        alice.send("REGISTER * * open-sesame")
        yield alice.command("REGISTER", "SUCCESS")
        alice.send("JOIN #kitchen")
        yield alice.command("366")
        alice.send("TOPIC #kitchen :Soup on Fridays")
        yield alice.command("TOPIC")  # its echo: it is stored
        alice.send("MODE #kitchen +b troll!*@*")
        yield alice.command("MODE", "#kitchen", "+b")
        yield server.kill()
        yield alice.closed

        server, nativePort, ircPort = yield self.startServer()
        troll = yield self.ircConnect(ircPort, "troll", caps="")
        troll.send("JOIN #kitchen")
        yield troll.command("474", "troll", "#kitchen")
        carol = yield self.ircConnect(ircPort, "carol", caps="")
        carol.send("JOIN #kitchen")
        topic = yield carol.command("332")
        self.assertEqual(parse(topic[-1]).params, ["carol", "#kitchen", "Soup on Fridays"])
        # alice's name is still hers: a guest cannot take it; her password signs her in.
        carol.send("NICK alice")
        refused = yield carol.command("433")
        self.assertIn("alice is a registered name", refused[-1])
        again = yield self.saslConnect(ircPort, "alice", "open-sesame")
        self.assertIn("903", [parse(line).command for line in again.lines])
        again.send("JOIN #kitchen")
        names = yield again.command("353")
        self.assertIn("@alice", parse(names[-1]).params[-1].split())  # its owner runs it

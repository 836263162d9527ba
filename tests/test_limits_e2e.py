"""
End to end, over the real `twistd chatroom` process with its default limits:
one person with a script, from one address, cannot keep out or slow down
people from other addresses (Linux routes all of 127.0.0.0/8 to loopback, so
each test client binds an address of its own). And SIGTERM says goodbye.
"""

import signal

from twisted.internet import defer, endpoints, reactor
from twisted.trial.unittest import TestCase

from tests.e2e import LineClient, ServerProcessTests

HOME = "127.0.0.2"  # the one with the script


class _Door(ServerProcessTests):
    """The real server, and people connecting from addresses of their own (or C{host})."""

    @defer.inlineCallbacks
    def start(self, *options):
        self.server, self.port = yield self.startServer(*options)

    def person(self, name=None, host=None):
        return self.connect(self.port, name, host)

    @defer.inlineCallbacks
    def attempt(self, host):
        """A connection from C{host}, and the first line the server sends it."""
        endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", self.port,
                                                bindAddress=(host, 0))
        client = yield endpoints.connectProtocol(endpoint, LineClient())
        self.clients.append(client)
        (first,) = yield client.waitFor(lambda line: True)
        return client, first


class PerAddressTests(_Door, TestCase):
    @defer.inlineCallbacks
    def test_oneAddressCannotFillTheServer(self):
        yield self.start()
        for n in range(3):
            yield self.person(f"script{n}", host=HOME)
        refused, line = yield self.attempt(HOME)
        self.assertEqual(line, "! There are 3 connections from your address already, the"
                               " most allowed. Close one, or ask the operator to exempt"
                               " your address.")
        yield refused.closed
        # The default server's other seven places are everyone else's.
        for n in range(7):
            yield self.person(f"person{n}")
        full, line = yield self.attempt("127.0.0.9")
        self.assertTrue(line.startswith("! The server is full"), line)

    @defer.inlineCallbacks
    def test_silentConnectionsCannotEvictAPersonTyping(self):
        yield self.start()
        typing, _ = yield self.attempt("127.0.0.3")  # takes a while to choose a name
        outcomes = []
        for _ in range(20):
            client, line = yield self.attempt(HOME)
            outcomes.append(line)
        # Two choose-a-name places for the address, then refusals: nobody else made way.
        self.assertEqual(outcomes[:2], ["* Welcome to chatsvc! Enter your screen name:"] * 2)
        self.assertTrue(all(line.startswith("! ") for line in outcomes[2:]), outcomes)
        typing.send("carol")
        yield typing.waitFor("* Welcome, carol.")

    @defer.inlineCallbacks
    def test_reconnectingGetsNoFreshBurst(self):
        yield self.start()
        watcher = yield self.person("watcher")
        watcher.send("create kitchen")
        yield watcher.waitFor("* You joined kitchen.")
        flooder = yield self.person("flood1", host=HOME)
        flooder.send("join kitchen")
        for n in range(30):
            flooder.send(f"burst {n}")
        yield watcher.waitFor("<flood1> burst 7")  # the burst of 10 with its name and join
        yield flooder.bye()
        again, _ = yield self.attempt(HOME)
        again.send("flood2")
        # Its very first line is paced: the address spent its burst already.
        (told,) = yield again.waitFor(lambda line: "more slowly" in line)
        self.assertTrue(told.startswith("* You are sending more than 5 lines a second"), told)
        # ... and nothing the first connection sent was lost.
        yield watcher.waitFor("<flood1> burst 29")

    @defer.inlineCallbacks
    def test_roomSpammerIsBounded(self):
        yield self.start()
        spammer = yield self.person("spam1", host=HOME)
        for n in range(5):
            spammer.send(f"create spam{n}")
            yield spammer.waitFor(f"* You joined spam{n}.")
        spammer.send("create spam5")
        (refusal,) = yield spammer.waitFor("!")
        self.assertTrue(refusal.startswith("! Your address has created rooms too often."),
                        refusal)
        yield spammer.bye()
        again = yield self.person("spam2", host=HOME)
        again.send("create spam6")
        (refusal,) = yield again.waitFor("!")
        self.assertTrue(refusal.startswith("! Your address has created rooms too often."))
        other = yield self.person("dee")
        other.send("create garden")
        yield other.waitFor("* You joined garden.")
        other.send("list spam")
        lines = yield other.waitFor("* 5 rooms matching spam.")
        self.assertEqual(len(lines), 7)

    @defer.inlineCallbacks
    def test_exemptAddressIsNotLimited(self):
        yield self.start("--exempt", HOME, "--max-clients", "20")
        for n in range(8):
            yield self.person(f"bouncer{n}", host=HOME)


class StoppingTests(_Door, TestCase):
    @defer.inlineCallbacks
    def test_sigtermSaysGoodbyeAfterStoringWhatWasSaid(self):
        yield self.start("--flood-rate", "0")
        ann = yield self.person("ann")
        bob = yield self.person("bob")
        ann.send("create kitchen")
        yield ann.waitFor("* You joined kitchen.")
        bob.send("join kitchen")
        yield bob.waitFor("* You joined kitchen.")
        for n in range(50):
            ann.send(f"line {n}")
        yield ann.waitFor("<ann> line 0")
        self.server.transport.signalProcess(signal.SIGTERM)
        seen = yield ann.waitFor("* The server is stopping. Goodbye.")
        echoed = [line for line in seen if line.startswith("<ann> ")]
        heard = yield bob.waitFor("* The server is stopping. Goodbye.")
        self.assertEqual([line for line in heard if line.startswith("<ann> ")][-len(echoed):],
                         echoed)
        yield defer.gatherResults([ann.closed, bob.closed])
        yield self.server.ended  # twistd ends by the signal it was stopped with
        self.assertTrue(any("Server Shut Down." in line for line in self.server.output))
        # Everything echoed was stored: it is all there after a restart.
        yield self.start()
        cleo = yield self.person("cleo")
        cleo.send("join kitchen")
        cleo.send("history 500")
        cleo.send("who")
        lines = yield cleo.waitFor("* In kitchen")
        stored = [line.split("] ", 1)[1] for line in lines if line.startswith("[")]
        for line in echoed:
            self.assertIn(line, stored)

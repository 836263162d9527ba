"""
Two real servers, one chat: `twistd chatroom` twice on one PostgreSQL
database (of the test's own) and one Redis (a redis-server of the test's own
on a spare port), a native client on each. A room created on one is joined
on the other, and both servers deliver every message in the same order,
once; what Redis lost while it was restarted is filled from PostgreSQL.
"""

import psycopg
from twisted.internet import defer, endpoints, reactor
from twisted.trial.unittest import TestCase

from chatsvc.elsewhere import GONE
from tests.cluster import ClusterProcessTests
from tests.e2e import LineClient


class TwoNodesTests(ClusterProcessTests, TestCase):
    @defer.inlineCallbacks
    def inKitchen(self, portA, portB):
        """alice on a, who made kitchen, and bob on b, who joined it: each knows of the other."""
        alice = yield self.connect(portA, "alice")
        bob = yield self.connect(portB, "bob")
        alice.send("create kitchen")
        yield alice.waitFor("* You joined kitchen.")
        bob.send("join kitchen")
        yield self.knowsOf(bob, "alice")
        yield alice.waitFor("* bob joined kitchen")
        return alice, bob

    def knowsOf(self, client, name):
        """
        Wait until C{client}, just joined, is told C{name} is in its room: in
        the join's "Here:" if its server had heard, or as a join after it.
        """
        return client.waitFor(lambda line: (line.startswith("* You joined") and
                                             name in line.partition("Here:")[2]) or
                              line.startswith(f"* {name} joined"))

    def said(self, client):
        return [line for line in client.lines if line.startswith("<")]

    def saidCount(self, client, count):
        """Wait until C{client} has been sent C{count} messages."""
        return client.waitFor(lambda line: len(self.said(client)) >= count)

    @defer.inlineCallbacks
    def test_oneChatOnTwoServers(self):
        (_, portA), (_, portB) = yield defer.gatherResults([self.node(), self.node()])
        alice, bob = yield self.inKitchen(portA, portB)
        for n in range(20):
            alice.send(f"a{n}")
            bob.send(f"b{n}")
        for client in (alice, bob):
            yield self.saidCount(client, 40)
        self.assertEqual(sorted(self.said(alice)), sorted(self.said(bob)))
        self.assertEqual(len(self.said(alice)), 40)
        self.assertEqual(self.said(alice), self.said(bob))  # one order, the seqs'

    @defer.inlineCallbacks
    def test_whatRedisLostIsFilledFromPostgres(self):
        (_, portA), (_, portB) = yield defer.gatherResults([self.node(), self.node()])
        alice, bob = yield self.inKitchen(portA, portB)
        yield self.redis.kill()
        for n in range(5):  # stored, and published to a Redis that is not there
            alice.send(f"while-down-{n}")
        yield alice.waitFor("<alice> while-down-4")
        yield bob.waitFor("<alice> while-down-4")  # the position check found them
        yield self.redis.start()
        alice.send("after")
        yield bob.waitFor("<alice> after")
        self.assertEqual(self.said(bob), self.said(alice))

    @defer.inlineCallbacks
    def notYours(self, port, name):
        """Ask for C{name} on the server at C{port}: refused, whatever that server knew."""
        other = yield self.connect(port)
        other.send(name)
        # At once if that server has heard it is held elsewhere; else once
        # the database says so (a name is welcomed only once it is claimed).
        seen = yield other.waitFor(lambda line: line.startswith(("! The name", "* Welcome,")))
        self.assertEqual(seen[-1], f"! The name {name} is taken. Choose another one.")

    @defer.inlineCallbacks
    def test_aNameIsOneServersAtATime(self):
        (_, portA), (_, portB) = yield defer.gatherResults([self.node(), self.node()])
        alice = yield self.connect(portA, "alice")
        yield self.notYours(portB, "alice")
        self.assertIn("* Welcome, alice.", "\n".join(alice.lines))  # still hers on a

    @defer.inlineCallbacks
    def test_onlineIsEveryServers(self):
        (_, portA), (serverB, portB) = yield defer.gatherResults([self.node(), self.node()])
        yield self.connect(portA, "alice")
        bob = yield self.connect(portB, "bob")
        yield self.notYours(portB, "alice")  # b knows of alice now
        bob.send("online")
        listed = yield bob.waitFor(lambda line: line.startswith("*   ") and "bob" in line)
        self.assertEqual(listed[-2:], ["* Online (2):", "*   alice, bob"])

    @defer.inlineCallbacks
    def test_aKilledServersNamesAreFreed(self):
        (serverA, portA), (serverB, portB) = yield defer.gatherResults(
            [self.node(), self.node()])
        alice = yield self.connect(portA, "alice")
        yield self.notYours(portB, "alice")  # the database holds it for a
        freed = serverB.logged("Freed 1 names held by servers gone silent")
        yield serverA.kill()
        yield alice.closed
        yield freed  # within --cluster-ttl and a beat
        again = yield self.connect(portB, "alice")
        self.assertIn("* Welcome, alice.", "\n".join(again.lines))

    @defer.inlineCallbacks
    def registered(self, portA, serverB):
        """alice on a, who registered her name, once b has heard of her account."""
        heard = serverB.logged("1 accounts registered or changed on other servers")
        alice = yield self.connect(portA, "alice")
        alice.send("register open-sesame")
        yield alice.waitFor("* The name alice is registered to you")
        yield heard
        return alice

    @defer.inlineCallbacks
    def test_anAccountIsEveryServers(self):
        (_, portA), (serverB, portB) = yield defer.gatherResults([self.node(), self.node()])
        alice = yield self.registered(portA, serverB)
        yield alice.bye()
        other = yield self.connect(portB)
        other.send("alice")
        yield other.waitFor("! alice is a registered name.")
        other.send("identify open-sesame")
        yield other.waitFor("* You are signed in to alice.")

    @defer.inlineCallbacks
    def test_anAddressBanHoldsOnEveryServer(self):
        (_, portA), (_, portB) = yield defer.gatherResults(
            [self.node("--operator", "root"), self.node("--operator", "root")])
        root = yield self.connect(portA, "root")
        root.send("register open-sesame")
        yield root.waitFor("* The name root is registered to you")
        carol = yield self.connect(portB, "carol")
        address = carol.transport.getHost().host
        root.send(f"banaddress {address} spam")
        yield root.waitFor(f"* The address {address} is banned from the server")
        yield carol.waitFor("! Your address is banned from this server: spam")
        yield carol.closed
        endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", portB,
                                                bindAddress=(address, 0))
        again = yield endpoints.connectProtocol(endpoint, LineClient())
        yield again.closed
        self.assertEqual(again.lines, ["! Your address is banned from this server: spam"])

    @defer.inlineCallbacks
    def test_anOwnerTakesTheirNameBackFromAnotherServer(self):
        (_, portA), (serverB, portB) = yield defer.gatherResults([self.node(), self.node()])
        alice = yield self.registered(portA, serverB)
        owner = yield self.connect(portB)  # alice again, on her phone, on b
        owner.send("alice")
        yield owner.waitFor("! alice is a registered name.")
        owner.send("identify open-sesame")
        yield owner.waitFor("* You are signed in to alice.")
        yield alice.closed
        self.assertIn("The owner of this name signed in elsewhere", alice.lines[-1])
        with psycopg.connect(self.url) as connection:  # the database holds it for b alone
            self.assertEqual(connection.execute(
                "SELECT count(*) FROM presence p JOIN nodes n USING (node)"
                " WHERE p.key = 'alice'").fetchone(), (1,))
        owner.send("online")
        yield owner.waitFor("* Online (1):")
        listed = yield owner.waitFor("*   ")
        self.assertEqual(listed, ["*   alice"])

    @defer.inlineCallbacks
    def test_privateMessagesReachAnotherServer(self):
        (_, portA), (_, portB) = yield defer.gatherResults([self.node(), self.node()])
        alice = yield self.connect(portA, "alice")
        bob = yield self.connect(portB, "bob")
        yield self.notYours(portB, "alice")  # b knows of alice now
        bob.send("msg alice hello from b")
        yield bob.waitFor("-> alice: hello from b")
        yield alice.waitFor("<- bob: hello from b")

    @defer.inlineCallbacks
    def test_whoIsInARoomIsEveryServers(self):
        (_, portA), (serverB, portB) = yield defer.gatherResults([self.node(), self.node()])
        alice, bob = yield self.inKitchen(portA, portB)
        bob.send("who")
        yield bob.waitFor("* In kitchen (2): bob, alice.")
        alice.send("list")
        yield alice.waitFor("*   kitchen (2 users) <- you are here")
        # A server killed: its users quit on every other, once it is reaped.
        yield serverB.kill()
        yield alice.waitFor(f"* bob left kitchen (disconnected): {GONE}")
        alice.send("who")
        yield alice.waitFor("* In kitchen (1): alice.")

    @defer.inlineCallbacks
    def test_whatRedisLostOfPeopleIsPutRightFromPostgres(self):
        (_, portA), (_, portB) = yield defer.gatherResults([self.node(), self.node()])
        alice, bob = yield self.inKitchen(portA, portB)
        yield self.redis.kill()
        carol = yield self.connect(portB, "carol")
        carol.send("join kitchen")
        yield carol.waitFor("* You joined kitchen. Here: ")
        self.assertIn("alice", carol.lines[-1])
        yield alice.waitFor("* carol joined kitchen")  # at a's next heartbeat, from PostgreSQL
        yield self.redis.start()
        carol.send("leave")
        yield alice.waitFor("* carol left kitchen")

"""
Message conservation under load, across faults: three real servers
(`twistd chatroom`) on one PostgreSQL database of the test's own and one
redis-server of the test's own (on a spare port), several senders on each
sending numbered messages as fast as the protocol lets them (a window of
messages not yet echoed), receivers on each; meanwhile one server is killed
(kill -9) and Redis is killed and started again.

Then PostgreSQL holds every acknowledged message (one whose echo reached its
sender: committed) exactly once, each room's seqs are 1..n with no gap, and
every client of the servers that survived was sent every message of its room
once, in the order of the seqs.

Needs PostgreSQL (CHATSVC_TEST_POSTGRES) and redis-server: without them it
skips, except under CI=true, where it fails.
"""

import re
from collections import Counter

from twisted.internet import defer, endpoints, reactor
from twisted.trial.unittest import TestCase

from tests.cluster import ClusterProcessTests
from tests.e2e import LineClient, source
from tests.test_store_contract import psycopg

SAID = re.compile(r"<([^>\s]+)> (.*)")


class Conditions:
    """
    Deferreds that fire once a condition holds, checked whenever a client
    hears something; each fails with what it waited for if it has not held
    within C{timeout} seconds (generous: a check of state, not of speed).
    """

    def __init__(self, timeout=25.0):
        self.timeout = timeout
        self._waiting = []

    def until(self, predicate, what):
        d = defer.Deferred()
        entry = (predicate, d)

        def expired():
            if entry in self._waiting:
                self._waiting.remove(entry)
                d.errback(AssertionError(f"still not true after {self.timeout} s: {what()}"))
        timer = reactor.callLater(self.timeout, expired)
        d.addBoth(lambda result: (timer.active() and timer.cancel(), result)[1])
        self._waiting.append(entry)
        self.check()
        return d

    def check(self):
        for entry in list(self._waiting):
            predicate, d = entry
            if predicate() and entry in self._waiting:
                self._waiting.remove(entry)
                d.callback(None)


class Participant(LineClient):
    """
    A client in one room that records the messages it is sent live, as
    (sender, text) in the order sent; as a sender it keeps up to C{window}
    of its own numbered messages unacknowledged, sending the next as soon
    as one is echoed.
    """

    def __init__(self, conditions, name, room, window=0):
        super().__init__()
        self.conditions = conditions
        self.name, self.room, self.window = name, room, window
        self.said = []  # (sender, text) of every live message, in order
        self.errors = []  # the "! " lines after joining
        self.sent = 0  # numbered messages sent: m0 .. m<sent-1>
        self.acked = []  # the numbers echoed, in order
        self.outstanding = 0  # sent, neither echoed nor refused
        self.sending = False
        self.joined = False

    def lineReceived(self, line):
        super().lineReceived(line)
        text = self.lines[-1]
        if self.joined:
            said = SAID.fullmatch(text)
            if said:
                self.said.append(said.groups())
                if said.group(1) == self.name and said.group(2).startswith("m"):
                    self.acked.append(int(said.group(2)[1:]))
                    self.outstanding -= 1
                    self.fill()
            elif text.startswith("! "):
                self.errors.append(text)
                self.outstanding -= 1  # a refusal answers one of ours
                self.fill()
        self.conditions.check()

    def start(self):
        self.sending = True
        self.fill()

    def stop(self):
        """Send nothing more; fires once every message sent is answered."""
        self.sending = False
        return self.conditions.until(
            lambda: self.outstanding <= 0,
            lambda: f"{self.name}: {self.outstanding} messages never answered")

    def fill(self):
        while self.sending and self.outstanding < self.window and self.transport.connected:
            self.send(f"m{self.sent}")
            self.sent += 1
            self.outstanding += 1


@defer.inlineCallbacks
def participant(conditions, port, name, room, window=0, create=False):
    """A L{Participant} named C{name} on the server at C{port}, in C{room} (made, if C{create})."""
    endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port,
                                            bindAddress=(source(), 0))
    client = yield endpoints.connectProtocol(endpoint, Participant(conditions, name, room, window))
    try:
        yield client.waitFor("* Welcome to chatsvc! Enter your screen name:")
        client.send(name)
        yield client.waitFor("*   Anything else you type")
        client.send(f"{'create' if create else 'join'} {room}")
        yield client.waitFor(f"* You joined {room}.")
    except BaseException:
        client.transport.loseConnection()
        raise
    client.joined = True
    return client


class ConservationTests(ClusterProcessTests, TestCase):
    timeout = 90  # a bound for a hang; the run takes well under 30 s

    NODES = 3
    ROOMS = ("kitchen", "garden")
    SENDERS = 2  # per node and room
    WINDOW = 8  # messages each sender keeps unacknowledged
    PHASE = 1000  # acknowledged messages between one event and the next

    @defer.inlineCallbacks
    def setUp(self):
        yield ClusterProcessTests.setUp(self)
        self.conditions = Conditions()

    @defer.inlineCallbacks
    def participant(self, port, name, room, window=0, create=False):
        client = yield participant(self.conditions, port, name, room, window, create)
        self.clients.append(client)
        return client

    def ackedInAll(self):
        return sum(len(s.acked) for s in self.senders)

    def moreAcked(self, count):
        """Fires once C{count} more messages have been acknowledged, all senders together."""
        target = self.ackedInAll() + count
        return self.conditions.until(
            lambda: self.ackedInAll() >= target,
            lambda: f"{self.ackedInAll()} of {target} acknowledged;"
                    f" refused: {[e for s in self.senders for e in s.errors][:3]}")

    def heardFromElsewhere(self, clients, servers):
        """
        Fires once each of C{clients} has been sent a message that a sender
        on another server (C{servers}: client -> its server) had not yet
        sent when this was called.
        """
        unsent = {s.name: s.sent for s in self.senders}
        serverOf = {c.name: servers[c] for c in servers}
        scanned = {c: len(c.said) for c in clients}
        heard = set()

        def check():
            for client in clients:
                while client not in heard and scanned[client] < len(client.said):
                    sender, text = client.said[scanned[client]]
                    scanned[client] += 1
                    if (serverOf[sender] != servers[client] and text.startswith("m")
                            and int(text[1:]) >= unsent[sender]):
                        heard.add(client)
            return len(heard) == len(clients)
        return self.conditions.until(check, lambda: "not heard from another server: "
                                     + ", ".join(c.name for c in clients if c not in heard))

    def stored(self):
        """Each room's messages in PostgreSQL: name -> [(seq, sender, text)] in seq order."""
        with psycopg.connect(self.url) as connection:
            rooms = dict(connection.execute("SELECT name, id FROM rooms").fetchall())
            lasts = dict(connection.execute("SELECT name, last_seq FROM rooms").fetchall())
            stored = {}
            for name in self.ROOMS:
                stored[name] = [tuple(row) for row in connection.execute(
                    "SELECT seq, sender, text FROM messages WHERE room_id = %s ORDER BY seq",
                    (rooms[name],))]
        return stored, lasts

    @defer.inlineCallbacks
    def test_everyAcknowledgedMessageOnceInOrder(self):
        servers = yield defer.gatherResults([self.node() for _ in range(self.NODES)])
        ports = [port for _, port in servers]
        receivers = {}  # every client -> the index of its server
        self.senders = []
        for index, port in enumerate(ports):
            for room in self.ROOMS:
                # Only listening; on the first server, the room's creator.
                receiver = yield self.participant(port, f"r{index}{room[0]}", room,
                                                  create=not index)
                receivers[receiver] = index
                for n in range(self.SENDERS):
                    sender = yield self.participant(port, f"s{index}{room[0]}{n}", room,
                                                    window=self.WINDOW)
                    receivers[sender] = index
                    self.senders.append(sender)

        victim, victimServer = len(ports) - 1, servers[-1][0]
        for sender in self.senders:
            sender.start()
        yield self.moreAcked(self.PHASE)
        # A server dies with messages in flight: its senders' unacknowledged ones
        # may or may not have been stored, but whatever was stored goes to everyone.
        inFlight = sum(s.outstanding for s in self.senders if receivers[s] == victim)
        yield victimServer.kill()
        gone = [c for c, index in receivers.items() if index == victim]
        yield defer.gatherResults([c.closed for c in gone])
        yield self.moreAcked(self.PHASE)
        survivors = [c for c, index in receivers.items() if index != victim]
        alive = [server for server, _ in servers if server is not victimServer]
        # What is published while Redis is down is lost: the servers find it in
        # PostgreSQL (a hole seen when they store one of their own, and each
        # second the last seq of every room).
        lost = [server.logged("Bus lost Redis at") for server in alive]
        yield self.redis.kill()
        yield defer.gatherResults(lost + [self.moreAcked(self.PHASE)])
        yield self.heardFromElsewhere(survivors, receivers)
        # Started again: each server reconnects, subscribes again and catches up.
        back = [server.logged("Bus connected to Redis at") for server in alive]
        yield self.redis.start()
        yield defer.gatherResults(back + [self.moreAcked(self.PHASE)])
        yield self.heardFromElsewhere(survivors, receivers)
        yield defer.gatherResults([s.stop() for s in self.senders if receivers[s] != victim])

        stored, lasts = self.stored()
        for room in self.ROOMS:
            count = len(stored[room])
            for client in (c for c in survivors if c.room == room):
                yield self.conditions.until(
                    lambda: len(client.said) >= count,
                    lambda: f"{client.name} was sent {len(client.said)} of the {count}"
                            f" messages of {room}")

        # PostgreSQL: per room, seqs 1..n with no gap, each message once.
        for room in self.ROOMS:
            seqs = [seq for seq, _, _ in stored[room]]
            self.assertEqual(seqs, list(range(1, len(seqs) + 1)), f"the seqs of {room}")
            self.assertEqual(lasts[room], len(seqs), f"the last seq of {room}")
        everything = [(sender, text) for room in self.ROOMS for _, sender, text in stored[room]]
        twice = [m for m, times in Counter(everything).items() if times > 1]
        self.assertEqual(twice, [], "messages stored more than once")
        # Every acknowledged message is there; a survivor's, every one it sent.
        for sender in self.senders:
            mine = [int(text[1:]) for _, name, text in stored[sender.room]
                    if name == sender.name]
            self.assertEqual(sorted(set(sender.acked) - set(mine)), [],
                             f"messages of {sender.name} acknowledged but not stored")
            self.assertEqual(mine, sorted(mine), f"{sender.name}'s messages out of order")
            if receivers[sender] != victim:
                self.assertEqual(sender.errors, [], f"{sender.name} was refused")
                self.assertEqual(mine, list(range(sender.sent)), f"what {sender.name} sent")
                self.assertEqual(sender.acked, mine, f"what {sender.name} was echoed")
        # Every survivor was sent its room's messages once each, in seq order.
        for client in survivors:
            self.assertEqual(client.said, [(s, t) for _, s, t in stored[client.room]],
                             f"what {client.name} was sent")
        # The test did what it says: a server died with messages in flight, and
        # each room has messages from every server.
        self.assertGreater(inFlight, 0)
        for room in self.ROOMS:
            senders = {sender[1] for _, sender, _ in stored[room]}
            self.assertEqual(senders, {s.name[1] for s in self.senders if s.room == room})

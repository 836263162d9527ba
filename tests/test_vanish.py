"""
A client that vanishes (a closed laptop lid, an expired NAT mapping: no FIN,
no RST) is dropped within the bounded time the server logs at start-up, with
nothing on its side to help: TCP keepalive and the TCP user timeout.

The client runs in a network namespace of the test's own, joined to this one
by a veth pair; taking its end of the link down makes it vanish. That needs
root and iproute2: without them the tests skip, except under CI=true.
"""

import os
import shutil
import socket
import subprocess
import sys

from twisted.internet import defer, protocol, reactor
from twisted.trial.unittest import SkipTest, TestCase

from tests.e2e import ServerProcess, connect

# The test's own two hosts, inside the namespace pair it makes: never a real network.
SERVER_IP, CLIENT_IP = "10.254.77.1", "10.254.77.2"

CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.sendall(b"vanisher\njoin kitchen\n")
seen = b""
while b"* You joined kitchen." not in seen:
    seen += s.recv(65536)
print("joined", flush=True)
sys.stdin.read()  # hold the connection until killed
"""


def _run(*argv):
    subprocess.run(argv, check=True, capture_output=True)


class _Client(protocol.ProcessProtocol):
    def __init__(self):
        self.joined = defer.Deferred()
        self.ended = defer.Deferred()
        self.output = b""

    def outReceived(self, data):
        self.output += data
        if b"joined" in self.output and not self.joined.called:
            self.joined.callback(None)

    errReceived = outReceived

    def processEnded(self, reason):
        if not self.joined.called:
            self.joined.errback(AssertionError(self.output.decode("utf-8", "replace")))
        self.ended.callback(None)


class VanishedClientTests(TestCase):
    timeout = 60

    def setUp(self):
        able = os.geteuid() == 0 and shutil.which("ip") is not None
        if not able:
            reason = "needs root and iproute2 (ip netns) to make a client vanish"
            if os.environ.get("CI") == "true":
                self.fail(reason)
            raise SkipTest(reason)
        tag = f"{os.getpid() % 100000}"
        self.namespace, self.here, self.there = f"chatsvc{tag}", f"cvh{tag}", f"cvn{tag}"
        try:
            _run("ip", "netns", "add", self.namespace)
        except subprocess.CalledProcessError as e:
            if os.environ.get("CI") == "true":
                raise
            raise SkipTest(f"cannot make a network namespace: {e.stderr.decode().strip()}")
        self.addCleanup(_run, "ip", "netns", "delete", self.namespace)
        inside = ("ip", "netns", "exec", self.namespace)
        _run("ip", "link", "add", self.here, "type", "veth", "peer", "name", self.there)
        self.addCleanup(subprocess.run, ["ip", "link", "delete", self.here],
                        capture_output=True)
        _run("ip", "link", "set", self.there, "netns", self.namespace)
        _run("ip", "addr", "add", f"{SERVER_IP}/30", "dev", self.here)
        _run("ip", "link", "set", self.here, "up")
        _run(*inside, "ip", "addr", "add", f"{CLIENT_IP}/30", "dev", self.there)
        _run(*inside, "ip", "link", "set", self.there, "up")
        self.inside = inside
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.clients = []

    def tearDown(self):
        for client in self.clients:
            if client.transport.connected:
                client.transport.loseConnection()
        waiting = [c.closed for c in self.clients]
        if not self.server.ended.called:
            waiting.append(self.server.kill())
        if not self.vanisher.ended.called:
            self.vanisher.transport.signalProcess("KILL")
            waiting.append(self.vanisher.ended)
        return defer.gatherResults(waiting)

    @defer.inlineCallbacks
    def vanish(self):
        """Start the server, put a client from the other host in kitchen, cut its link."""
        probe = socket.socket()
        probe.bind((SERVER_IP, 0))
        port = probe.getsockname()[1]
        probe.close()
        self.server = ServerProcess.start(
            self.directory, "--keepalive", "2", "--flood-rate", "0",
            "--listen", f"tcp:{port}:interface={SERVER_IP}")
        loopback = self.server_port = yield self.server.port
        watcher = yield connect(loopback, "watcher")
        self.clients.append(watcher)
        watcher.send("create kitchen")
        yield watcher.waitFor("* You joined kitchen.")
        self.vanisher = _Client()
        reactor.spawnProcess(self.vanisher, "ip", [
            "ip", "netns", "exec", self.namespace, sys.executable, "-c", CLIENT,
            SERVER_IP, str(port)], env=dict(os.environ))
        yield self.vanisher.joined
        yield watcher.waitFor("* vanisher joined kitchen")
        _run(*self.inside, "ip", "link", "set", self.there, "down")  # no FIN, no RST: gone
        return watcher

    @defer.inlineCallbacks
    def test_silentVanishedClientIsDropped(self):
        watcher = yield self.vanish()
        yield watcher.waitFor("* vanisher left kitchen (disconnected)")
        watcher.send("online")
        lines = yield watcher.waitFor("*   ")
        self.assertEqual(lines[-2:], ["* Online (1):", "*   watcher"])
        self.assertTrue(any("A client that vanishes is dropped within 6 s" in line
                            for line in self.server.output))

    @defer.inlineCallbacks
    def test_vanishedClientInABusyRoomIsDropped(self):
        watcher = yield self.vanish()
        watcher.send("anyone there?")  # unacknowledged on the vanished side
        yield watcher.waitFor("* vanisher left kitchen (disconnected)")
        again = yield connect(self.server_port, "vanisher")  # the name is free again
        self.clients.append(again)

"""TLS: `--listen ssl:...` with a key and certificate (the `tls` extra)."""

import datetime
import ipaddress
import os
import socket
import sys
from unittest import mock

from twisted.internet import defer, endpoints, protocol, reactor
from twisted.python import usage
from twisted.trial.unittest import SkipTest, TestCase

from chatsvc.client import Options
from chatsvc.clientproto import ChatClient
from chatsvc.clienttls import TLS_EXTRA, TLSCheck, tlsMissing
from tests.e2e import InProcessServer, connect

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    from twisted.internet import ssl
except ImportError:  # pragma: no cover
    ssl = None


def selfSignedCertificate(folder):
    """Write key.pem and cert.pem for localhost / 127.0.0.1; return the cert's PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .sign(key, hashes.SHA256()))
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    with open(os.path.join(folder, "key.pem"), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(os.path.join(folder, "cert.pem"), "wb") as f:
        f.write(pem)
    return pem


class TLSTests(TestCase):
    timeout = 30

    def setUp(self):
        if ssl is None:
            raise SkipTest("TLS needs the tls extra: pip install '.[tls]'")
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        self.pem = selfSignedCertificate(folder)
        self.server = InProcessServer(
            "--db", os.path.join(folder, "chat.sqlite3"), "--flood-rate", "0",
            "--listen", f"ssl:0:interface=127.0.0.1:privateKey={folder}/key.pem"
                        f":certKey={folder}/cert.pem")
        self.clients = []
        self.addCleanup(lambda: self.server.stop(self.clients))

    @defer.inlineCallbacks
    def connectTLS(self, name):
        options = ssl.optionsForClientTLS(
            "localhost", trustRoot=ssl.Certificate.loadPEM(self.pem))
        endpoint = endpoints.wrapClientTLS(
            options, endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", self.server.port))
        client = yield connect(None, name, endpoint)
        self.clients.append(client)
        return client

    @defer.inlineCallbacks
    def test_chatOverTLS(self):
        alice = yield self.connectTLS("alice")
        bob = yield self.connectTLS("bob")
        alice.send("create vault")
        yield alice.waitFor("* You joined vault.")
        bob.send("join vault")
        yield bob.waitFor("* You joined vault. Here: alice.")
        bob.send("secret handshake")
        self.assertEqual((yield alice.waitFor("<bob>")),
                         ["* bob joined vault", "<bob> secret handshake"])
        self.assertEqual((yield bob.waitFor("<bob>")), ["<bob> secret handshake"])

    @defer.inlineCallbacks
    def test_refusedConnectionsHoldNothing(self):
        """
        Connections refused at the door are cut off at once, even by a TLS peer
        that never says a word: a flood of them cannot use up the server's files.
        """
        host = "127.0.0.9"
        held = [socket.create_connection(("127.0.0.1", self.server.port),
                                         source_address=(host, 0)) for _ in range(3)]
        self.addCleanup(lambda: [s.close() for s in held])
        refused = yield endpoints.connectProtocol(
            endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", self.server.port,
                                         bindAddress=(host, 0)),
            _Closed())
        yield refused.closed  # without sending anything, not even a TLS hello

    @defer.inlineCallbacks
    def test_serverClosesTLSConnection(self):
        """quit ends the session over TLS too: the server's close completes."""
        alice = yield self.connectTLS("alice")
        alice.send("quit")
        yield alice.waitFor("* Goodbye, alice.")
        yield alice.closed

    @defer.inlineCallbacks
    def test_kernelSendBufferBoundedUnderTLS(self):
        yield self.connectTLS("alice")
        (server,) = self.server.factory.open
        tcp = server.transport.transport  # under the TLS layer
        size = tcp.getHandle().getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        self.assertLessEqual(size, 2 * 64 * 1024)


def issue(folder, hosts, signer=None, days=(-1, 1), ca=False, name=None):
    """
    folder/key.pem and folder/cert.pem: a certificate for C{hosts} (names and
    addresses), valid C{days} from now, signed by C{signer} (a (key,
    certificate) pair) or by itself. Returns (key, certificate).
    """
    os.makedirs(folder, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name or hosts[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    names = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(signer[1].subject if signer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=days[0]))
        .not_valid_after(now + datetime.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    certificate = builder.sign(signer[0] if signer else key, hashes.SHA256())
    with open(os.path.join(folder, "key.pem"), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(os.path.join(folder, "cert.pem"), "wb") as f:
        f.write(certificate.public_bytes(serialization.Encoding.PEM))
    return key, certificate


class _Closed(protocol.Protocol):
    def __init__(self):
        self.closed = defer.Deferred()

    def connectionLost(self, reason):
        self.closed.callback(None)


class Display:
    """A client front end that keeps what it was asked to show."""

    def __init__(self):
        self.lines, self.problems = [], []
        self.firstLine = defer.Deferred()  # the first line from the server

    def start(self, client):
        pass

    def serverConnected(self):
        pass

    def changed(self):
        pass

    def show(self, line):
        self.lines.append(line)
        if not self.firstLine.called:
            self.firstLine.callback(line)

    def status(self, text, problem=False):
        (self.problems if problem else self.lines).append(text)

    def stop(self):
        return defer.succeed(None)


class Answer(protocol.Protocol):
    """What answers the client's hello: a TLS alert (C{code}), or a close (None)."""

    def dataReceived(self, data):
        if self.factory.alert is not None:  # a fatal alert record, as a refusing server sends
            self.transport.write(bytes([0x15, 3, 3, 0, 2, 2, self.factory.alert]))
        self.transport.loseConnection()


class TLSFailureTests(TestCase):
    """
    Every way a TLS connection fails, as the client says it: one line that
    says what is wrong and what to do, over real TLS on loopback.
    """

    timeout = 30

    def setUp(self):
        if ssl is None:
            raise SkipTest("TLS needs the tls extra: pip install '.[tls]'")
        self.folder = os.path.abspath(self.mktemp())
        self.cas = os.path.join(self.folder, "cas")  # for caCertsDir=: the CA alone
        self.ca = issue(self.cas, [], ca=True, name="Test CA")
        os.rename(os.path.join(self.cas, "key.pem"), os.path.join(self.folder, "ca-key.pem"))

    def serve(self, hosts, signed=True, days=(-1, 1)):
        """A chat server on TLS with a certificate for C{hosts}; its port."""
        folder = os.path.join(self.folder, "server-" + str(len(os.listdir(self.folder))))
        issue(folder, hosts, self.ca if signed else None, days)
        server = InProcessServer(
            "--db", os.path.join(folder, "chat.sqlite3"),
            "--listen", f"ssl:0:interface=127.0.0.1:privateKey={folder}/key.pem"
                        f":certKey={folder}/cert.pem")
        self.addCleanup(server.stop)
        return server.port

    def listen(self, factory):
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return port.getHost().port

    @defer.inlineCallbacks
    def attempt(self, description):
        """Run the client against C{description} to its end: what it said was wrong."""
        options = Options()
        options.parseOptions(["--server", description])
        display = Display()
        client = ChatClient(options.endpoint, options.where, display, reconnect=False,
                            clock=reactor, tls=options.tls)
        code = yield client.start()
        self.assertEqual(code, 1)
        self.assertEqual(len(display.problems), 1, display.problems)
        return display.problems[0]

    def assertSays(self, description, problem):
        d = self.attempt(description)
        d.addCallback(self.assertEqual, f"Could not connect to {description}: {problem}.")
        return d

    def test_certificateForAnotherName(self):
        port = self.serve(["example.org"])
        return self.assertSays(
            f"ssl:127.0.0.1:{port}:caCertsDir={self.cas}:hostname=chat.example.net",
            "the server's certificate is for example.org, not chat.example.net: connect to it"
            " by that name (or add hostname=example.org if it is this server)")

    def test_certificateForOtherNamesThanTheAddress(self):
        port = self.serve(["example.org", "www.example.org"])
        return self.assertSays(
            f"ssl:127.0.0.1:{port}:caCertsDir={self.cas}",
            "the server's certificate is for example.org and www.example.org, not 127.0.0.1:"
            " connect to it by one of those names (or add hostname=example.org if it is"
            " this server)")

    def test_selfSigned(self):
        port = self.serve(["127.0.0.1"], signed=False)
        return self.assertSays(
            f"ssl:127.0.0.1:{port}",
            "the server's certificate is self-signed, not signed by a CA this machine trusts:"
            " pass caCertsDir=DIR with a copy of it in DIR as a .pem file")

    def test_selfSignedAndNotInTheFolder(self):
        port = self.serve(["127.0.0.1"], signed=False)
        return self.assertSays(
            f"ssl:127.0.0.1:{port}:caCertsDir={self.cas}",
            f"the server's certificate is self-signed and not among the .pem files in"
            f" {self.cas}: put a copy of it there as a .pem file")

    def test_unknownCA(self):
        port = self.serve(["127.0.0.1"])
        return self.assertSays(
            f"ssl:127.0.0.1:{port}",
            "the server's certificate is signed by Test CA, not by a CA this machine trusts:"
            " pass caCertsDir=DIR with that CA's certificate in DIR as a .pem file")

    def test_expired(self):
        port = self.serve(["127.0.0.1"], days=(-30, -2))
        expired = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=2))
        d = self.attempt(f"ssl:127.0.0.1:{port}:caCertsDir={self.cas}")

        def check(problem):
            self.assertIn(": the server's certificate expired on ", problem)
            self.assertIn(expired.strftime("%Y-%m-%d"), problem)
            self.assertTrue(problem.endswith(
                " UTC: its operator must renew it (or this machine's clock is wrong)."), problem)
        return d.addCallback(check)

    def test_notYetValid(self):
        port = self.serve(["127.0.0.1"], days=(2, 30))
        d = self.attempt(f"ssl:127.0.0.1:{port}:caCertsDir={self.cas}")
        d.addCallback(lambda problem: self.assertRegex(
            problem, r": the server's certificate is not valid until \d{4}-\d\d-\d\d \d\d:\d\d"
                     r" UTC: check this machine's clock\.$"))
        return d

    def test_handshakeRefused(self):
        refusing = protocol.Factory.forProtocol(Answer)
        refusing.alert = 40  # handshake_failure
        return self.assertSays(
            f"ssl:127.0.0.1:{self.listen(refusing)}",
            "the server refused the TLS handshake (handshake failure): it may want a client"
            " certificate (certKey=CERT.pem:privateKey=KEY.pem) or TLS settings this client"
            " does not offer; ask its operator")

    def test_clientCertificateRequired(self):
        refusing = protocol.Factory.forProtocol(Answer)
        refusing.alert = 116  # certificate_required
        return self.assertSays(
            f"ssl:127.0.0.1:{self.listen(refusing)}",
            "the server refused the TLS handshake (certificate required): it wants a client"
            " certificate: add certKey=CERT.pem:privateKey=KEY.pem")

    def test_closedDuringHandshake(self):
        closing = protocol.Factory.forProtocol(Answer)
        closing.alert = None
        return self.assertSays(
            f"ssl:127.0.0.1:{self.listen(closing)}",
            "the server closed the connection during the TLS handshake: check that this is"
            " its TLS port, and ask its operator whether it wants a client certificate"
            " (certKey=CERT.pem:privateKey=KEY.pem)")

    def test_serverNotSpeakingTLS(self):
        server = InProcessServer("--db", os.path.join(self.folder, "plain.sqlite3"),
                                 "--listen", "tcp:0:interface=127.0.0.1")
        self.addCleanup(server.stop)
        return self.assertSays(
            f"ssl:127.0.0.1:{server.port}",
            "what answered does not speak TLS (it may be the server's plain port): use tcp:"
            " (or HOST PORT) for a plain port, or the server's TLS port")

    @defer.inlineCallbacks
    def test_trustedCertificateConnects(self):
        """The check explains failures only: a good certificate is let through."""
        port = self.serve(["localhost", "127.0.0.1"])
        options = Options()
        options.parseOptions(["--server", f"ssl:127.0.0.1:{port}:caCertsDir={self.cas}"])
        display = Display()
        client = ChatClient(options.endpoint, options.where, display, reconnect=False,
                            clock=reactor, tls=options.tls)
        finished = client.start()
        yield display.firstLine
        client.leave()
        self.assertEqual((yield finished), 0)
        self.assertEqual(display.lines[0], f"Connected to server {options.where}")
        self.assertEqual(display.problems, [])


class TLSExtraTests(TestCase):
    """Without pyOpenSSL (the tls extra), ssl: says what to install."""

    def test_sslAddressSaysToInstallTheExtra(self):
        with mock.patch.dict(sys.modules, {"OpenSSL": None, "OpenSSL.SSL": None}):
            self.assertEqual(tlsMissing("ssl:chat.example.org:3443"), TLS_EXTRA)
            with self.assertRaises(usage.UsageError) as raised:
                Options().parseOptions(["--server", "ssl:chat.example.org:3443"])
            Options().parseOptions(["--server", "tcp:chat.example.org:3000"])  # fine
        self.assertEqual(str(raised.exception),
                         "TLS needs the tls extra: pip install 'chatsvc[tls]'")

    def test_checkFromDescription(self):
        check = TLSCheck.fromDescription("ssl:host=h\\:x:port=1:caCertsDir=/c\\:d")
        self.assertEqual((check.hostname, check.caCertsDir), ("h:x", "/c:d"))
        check = TLSCheck.fromDescription("ssl:h:1:hostname=other")
        self.assertEqual((check.hostname, check.caCertsDir), ("other", None))
        self.assertIsNone(TLSCheck.fromDescription("tcp:h:1"))
        self.assertIsNone(tlsMissing("tcp:h:1"))

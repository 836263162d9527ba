"""TLS: `--listen ssl:...` with a key and certificate (the `tls` extra)."""

import datetime
import ipaddress
import os
import socket

from twisted.internet import defer, endpoints, reactor
from twisted.trial.unittest import SkipTest, TestCase

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

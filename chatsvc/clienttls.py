"""
TLS for the client (C{--server ssl:...}): that the C{tls} extra is there,
that the server's certificate is checked at all, and a person's words for
why a TLS connection failed: what is wrong and what to do about it.

Importable without the C{tls} extra: pyOpenSSL is imported only once a
TLS connection has failed, and by then it is known to be there.
"""

import datetime
import os
import re

from twisted.internet import error

TLS_KINDS = ("ssl", "tls")  # Twisted's TLS client endpoints
TLS_EXTRA = "TLS needs the tls extra: pip install 'chatsvc[tls]'"

# OpenSSL's X509_V_ERR_* codes for the certificate problems a person can fix.
_NOT_YET_VALID, _EXPIRED = 9, 10
_UNTRUSTED = {
    2,  # unable to get issuer certificate
    18,  # self-signed certificate
    19,  # self-signed certificate in certificate chain
    20,  # unable to get local issuer certificate
    21,  # unable to verify the first certificate
}
# OpenSSL's words when what answered is not a TLS server.
_NOT_TLS = ("wrong version number", "packet length too long", "unknown protocol",
            "http request", "record layer failure", "record too long")
_ALERT = re.compile(r"alert (.+)")
_RENEW = "its operator must renew it (or this machine's clock is wrong)"


def _fields(description):
    kind, *fields = re.split(r"(?<!\\):", description)
    return kind, fields


def _unescape(value):
    return re.sub(r"\\(.)", r"\1", value)


def tlsMissing(description):
    """The line to show if C{description} needs TLS and the extra is missing."""
    if _fields(description)[0] not in TLS_KINDS:
        return None
    try:
        import OpenSSL.SSL  # noqa: F401 (what Twisted's TLS endpoints need)
    except ImportError:
        return TLS_EXTRA
    return None


def verifiedTLS(description):
    """
    C{description}, and for C{ssl:} with C{hostname=HOST} added if missing:
    without it Twisted does not check the server's certificate at all.
    """
    kind, fields = _fields(description)
    if kind != "ssl" or any(f.startswith("hostname=") for f in fields):
        return description
    named = [f[len("host="):] for f in fields if f.startswith("host=")]
    positional = [f for f in fields if "=" not in f]
    host = named[0] if named else positional[0] if positional else None
    if not host:
        return description  # clientFromString explains what is missing
    return f"{description}:hostname={host}"


class TLSCheck:
    """
    What the client asked of the server's certificate (the name it must be
    for; the folder of CAs, else this machine's), to explain a refusal.
    """

    def __init__(self, hostname, caCertsDir=None):
        self.hostname = hostname
        self.caCertsDir = caCertsDir

    @classmethod
    def fromDescription(cls, description):
        """The check a C{ssl:} or C{tls:} description asks for; None for others."""
        kind, fields = _fields(verifiedTLS(description))
        if kind not in TLS_KINDS:
            return None
        named = dict(f.split("=", 1) for f in fields if "=" in f)
        positional = [f for f in fields if "=" not in f]
        host = named.get("hostname") or named.get("host") or (positional or [""])[0]
        folder = named.get("caCertsDir" if kind == "ssl" else "trustRoots")
        return cls(_unescape(host), _unescape(folder) if folder else None)

    def explain(self, reason, connection=None, handshaken=False):
        """
        Why a TLS connection failed, in a person's words, or None if
        C{reason} is not about TLS. C{connection} is the pyOpenSSL
        connection (for the certificates the server sent); C{handshaken}
        whether the handshake had completed.
        """
        chain = _chain(connection)
        if reason.type.__module__.startswith("service_identity"):  # the name is wrong
            return self._certificate(chain, mismatched=True)
        if reason.type.__module__.startswith("OpenSSL"):
            said = _openSSLSays(reason.value)
            if "certificate verify failed" in said:
                return self._certificate(chain, mismatched=False)
            if any(words in said for words in _NOT_TLS):
                return ("what answered does not speak TLS (it may be the server's plain"
                        " port): use tcp: (or HOST PORT) for a plain port, or the"
                        " server's TLS port")
            alert = _ALERT.search(said)
            if alert:
                return _refused(alert.group(1))
            return f"the TLS connection failed ({said or reason.getErrorMessage()})"
        if not handshaken and reason.check(error.ConnectionDone, error.ConnectionLost):
            return ("the server closed the connection during the TLS handshake: check that"
                    " this is its TLS port, and ask its operator whether it wants a client"
                    " certificate (certKey=CERT.pem:privateKey=KEY.pem)")
        return None

    def _certificate(self, chain, mismatched):
        if not chain:
            return (f"the server's certificate is not for {self.hostname}" if mismatched
                    else "the server's certificate could not be checked")
        problems, advice = [], []
        if mismatched:
            names = _names(chain[0].to_cryptography())
            if names:
                problems.append(f"is for {_andList(names)}, not {self.hostname}")
                those = "that name" if len(names) == 1 else "one of those names"
                advice.append(f"connect to it by {those}"
                              f" (or add hostname={names[0]} if it is this server)")
            else:
                problems.append(f"names no host, so it is not for {self.hostname}")
                advice.append("its operator must issue one that names this host")
        trust = self._trustProblem(chain)
        if trust is not None:
            problems.append(trust[0])
            advice.insert(0, trust[1])  # trust first: until then the name is moot
        if not problems:
            return "the server's certificate was refused"
        return f"the server's certificate {', and it '.join(problems)}: {', and '.join(advice)}"

    def _trustProblem(self, chain):
        """(what is wrong, what to do) about the chain's signatures and dates, or None."""
        from OpenSSL import SSL, crypto

        try:
            context = SSL.Context(SSL.TLS_CLIENT_METHOD)
            if not self.caCertsDir:  # as Twisted's platformTrust, with pyOpenSSL's fallbacks
                context.set_default_verify_paths()
            store = context.get_cert_store()
            for certificate in _pemCertificates(self.caCertsDir) if self.caCertsDir else ():
                store.add_cert(certificate)
            crypto.X509StoreContext(store, chain[0], chain[1:]).verify_certificate()
        except crypto.X509StoreContextError as e:
            code, depth, words = getattr(e, "errors", None) or e.args[0]  # pyOpenSSL < 24
            failed = e.certificate.to_cryptography()
        except Exception:  # e.g. a folder we cannot read: Twisted's verdict stands
            return None
        else:
            return None
        whose = "" if depth == 0 else \
            f"is signed by {_commonName(failed.subject)}, whose certificate "
        if code == _EXPIRED:
            return f"{whose}expired on {_when(failed, 'after')}", _RENEW
        if code == _NOT_YET_VALID:
            return (f"{whose}is not valid until {_when(failed, 'before')}",
                    "check this machine's clock")
        if code in _UNTRUSTED:
            return self._untrusted(chain[0].to_cryptography())
        return f"{whose}was refused ({words})", "ask the server's operator"

    def _untrusted(self, leaf):
        """No trusted CA signed C{leaf}; OpenSSL stops there, so check its dates too."""
        selfSigned = leaf.issuer == leaf.subject
        signer = "is self-signed" if selfSigned else f"is signed by {_commonName(leaf.issuer)}"
        copy = "a copy of it" if selfSigned else "that CA's certificate"
        if self.caCertsDir:
            wrong = f"{signer}{' and' if selfSigned else ', which is'} not among the .pem" \
                    f" files in {self.caCertsDir}"
            advice = f"put {copy} there as a .pem file"
        else:
            wrong = f"{signer}, not {'signed ' if selfSigned else ''}by a CA this machine trusts"
            advice = f"pass caCertsDir=DIR with {copy} in DIR as a .pem file"
        if _when(leaf, "after", text=False) < datetime.datetime.now(datetime.timezone.utc):
            return (f"{wrong}, and it expired on {_when(leaf, 'after')}",
                    f"{advice}, and {_RENEW}")
        return wrong, advice


def _chain(connection):
    try:
        return connection.get_peer_cert_chain() if connection is not None else None
    except Exception:
        return None


def _openSSLSays(value):
    """The reasons in an OpenSSL.SSL.Error, as one string."""
    parts = []
    for entry in (value.args[0] if value.args and isinstance(value.args[0], list) else []):
        parts.append(entry[-1] if isinstance(entry, tuple) else str(entry))
    return "; ".join(p for p in parts if p) or str(value)


def _refused(alert):
    if "certificate required" in alert:
        advice = "it wants a client certificate: add certKey=CERT.pem:privateKey=KEY.pem"
    elif "protocol version" in alert:
        advice = "it wants a TLS version this client does not speak; ask its operator"
    else:
        advice = ("it may want a client certificate (certKey=CERT.pem:privateKey=KEY.pem)"
                  " or TLS settings this client does not offer; ask its operator")
    return f"the server refused the TLS handshake ({alert}): {advice}"


def _pemCertificates(folder):
    """The certificates in folder/*.pem, as Twisted's caCertsDir= reads them."""
    from OpenSSL import crypto

    for name in sorted(os.listdir(folder)):
        if name.lower().endswith(".pem"):
            try:
                with open(os.path.join(folder, name), "rb") as f:
                    yield crypto.load_certificate(crypto.FILETYPE_PEM, f.read())
            except (OSError, crypto.Error):
                pass


def _names(certificate):
    """The DNS names and addresses a certificate is for (its CN if it has none)."""
    from cryptography import x509

    try:
        alternative = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        common = _commonName(certificate.subject, None)
        return [common] if common else []
    return (alternative.get_values_for_type(x509.DNSName)
            + [str(ip) for ip in alternative.get_values_for_type(x509.IPAddress)])


def _commonName(name, default="an unnamed CA"):
    from cryptography.x509.oid import NameOID

    found = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(found[0].value) if found else default


def _when(certificate, end, text=True):
    moment = getattr(certificate, f"not_valid_{end}_utc", None)
    if moment is None:  # cryptography before 42
        moment = getattr(certificate, f"not_valid_{end}").replace(tzinfo=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC") if text else moment


def _andList(items, most=3):
    items = list(items)
    if len(items) > most:
        items = items[:most] + [f"{len(items) - most} more"]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"

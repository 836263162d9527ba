"""
Accounts: a registered name and the salted hash of its password. Hashing
runs on a thread pool of its own, never the reactor's thread; wrong
passwords slow down whoever keeps trying them (per account and per address).
Passwords are never kept, logged or sent anywhere.
"""

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

from twisted.application import service
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from chatsvc import errors
from chatsvc.doors.flow import TokenBucket
from chatsvc.store import AccountTaken, DatabaseLost

# scrypt's cost: 2**14 rounds of 8-byte blocks, 16 MiB and tens of ms a hash
# (OWASP's minimum). Kept in each hash, so raising it later breaks nothing.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1
PASSWORD_MAX = 1024  # characters: long passphrases are fine, megabytes are not


def hashPassword(password: str, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P) -> str:
    """``scrypt$N$r$p$salt$hash``, salt and hash in base64 (slow: off the reactor)."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                            maxmem=128 * n * r * p + 2 ** 20, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def checkPassword(password: str, stored: str) -> bool:
    """Does C{password} match a hash from L{hashPassword}? (slow: off the reactor)"""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        n, r, p = int(n), int(r), int(p)
        salt, digest = base64.b64decode(salt), base64.b64decode(digest)
    except ValueError:
        return False
    if kind != "scrypt":
        return False
    tried = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                           maxmem=128 * n * r * p + 2 ** 20, dklen=len(digest))
    return hmac.compare_digest(tried, digest)


@dataclass
class Account:
    name: str  # as registered: the screen name it owns
    hash: str
    created: float


class Attempts:
    """
    Wrong passwords, counted per key (an account, an address): after
    C{free} of them, each further try must wait, twice as long each time up
    to C{longest} seconds. A right password clears its account's count; the
    count is forgotten after C{forget} seconds without a wrong one.
    """

    def __init__(self, clock, free, first=2.0, longest=300.0, forget=900.0):
        self.clock = clock
        self.free, self.first, self.longest, self.forget = free, first, longest, forget
        self._wrong = {}  # key -> (wrong so far, when the last was, may try again at)

    def wait(self, key) -> float:
        """Seconds before C{key} may try again (0: now)."""
        entry = self._wrong.get(key)
        if entry is None:
            return 0.0
        count, last, until = entry
        now = self.clock.seconds()
        if now - last >= self.forget:
            del self._wrong[key]
            return 0.0
        return max(0.0, until - now)

    def failed(self, key):
        if len(self._wrong) > self.KEPT:
            self._prune()
        self.wait(key)  # forgets a count gone stale
        now = self.clock.seconds()
        count = self._wrong.get(key, (0,))[0] + 1
        delay = 0.0 if count < self.free else min(
            self.longest, self.first * 2 ** (count - self.free))
        self._wrong[key] = (count, now, now + delay)

    KEPT = 10_000  # keys counted before the stale ones are forgotten

    def _prune(self):
        now = self.clock.seconds()
        for key, (_, last, _) in list(self._wrong.items()):
            if now - last >= self.forget:
                del self._wrong[key]

    def succeeded(self, key):
        self._wrong.pop(key, None)

    def forgive(self, key):
        """Take back one wrong try (one that turned out right), keeping any wait it began."""
        entry = self._wrong.get(key)
        if entry is not None:
            count, last, until = entry
            if count <= 1:
                del self._wrong[key]
            else:
                self._wrong[key] = (count - 1, last, until)


class Accounts(service.Service):
    """
    Every account, in memory (loaded from the store at start-up), and the
    checks that guard them. A change is stored before it takes effect.
    """

    FREE_PER_ACCOUNT = 3  # wrong passwords for an account from one address before tries wait
    FREE_ANYWHERE = 20  # ... from every address: the owner's own tries stay free longer
    FREE_PER_ADDRESS = 10  # ... from one address, whatever the accounts
    CHECKS_PER_SECOND, CHECKS_AT_ONCE = 1.0, 10  # every check costs a hash, right or wrong
    REGISTRATIONS_PER_HOUR, REGISTRATIONS_AT_ONCE = 5.0, 3  # from one address
    HASHING_MAX = 32  # hashes waiting for the pool, at most: past that, "try again"

    def __init__(self, store, clock, settings, threads=2, cost=None):
        self.store = store
        self.settings = settings
        self.byKey = {}  # casefolded name -> Account
        self._pending = set()  # names being registered right now
        self.clock = clock
        self.perAccount = Attempts(clock, self.FREE_PER_ACCOUNT)  # by (account, address)
        self.anywhere = Attempts(clock, self.FREE_ANYWHERE)  # by account
        self.perAddress = Attempts(clock, self.FREE_PER_ADDRESS)
        self._checks = {}  # address -> TokenBucket of password checks
        self._registrations = {}  # address -> TokenBucket of registrations
        self._hashing = 0  # hashes handed to the pool and not yet done
        self._stopped = False
        self._cost = cost or (SCRYPT_N, SCRYPT_R, SCRYPT_P)
        self._pool = ThreadPool(0, threads, name="chatsvc-passwords")
        self._reactor = None

    def load(self, records):
        for name, hashed, created in records:
            self.byKey[name.casefold()] = Account(name, hashed, created)

    def startService(self):
        from twisted.internet import reactor
        self._reactor = reactor
        self._pool.start()
        super().startService()

    def stopService(self):
        super().stopService()
        self._stopped = True
        self._pool.stop()

    def _offThread(self, f, *args):
        if self._stopped:
            raise errors.ServerStopping("Nothing changed")
        if self._hashing >= self.HASHING_MAX:
            raise errors.ServerBusy()
        if not self._pool.started:  # used without being started (a unit test)
            self.startService()
        self._hashing += 1
        d = deferToThreadPool(self._reactor, self._pool, f, *args)
        return d.addBoth(self._hashed)

    def _hashed(self, result):
        self._hashing -= 1
        return result

    def _spend(self, buckets, address, rate, burst):
        """One of what C{address} may do C{rate} a second, or L{errors.TooManyAttempts}."""
        if address is None:  # exempt
            return
        bucket = buckets.get(address)
        if bucket is None:
            if len(buckets) > Attempts.KEPT:
                for other in [a for a, b in buckets.items() if b.full()]:
                    del buckets[other]
            bucket = buckets[address] = TokenBucket(rate, burst, self.clock)
        wait = bucket.allow()
        if wait:
            raise errors.TooManyAttempts(wait)

    def get(self, name):
        return self.byKey.get(name.casefold()) if name else None

    def isRegistered(self, name) -> bool:
        return name is not None and name.casefold() in self.byKey

    def _checkNew(self, password):
        if len(password) < self.settings.password_min:
            raise errors.BadPassword(self.settings.password_min)
        # One word, so that it can be typed on every door (the native
        # `identify NAME PASSWORD` splits on spaces).
        if len(password) > PASSWORD_MAX or len(password.split()) != 1 or \
                password != password.strip():
            raise errors.BadPassword(self.settings.password_min)

    def register(self, name, password, now, address=None):
        """Store a new account for C{name}; the Deferred fires with it once durable."""
        key = name.casefold()
        if key in self.byKey or key in self._pending:
            raise errors.AlreadyRegistered(name)
        self._checkNew(password)
        self._spend(self._registrations, address, self.REGISTRATIONS_PER_HOUR / 3600,
                    self.REGISTRATIONS_AT_ONCE)
        self._pending.add(key)

        def hashed(digest):
            account = Account(name, digest, now)
            return self.store.addAccount(name, digest, now).addCallback(lambda _: account)

        def done(account):
            self.byKey[key] = account
            return account

        d = self._offThread(hashPassword, password, *self._cost).addCallback(hashed)
        d.addCallback(done)
        d.addErrback(self._notStored, "Your account")
        return d.addBoth(self._settled, key)

    def _settled(self, result, key):
        self._pending.discard(key)
        return result

    @staticmethod
    def _notStored(failure, what):
        if failure.check(errors.ChatError):
            return failure
        if failure.check(AccountTaken):  # by another server, just now
            raise errors.AlreadyRegistered(failure.value.name)
        lost = failure.check(DatabaseLost) is not None
        raise errors.NotStored(what, "nothing changed",
                               errors.NotStored.LOST if lost else errors.NotStored.AGAIN)

    def check(self, name, password, address):
        """
        The Account if C{password} is C{name}'s, else L{errors.WrongPassword};
        L{errors.TooManyAttempts} while the account or the address must wait.
        """
        account = self.get(name)
        if account is None:
            raise errors.NotRegistered(name)
        key = account.name.casefold()
        here = (key, address)
        wait = max(self.perAccount.wait(here), self.anywhere.wait(key),
                   self.perAddress.wait(address) if address else 0.0)
        if wait:
            raise errors.TooManyAttempts(wait)
        self._spend(self._checks, address, self.CHECKS_PER_SECOND, self.CHECKS_AT_ONCE)
        # Counted as wrong until it proves right: tries made at once (before
        # any has been checked) are slowed like tries made one after another.
        self.perAccount.failed(here)
        self.anywhere.failed(key)
        if address:
            self.perAddress.failed(address)

        def checked(right):
            if not right:
                raise errors.WrongPassword(account.name)
            self.perAccount.succeeded(here)
            self.anywhere.forgive(key)
            if address:
                self.perAddress.forgive(address)
            return account
        return self._offThread(checkPassword, password, account.hash).addCallback(checked)

    def changePassword(self, account, new):
        self._checkNew(new)

        def hashed(digest):
            return self.store.setPassword(account.name, digest).addCallback(
                lambda _: setattr(account, "hash", digest))
        d = self._offThread(hashPassword, new, *self._cost).addCallback(hashed)
        return d.addErrback(self._notStored, "Your new password")

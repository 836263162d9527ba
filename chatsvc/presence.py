"""
Who is online where, when several servers share one PostgreSQL database
(cluster.md, point 9): a name is held by one server at a time, in the
database, not in Redis (a Redis restart would forget it). Each server beats
every few seconds; one that stops (killed, cut off) has its names freed by
any other within L{NODE_TTL}, and one that cannot beat admits nobody new.
Accounts registered or changed on another server are loaded at each beat.
A mixin of L{chatsvc.lobby.Lobby}; it runs only with a store that has
presence (PostgreSQL) and a bus.
"""

import uuid
from types import MappingProxyType

from twisted.internet.task import LoopingCall

from chatsvc import errors

BEAT = 3.0  # seconds between heartbeats (and reaps of servers gone silent)


class Presence:
    """Names unique across the servers of one chat (a mixin of the Lobby)."""

    node = None  # this server's id in the database; None: presence is not kept
    _elsewhere = MappingProxyType({})  # (read-only until startPresence)
    admitting = True  # False while the database cannot be reached for a heartbeat
    _beats = None
    _beating = False

    def startPresence(self):
        self._elsewhere = {}  # casefolded name -> name, held by other live servers
        if self.bus is None or not hasattr(self.store, "claimName"):
            return
        self.node = uuid.uuid4().hex[:16]
        self._accountsSince = None  # the database's time of the last accounts read
        self._beats = LoopingCall(self._beat)
        self._beats.clock = self.clock
        self._beats.start(min(BEAT, self.store.NODE_TTL / 3), now=True)

    def stopPresence(self):
        if self._beats is not None and self._beats.running:
            self._beats.stop()
        if self.node is not None:  # our names are free at once, not after NODE_TTL
            return self.store.leaveCluster(self.node).addErrback(lambda failure: self.log.failure(
                "Could not free this server's names", failure))
        return None

    def mayAdmit(self):
        if self.node is not None and not self.admitting:
            raise errors.ClusterUnavailable()

    def _beat(self):
        if self._beating:
            return
        self._beating = True
        store = self.store
        d = store.heartbeat(self.node)
        d.addCallback(self._admitting)
        d.addCallback(lambda _: store.namesElsewhere(self.node))
        d.addCallback(self._heldElsewhere)
        d.addCallback(lambda _: store.reapNodes())
        d.addCallback(self._reaped)
        d.addCallback(lambda _: store.accountsChanged(self._accountsSince))
        d.addCallback(self._accountsChanged)
        d.addErrback(self._notBeating)

        def done(result):
            self._beating = False
            return result
        return d.addBoth(done)

    def _reaped(self, freed):
        if freed:
            self.log.info("Freed {count} names held by servers gone silent", count=freed)

    def _admitting(self, _):
        if not self.admitting:
            self.log.info("The database answers again: admitting users")
        self.admitting = True

    def _notBeating(self, failure):
        if self.admitting:
            self.log.failure("No heartbeat: admitting nobody until the database answers",
                             failure)
        self.admitting = False

    def _heldElsewhere(self, names):
        self._elsewhere = names

    def _accountsChanged(self, result):
        records, self._accountsSince = result
        news = [(name, hashed, created) for name, hashed, created in records
                if getattr(self.accounts.get(name), "hash", None) != hashed]
        if news:
            self.accounts.load(news)
            self.log.info("{count} accounts registered or changed on other servers",
                          count=len(news))

    def heldElsewhere(self, name) -> bool:
        return name.casefold() in self._elsewhere

    def onlineElsewhere(self) -> list:
        """The names of the users on the other servers (as of the last heartbeat)."""
        return [name for key, name in self._elsewhere.items() if key not in self.names]

    def claimed(self, user, name, old=None):
        """
        C{user} took C{name} here (instead of C{old}): hold it in the
        database. Until it answers, C{user.claiming} is a Deferred that fires
        True (the name is theirs) or False: another server's user took it in
        the moment before, and ours gives way (a first name is taken back,
        a new name becomes a guest name).
        """
        if self.node is None:
            return
        if old is not None:
            self.released(old)

        def result(free):
            user.claiming = None
            if not free:  # a live server holds it: so we know, until the next heartbeat
                self._elsewhere[name.casefold()] = name
            if free or user not in self.users or user.name != name:
                return True
            self.log.info("{name} was taken on another server just before", name=name)
            if old is None:
                self.unname(user)
            else:
                self.rename(user, self._guestName())
            return False

        def failed(failure):  # the database did not answer: keep it, as a single server would
            user.claiming = None
            self.log.failure("Could not hold {name} in the database", failure, name=name)
            return True
        user.claiming = self.store.claimName(self.node, name).addCallbacks(result, failed)

    def released(self, name):
        if self.node is not None:
            self.store.releaseName(self.node, name).addErrback(
                lambda failure: self.log.failure("Could not free {name}", failure, name=name))

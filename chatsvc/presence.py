"""
Who is online where, when several servers share one PostgreSQL database
(cluster.md, point 9): a name is held by one server at a time, in the
database, not in Redis (a Redis restart would forget it). Each server beats
every few seconds; one that stops (killed, cut off) has its names freed by
any other within L{NODE_TTL}, and one that cannot beat admits nobody new.
Accounts registered or changed on another server are loaded at each beat,
and the server-wide bans are read again (the bus tells them at once, but
may have lost them).
A mixin of L{chatsvc.lobby.Lobby}; it runs only with a store that has
presence (PostgreSQL) and a bus.
"""

from types import MappingProxyType

from twisted.internet.defer import DeferredList
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
    _beatStarted = None

    def startPresence(self):
        self._elsewhere = {}  # casefolded name -> name, held by other live servers
        self._unclaimed = {}  # user -> name: claims the database did not answer
        self._takingBack = set()  # casefolded names their owners are taking from another server
        self._lost = set()  # our users' names another server held at the last beat
        if self.bus is None or not hasattr(self.store, "claimName"):
            return
        self.node = self.me
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
            # A beat this late means the others are about to free our names:
            # admit nobody until the database answers.
            if self.admitting and self.clock.seconds() - self._beatStarted > \
                    self.store.NODE_TTL / 2:
                self.log.error("No heartbeat: admitting nobody until the database answers"
                               " (it has not answered for {seconds:.0f} s)",
                               seconds=self.clock.seconds() - self._beatStarted)
                self.admitting = False
            return
        self._beating = True
        self._beatStarted = self.clock.seconds()
        store = self.store
        d = store.heartbeat(self.node, self.portraitOfHere())
        d.addCallback(self._admitting)
        d.addCallback(lambda _: store.namesElsewhere(self.node))
        d.addCallback(self._heldElsewhere)
        d.addCallback(lambda _: store.reapNodes())
        d.addCallback(self._reaped)
        d.addCallback(lambda _: store.membersElsewhere(self.node))
        d.addCallback(self.confirmElsewhere)
        d.addCallback(lambda _: store.accountsChanged(self._accountsSince))
        d.addCallback(self._accountsChanged)
        d.addCallback(lambda _: store.serverSettings())  # what the bus may have lost
        d.addCallback(self.serverChanged)
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
            # Silent that long, this server's names may have been freed by
            # another: hold them all again (whoever took one meanwhile keeps it).
            self._unclaimed.update((user, user.name) for user in self.names.values())
        self.admitting = True
        unclaimed, self._unclaimed = self._unclaimed, {}
        claims = [self._claim(user, name, None, again=True) for user, name in unclaimed.items()
                  if user in self.users and user.name == name and
                  self.names.get(name.casefold()) is user]
        if claims:
            return DeferredList(claims).addCallback(lambda results: self.log.info(
                "Held {count} names in the database again, {kept} kept", count=len(results),
                kept=sum(1 for _, ours in results if ours)))

    def _notBeating(self, failure):
        if self.admitting:
            self.log.failure("No heartbeat: admitting nobody until the database answers",
                             failure)
        self.admitting = False

    def _heldElsewhere(self, names):
        self._elsewhere = names
        # A name of ours the database gives another server (its owner took it
        # back there, or it was given away while we were cut off) is theirs:
        # ours gives way, once two beats agree (a claim may be passing).
        lost = {key for key in names.keys() & self.names.keys()
                if self.names[key].claiming is None}
        for key in lost & self._lost:
            user = self.names.get(key)
            if user is not None and user.claiming is None:
                self.log.info("{name} is held by another server: renaming ours", name=user.name)
                self.rename(user, self._guestName())
        self._lost = lost

    def takeBack(self, name):
        """
        An account's owner takes its name back from a user of another server:
        that server disconnects them, and the name is held for the owner at once.
        """
        self._takingBack.add(name.casefold())
        stranger = self.stranger(name)
        if stranger is not None:
            self.order(stranger, "X", stranger.name, None,
                       "The owner of this name signed in elsewhere")

    def _accountsChanged(self, result):
        records, self._accountsSince = result
        news = [(name, hashed, created) for name, hashed, created in records
                if getattr(self.accounts.get(name), "hash", None) != hashed]
        if news:
            self.accounts.load(news)
            self.log.info("{count} accounts registered or changed on other servers",
                          count=len(news))

    def heldElsewhere(self, name) -> bool:
        """C{name} is held by another live server, as of the last heartbeat (the database's word)."""
        return name.casefold() in self._elsewhere

    def nameElsewhere(self, name):
        """C{name} as a user of another server has it (heard on the bus, or at a beat), or None."""
        stranger = self.stranger(name)
        return stranger.name if stranger is not None else self._elsewhere.get(name.casefold())

    def onlineElsewhere(self) -> list:
        """The names of the users on the other servers (as heard, and as of the last heartbeat)."""
        names = {key: name for key, name in self._elsewhere.items() if key not in self.names}
        for view in (self._views or {}).values():
            names.update((key, stranger.name) for key, stranger in view.users.items()
                         if key not in self.names)
        return list(names.values())

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
        self._claim(user, name, old)

    def _claim(self, user, name, old, again=False):
        """Hold C{name} for C{user}; C{again}: a name they have had a while."""
        def result(free):
            if not again:
                user.claiming = None
            if not free:  # a live server holds it: so we know, until the next heartbeat
                self._elsewhere[name.casefold()] = name
            if free or user not in self.users or user.name != name:
                return True
            self.log.info("{name} was taken on another server meanwhile", name=name)
            if old is None and not again:
                self.unname(user)
            else:
                self.rename(user, self._guestName())
            return False

        def failed(failure):
            # The database did not answer: keep it, as a single server would,
            # and hold it once the database answers again.
            if not again:
                user.claiming = None
            self._unclaimed[user] = name
            self.log.failure("Could not hold {name} in the database", failure, name=name)
            return True
        take = name.casefold() in self._takingBack
        self._takingBack.discard(name.casefold())
        d = self.store.claimName(self.node, name, take).addCallbacks(result, failed)
        if not again:  # (a name had a while is theirs meanwhile, in rooms and portraits)
            user.claiming = d
        return d

    def released(self, name):
        if self.node is not None:
            self.store.releaseName(self.node, name).addErrback(
                lambda failure: self.log.failure("Could not free {name}", failure, name=name))

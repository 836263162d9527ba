"""
The rules of the chat: who is online, which rooms exist, who is in them, and
what each of them is told. No sockets here; front doors call the Lobby and the
Lobby calls each user's L{IChatClient}.
"""

import bisect
import time
import uuid
from collections import deque

from twisted.application import service
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatsvc import errors
from chatsvc.accounts import Accounts
from chatsvc.cluster import Cluster
from chatsvc.elsewhere import Elsewhere, portrait
from chatsvc.moderation import Moderation
from chatsvc.presence import Presence
from chatsvc.signing import SigningIn
from chatsvc.events import (Arrival, Away, Joined, Left, MadeWay, Noticed, Page,
                            Quit, Renamed, Said, Signalled, Stopping, Whispered)
from chatsvc.settings import Settings
from chatsvc.rooms import RESERVED_ROOMS, ROOM_NAME, Room, roomMatcher
from chatsvc.store import DatabaseLost, Message, RoomRecord, RoomTaken
from chatsvc.text import SCREEN_NAME as _NAME, asAction, clean

RESERVED_NAMES = {"nickserv"}  # the IRC door answers as NickServ: nobody may pose as it
STOP_GRACE = 5.0  # seconds users have to receive the goodbye when the server stops


class User:
    """One connection's person: a name (once chosen), rooms and history cursors."""

    def __init__(self, mind, address=None):
        self.mind = mind
        self.address = address  # what per-address limits count; None: exempt
        self.name = None
        self.door = None  # which front door: "native", "irc", ...
        self.host = None  # the client's address as others are shown it
        self.realname = ""
        self.away = None  # what they said when they went away; None: here
        self.operator = False  # a server operator
        self.account = None  # the account signed in to (its name as registered), if any
        self.ident = None  # the username an IRC client gave, shown in masks
        self.claiming = None  # with several servers: a Deferred while the name is claimed
        self.rooms = {}  # room key -> Room
        # room key -> the seq of the oldest message this user has been sent
        # there: `history` pages back from it.
        self.cursors = {}

    def __repr__(self):
        return f"<User {self.name or '(naming)'}>"

    def masks(self):
        """The nick!ident@host forms ban masks are matched against, casefolded."""
        name = (self.name or "*").casefold()
        ident = (self.ident or name[:10]).casefold()
        for host in (self.host or "localhost", f"{self.door}.chatsvc"):
            yield f"{name}!~{ident}@{host}".casefold()
            yield f"{name}!{ident}@{host}".casefold()


class Lobby(Presence, Elsewhere, Cluster, Moderation, SigningIn, service.Service):
    """
    Holds the users online and the rooms with their history. Synchronous
    where it can be; a Deferred wherever the store is involved.
    """

    log = Logger()

    def __init__(self, store, settings: Settings = Settings(), clock=None,
                 wallclock=time.time, bus=None):
        if clock is None:
            from twisted.internet import reactor as clock
        self.store = store
        self.bus = bus  # how servers sharing the store tell each other (None: one server)
        self.settings = settings
        self.clock = clock  # durations (the server runs it on a monotonic clock)
        self._now = wallclock  # messages' time stamps
        self.users = set()  # every connection, named or not
        self._unnamed = {}  # User -> None: connections choosing a name, oldest first
        self._naming = {}  # address -> how many of its connections are choosing a name
        self.names = {}  # casefolded name -> User
        self.rooms = {}  # casefolded room name -> Room
        self._byName = []  # every room key, sorted: `list` walks it
        self._occupied = set()  # rooms with members: `list` shows them first
        self._peopled = set()  # ... and those with members on other servers
        self.me = uuid.uuid4().hex[:16]  # this server's name to the others
        self.stopping = False
        self._allGone = None  # fires once every user has gone, while stopping
        self._broadcastCall = None
        self._creating = {}  # room key being stored right now -> Deferreds of joins waiting
        self._outboxes = []  # rooms with stored messages not broadcast yet
        self._delivered = {}  # uid -> Deferred: a say to confirm once broadcast
        self._handedIn = 0  # messages given to the store so far
        self.stored = 0  # ... and stored (--metrics counts them)
        self._returned = 0  # ... and come back from it, stored or not
        self._holdUntil = None  # broadcast once this many have come back
        self._broadcasting = False  # a broadcast is due at the end of this turn
        self._guests = 0
        self._clientTags = {}  # uid -> client-only tags of a message not yet sent
        self.mostOnline = 0  # the most users online at once since the start
        self.accounts = Accounts(store, self.clock, settings)
        self.addressBans = {}  # mask -> (who set it, when, why): server-wide
        self._turns = {}  # room key -> Deferred: the change to it being stored now
        self._secret = set()  # the secret rooms

    # Start and stop

    def startService(self):
        records = self.store.open(0)  # recent messages are read on join
        self.accounts.load(self.store.loadAccounts())
        saved = self.store.loadSettings()
        for record in records:
            if record.removed:
                continue
            room = self.rooms[record.name.casefold()] = Room(record)
            if f"room/{record.id}" in saved:
                room.restore(saved[f"room/{record.id}"])
                self.noteSecret(room)
        self.restoreServer(saved.get("server", {}))
        self._byName = sorted(self.rooms)
        self.startCluster()
        self.startElsewhere()
        self.startPresence()
        self.accounts.startService()
        self.log.info("Loaded {rooms} rooms and {accounts} accounts", rooms=len(self.rooms),
                      accounts=len(self.accounts.byKey))
        super().startService()

    def stopService(self):
        """
        Refuse new messages, finish storing and sending those underway, tell
        everyone the server is stopping, and give them a moment to hear it.
        """
        super().stopService()
        self.stopping = True
        self.stopCluster()
        if self.accounts.running:
            self.accounts.stopService()
        left = self.stopPresence()
        d = self.store.close() if left is None else left.addBoth(lambda _: self.store.close())
        d.addErrback(lambda failure: self.log.failure("Could not close the store", failure))
        d.addCallback(self._flush)
        d.addCallback(lambda _: self._sendAway())
        return d

    def _flush(self, _):
        """Broadcast now what was stored and is waiting for the end of the turn."""
        if self._broadcastCall is not None and self._broadcastCall.active():
            self._broadcastCall.cancel()
            self._broadcastStored()

    def _sendAway(self):
        if not self.users:
            return None
        self._allGone = gone = Deferred()
        for user in list(self.users):
            self._tell(user, Stopping())
        timer = self.clock.callLater(STOP_GRACE, lambda: gone.called or gone.callback(None))
        return gone.addBoth(lambda _: timer.active() and timer.cancel())

    def _addRoom(self, room):
        self.rooms[room.key] = room
        self.placeStrangers(room)
        # A new list, not a changed one: a `list` being sent walks the old one.
        self._byName = self._byName[:]
        bisect.insort(self._byName, room.key)
        self._byId[room.id] = room

    # Arriving and leaving

    def connect(self, mind, address=None, host=None) -> User:
        """
        A new connection from C{address} (None: exempt from per-address
        limits): its User, or L{errors.ServerFull} when C{max_clients} users
        are online, or L{errors.TooManyNaming} when that address has its share
        of connections choosing a name. Up to C{max_clients} connections may
        be choosing a name besides; past that the oldest of the address that
        holds the most of them makes way, so no address can keep another's
        users out.
        """
        self.checkAddress(host)
        self.mayAdmit()
        limit = self.settings.max_clients
        if len(self.names) >= limit:
            raise errors.ServerFull(limit)
        slots = self.settings.login_slots_per_address
        if address is not None and slots and self._naming.get(address, 0) >= slots:
            raise errors.TooManyNaming(slots)
        if len(self._unnamed) >= limit:
            oldest = self._makingWay()
            self.disconnect(oldest)
            self._tell(oldest, MadeWay())
        user = User(mind, address)
        self.users.add(user)
        self._unnamed[user] = None
        if address is not None:
            self._naming[address] = self._naming.get(address, 0) + 1
        return user

    def _makingWay(self) -> User:
        """The oldest connection choosing a name, of the address with the most."""
        most = max(self._naming.values(), default=0)
        if most > 1:
            crowded = {a for a, n in self._naming.items() if n == most}
            for user in self._unnamed:
                if user.address in crowded:
                    return user
        return next(iter(self._unnamed))

    def _named(self, user):
        """C{user} is no longer choosing a name."""
        if self._unnamed.pop(user, 0) is None and user.address is not None:
            left = self._naming[user.address] - 1
            if left:
                self._naming[user.address] = left
            else:
                del self._naming[user.address]

    def disconnect(self, user: User, why="lost", text=""):
        """
        C{user} has gone: C{why} is "quit" (they said so, maybe with C{text})
        or "lost". Everyone who shared a room with them is told once.
        """
        others = self.neighbours(user)
        for room in list(user.rooms.values()):
            self._leave(user, room, why, announce=False)
        if user.name is not None:
            for other in others:
                self._tell(other, Quit(user.name, why, text))
            if user.claiming is None:
                self.tellElsewhere("q", user.name, why, text)
        if user.name is not None and self.names.get(user.name.casefold()) is user:
            del self.names[user.name.casefold()]
            self.released(user.name)
        self.users.discard(user)
        self._named(user)
        if self._allGone is not None and not self.users and not self._allGone.called:
            self._allGone.callback(None)

    def chooseName(self, user: User, requested: str) -> str:
        """Give C{user} the name asked for, or the next free C{Guest<N>} for ''."""
        self.mayAdmit()  # a name is one server's only while the database says so
        if len(self.names) >= self.settings.max_clients:  # it filled up meanwhile
            raise errors.ServerFull(self.settings.max_clients)
        name = clean(requested).strip()
        if not name:
            name = self._guestName()
        elif len(name) > self.settings.name_max or not _NAME.fullmatch(name):
            raise errors.InvalidName(self.settings.name_max)
        else:
            name = self._mayHave(user, name)
        user.name = name
        self.names[name.casefold()] = user
        self.claimed(user, name)
        self._arrived(user)
        self.mostOnline = max(self.mostOnline, len(self.names))
        self._named(user)
        return name

    def _arrived(self, user):
        """C{user} is online (once the name is surely theirs): the other servers hear of it."""
        def told(theirs):
            if theirs and user in self.users and user.name is not None:
                self.tellElsewhere("h", portrait(user))
            return theirs
        if user.claiming is None:
            told(True)
        else:
            user.claiming.addCallback(told)

    def unname(self, user: User):
        """Take back the first name C{user} was given (another server's user has it)."""
        if user.name is not None and self.names.get(user.name.casefold()) is user:
            del self.names[user.name.casefold()]
        user.name = None
        self._unnamed[user] = None
        if user.address is not None:
            self._naming[user.address] = self._naming.get(user.address, 0) + 1

    def whenClaimed(self, user):
        """
        None if C{user}'s name is surely theirs; else (several servers) a
        Deferred firing True once the database confirms it, False if it was
        taken back (L{unname}).
        """
        return user.claiming

    def _mayHave(self, user, name) -> str:
        """
        C{name} (as registered, if it is) if C{user} may take it: a name an
        account owns is its owner's, who takes it back from whoever holds it.
        """
        if name.casefold() in RESERVED_NAMES:
            raise errors.NameTaken(name)
        account = self.accounts.get(name)
        mine = account is not None and user.account is not None and \
            user.account.casefold() == name.casefold()
        if account is not None and not mine:
            raise errors.NameRegistered(account.name)
        holder = self.names.get(name.casefold())
        if holder is not None and holder is not user:
            if not mine:
                raise errors.NameTaken(name)
            self.kill(holder, None, "The owner of this name signed in elsewhere")
        elif holder is None and self.heldElsewhere(name):  # on another server
            if not mine:
                raise errors.NameTaken(name)
            self.takeBack(name)
        elif holder is None and mine and self.stranger(name) is not None:
            self.takeBack(name)  # (heard of on the bus, not yet seen at a heartbeat)
        return account.name if mine else name

    def _guestName(self) -> str:
        while True:
            self._guests += 1
            name = f"Guest{self._guests}"
            if name.casefold() not in self.names and not self.accounts.isRegistered(name) \
                    and not self.heldElsewhere(name):
                return name

    # Rooms

    def roomList(self, pattern=None, viewer=None):
        """
        (name, users online) for every room, or those C{pattern} matches (see
        L{roomMatcher}): the busiest first, then by name. Lazy, so a front
        door can send a list of thousands only as fast as its client reads;
        it yields None for each room that does not match, so that the door
        can bound the work of one turn however few match.
        """
        match = roomMatcher(pattern)
        if viewer is not None:  # secret rooms are listed only to those who may see them
            inner = match or (lambda key: True)

            def match(key, inner=inner):
                room = self.rooms.get(key)
                return inner(key) and (room is None or self.canSee(viewer, room))
        busy = sorted(self._occupied | self._peopled, key=lambda r: (-r.headcount(), r.key))
        keys = self._byName  # replaced, not changed, by a new room: safe to walk
        for room in busy:
            if match is None or match(room.key):
                yield room.name, room.headcount()
            else:
                yield None
        shown = set(busy)
        for key in keys:
            room = self.rooms.get(key)
            if room is None or room in shown:
                continue
            if match is None or match(key):
                yield room.name, room.headcount()  # some may have come meanwhile
            else:
                yield None

    def createRoom(self, user: User, requested: str, *, exclusive=True) -> Deferred:
        """
        Create a room and join C{user} to it once it is stored.

        @return: a Deferred firing with the L{Arrival}; it fails with
            L{errors.NotStored} if the store refuses, with nothing changed.
        """
        if self.stopping:
            raise errors.ServerStopping("The room was not created")
        self.mustBeSignedIn(user)
        name = clean(requested).strip()
        if len(name) > self.settings.room_name_max or not ROOM_NAME.fullmatch(name):
            raise errors.InvalidRoomName(self.settings.room_name_max)
        key = name.casefold()
        if key in RESERVED_ROOMS:
            raise errors.ReservedRoomName(name)
        if key in self.rooms or key in self._creating:
            existing = self.rooms.get(key)
            raise errors.RoomExists(
                existing.name if existing else name,
                [self.rooms[k].name for k in self._byName[:errors.RoomExists.SHOWN]],
                len(self.rooms))
        if len(self.rooms) + len(self._creating) >= self.settings.max_rooms:
            raise errors.TooManyRooms(self.settings.max_rooms)
        record = RoomRecord(None, name, self._now())  # the store gives it an id
        self._creating[key] = []  # a second create of this name is refused meanwhile
        room = Room(record)
        if user.account is not None:  # its owner, kept with it
            room.owner = user.account.casefold()

        def stored(kept):
            waiting = self._creating.pop(key)
            room.id = kept.id
            self._addRoom(room)
            self.roomAdded(room)
            self.log.info("{user} created room {room}", user=user.name, room=name)
            joined = self.join(user, name, exclusive=exclusive) if user in self.users \
                else succeed(None)

            def thenTheOthers(result):  # who asked to join it meanwhile, after its creator
                for d in waiting:
                    d.callback(None)
                return result
            return joined.addBoth(thenTheOthers)

        def failed(failure):
            for d in self._creating.pop(key):
                d.errback(errors.NoSuchRoom(name))
            if failure.check(RoomTaken):  # by another server, just now
                def exists(_):
                    if not exclusive and key in self.rooms:  # IRC: joining makes or joins
                        return self.join(user, name, exclusive=False)
                    raise errors.RoomExists(name, [self.rooms[k].name for k in
                                                   self._byName[:errors.RoomExists.SHOWN]],
                                            len(self.rooms))
                return self.lookElsewhere().addCallback(exists)
            self.log.failure("Could not store room {room}", failure, room=name)
            raise errors.NotStored(f"The room {name}", "it was not created",
                                   self._notStoredBecause(failure))

        settings = room.settings() if room.owner is not None else None
        return self.store.addRoom(record, settings).addCallbacks(stored, failed)

    def join(self, user: User, requested: str, *, exclusive=True, key=None,
             looked=False) -> Deferred:
        """
        Put C{user} in a room (C{key}: the password of a +k room); with
        C{exclusive} (the native front door), out of any other room first.
        The Deferred fires with the L{Arrival}, or None if they were there
        already (or left meanwhile). The room's rules may refuse them.
        """
        self.mustBeSignedIn(user)
        folded = clean(requested).strip().casefold()
        room = self.rooms.get(folded)
        if room is None and folded in self._creating:  # it will exist once stored
            waiting = Deferred()
            self._creating[folded].append(waiting)
            return waiting.addCallback(
                lambda _: self.join(user, requested, exclusive=exclusive, key=key))
        if room is None and self.bus is not None and not looked:
            # Another server may have created it a moment ago.
            return self.lookElsewhere().addCallback(lambda _: self.join(
                user, requested, exclusive=exclusive, key=key, looked=True))
        if room is None:
            raise errors.NoSuchRoom(clean(requested).strip())
        if room.key in user.rooms:
            return succeed(None)
        self.admit(user, room, key)
        if room.recent is not None:
            return succeed(self._enter(user, room, exclusive))
        return self._readRecent(room).addCallback(
            lambda _: self._enter(user, room, exclusive))

    def _enter(self, user, room, exclusive):
        if user not in self.users or room.key in user.rooms or room.key not in self.rooms:
            self._forgetIfEmpty(room)  # read for someone who has gone meanwhile
            return None
        if exclusive:
            for other in list(user.rooms.values()):
                self._leave(user, other, "moved")
        others = tuple(u.name for u in room.everyone())
        if not room.members:
            self.hereNow(room)  # its messages from other servers, from now on
        room.broadcast(Joined(room.name, user.name))
        self.entered(user, room)
        room.members[user] = None
        self._occupied.add(room)
        user.rooms[room.key] = room
        self.tellElsewhere("j", room.id, portrait(user), room.roleOf(user))
        # Replay comes from memory (read from the store when the first member
        # came): a join costs the same whatever the history's size.
        replay = tuple(room.recent)
        user.cursors[room.key] = replay[0].seq if replay else room.delivered + 1
        return Arrival(room.name, others, replay, user.cursors[room.key] - 1, room.topic)

    def _readRecent(self, room) -> Deferred:
        """Fill C{room.recent} from the store; every join waiting for it shares one read."""
        def empty():  # nothing to read
            room.recent = deque(maxlen=replay)
            return succeed(None)

        waiter = Deferred()
        if room.loading is not None:
            room.loading.append(waiter)
            return waiter
        room.loading = [waiter]
        replay = self.settings.history_replay

        def read():
            newest = room.delivered
            low = max(1, newest - replay + 1)
            return self.store.page(room.id, low, newest + 1).addCallback(got, newest)

        def got(messages, newest):
            if room.delivered != newest:  # more were sent meanwhile: read again
                return read()
            if room.recent is None:
                room.recent = deque(messages, maxlen=replay)

        def done(result):
            waiting, room.loading = room.loading, None
            failed = isinstance(result, Failure)
            if failed:
                self.log.failure("Could not read {room}'s history", result, room=room.name)
            for d in waiting:
                if failed:
                    d.errback(result)
                else:
                    d.callback(None)

        caughtUp = self.firstHere(room)  # with other servers: subscribe, then the last seq
        if caughtUp is not None:
            d = caughtUp.addCallback(lambda _: read() if replay and room.delivered else empty())
        elif replay and room.delivered:
            d = read()
        else:
            d = empty()
        d.addBoth(done)
        return waiter.addErrback(lambda _: self._unreadable(room))

    @staticmethod
    def _unreadable(room):
        raise errors.NotRead(room.name)

    def leave(self, user: User, room, text=""):
        self._leave(user, room, "left", text)

    def _leave(self, user, room, why, text="", announce=True):
        room.members.pop(user, None)
        room.operators.discard(user)
        room.voiced.discard(user)
        user.rooms.pop(room.key, None)
        user.cursors.pop(room.key, None)
        if not room.members:
            self._occupied.discard(room)
            self._forgetIfEmpty(room)
            self.lastHereLeft(room)
        if announce:
            room.broadcast(Left(room.name, user.name, why, text))
            self.tellElsewhere("l", room.id, user.name, why, text, None)

    def neighbours(self, user: User) -> dict:
        """Everyone who shares a room with C{user}, each once (an ordered set)."""
        others = {}
        for room in user.rooms.values():
            others.update(room.members)
        others.pop(user, None)
        return others

    @staticmethod
    def _forgetIfEmpty(room):
        """Keep no recent messages for a room nobody is in: read them again when someone comes."""
        if not room.members and not room.outbox and room.loading is None:
            room.recent = None

    # Talking

    def say(self, user: User, room: Room, text: str, uid=None, tags=None,
            action=False) -> Deferred:
        """
        Store a message, then send it to everyone in the room, the sender
        included: their copy is the acknowledgement that it is stored. The
        Deferred fires with the message once it has been sent.
        """
        self.maySpeak(user, room)
        if self.stopping:
            raise errors.ServerStopping()
        text = clean(text)
        if not text.strip():
            raise errors.EmptyMessage()
        if action:  # "/me waves"
            text = asAction(text)
        # The store numbers it, at commit: seqs are the order everyone sees.
        message = Message(room.id, None, uid or self.newUid(), user.name, text,
                          self.now())
        if tags:  # relayed with the message when it is sent, not stored
            self._clientTags[message.uid] = tags
        d = self.store.addMessage(message)
        self._handedIn += 1
        d.addCallbacks(self._stored, self._notStored, (room, message),
                       errbackArgs=(room, message))
        return d

    def _stored(self, message, room, _):
        self.stored += 1
        delivered = self._delivered[message.uid] = Deferred()
        self.accept(room, message)  # in seq order with every other server's
        self.published(room, (message,))
        self._returned += 1
        self._release()
        return delivered

    def _release(self):
        # A broadcast costs one write per member however many messages it
        # carries. So what is stored waits for the messages that were already
        # waiting for the store when it came back (the next commit, unless
        # thousands wait), and goes out with them: under load one broadcast
        # carries several commits' worth. Counted, not numbered: a store may
        # fail a message at once, before earlier ones come back.
        if self._holdUntil is None:
            self._holdUntil = self._handedIn
        if self._returned >= self._holdUntil:
            self._holdUntil = None
            if self._outboxes and not self._broadcasting:
                self._broadcasting = True  # at the end of this turn, with what else it stores
                self._broadcastCall = self.clock.callLater(0, self._broadcastStored)

    def _broadcastStored(self):
        self._broadcasting = False
        if self._toPublish:
            self.publishStored()
        rooms, self._outboxes = self._outboxes, []
        confirmed = []
        for room in rooms:
            messages, room.outbox = tuple(room.outbox), []
            room.delivered = messages[-1].seq
            if self._delivered:
                confirmed.extend(m for m in messages if m.uid in self._delivered)
            if room.members:
                room.recent.extend(messages)
                tags = {}
                if self._clientTags:
                    for m in messages:
                        if m.uid in self._clientTags:
                            tags[m.uid] = self._clientTags.pop(m.uid)
                room.broadcast(Said(room.name, messages, tags))
            else:  # all left while it was being stored: the store has it
                for m in messages:
                    self._clientTags.pop(m.uid, None)
                self._forgetIfEmpty(room)
        for message in confirmed:  # what was said here: its sender hears it is sent
            self._delivered.pop(message.uid).callback(message)

    @staticmethod
    def _notStoredBecause(failure):
        """What to tell the sender: try again, or nothing will be stored for now."""
        return errors.NotStored.LOST if failure.check(DatabaseLost) else errors.NotStored.AGAIN

    def _notStored(self, failure, room, message):
        self._clientTags.pop(message.uid, None)
        self._returned += 1
        self._release()
        if getattr(failure.value, "unknown", False):  # sent, never confirmed (PostgreSQL)
            raise errors.NotConfirmed()
        raise errors.NotStored(then=self._notStoredBecause(failure))

    def now(self) -> float:
        """A time stamp, to the millisecond: what clients are shown is what is kept."""
        return round(self._now(), 3)

    @staticmethod
    def newUid() -> str:
        return uuid.uuid4().hex

    def whisper(self, user: User, name: str, text: str, notice=False, tags=None,
                action=False) -> Whispered:
        """
        A private message (or notice) to one online user, wherever they are.
        Not stored. The sender's front door shows their own copy.
        """
        self.mustBeSignedIn(user)
        recipient = self.names.get(name.casefold())
        elsewhere = self.nameElsewhere(name) if recipient is None else None
        if recipient is None and elsewhere is None:
            raise errors.NoSuchUser(clean(name))
        text = clean(text)
        if not text.strip():
            raise errors.EmptyMessage()
        if action:
            text = asAction(text)
        event = Whispered(user.name, recipient.name if recipient else elsewhere, text, notice,
                          self.now(), self.newUid(), tags or {})
        if recipient is None:  # on another server
            self.whisperElsewhere(event)
        elif recipient is not user:
            self._tell(recipient, event)
        return event

    def notice(self, user: User, room: Room, text: str, tags=None) -> Noticed:
        """
        A notice to a room (IRC's NOTICE): the others there now are shown
        it; it is not kept in the history. The sender's door shows their copy.
        """
        self.maySpeak(user, room)
        text = clean(text)
        if not text.strip():
            raise errors.EmptyMessage()
        event = Noticed(room.name, user.name, text, self.now(), self.newUid(), tags or {})
        room.broadcast(event, exclude=user)
        return event

    def setAway(self, user: User, text=None):
        """C{user} is away (saying C{text}), or back (None); their neighbours hear it."""
        text = clean(text).strip() if text else None
        if text == user.away:
            return
        user.away = text or None
        for other in self.neighbours(user):
            self._tell(other, Away(user.name, user.away))
        self.tellElsewhere("a", user.name, user.away)

    def rename(self, user: User, requested: str) -> str:
        """Give C{user} a new name; they and everyone who shares a room with them are told."""
        name = clean(requested).strip()
        if len(name) > self.settings.name_max or not _NAME.fullmatch(name):
            raise errors.InvalidName(self.settings.name_max)
        old = user.name
        if name == old:
            return name
        name = self._mayHave(user, name)
        del self.names[old.casefold()]
        user.name = name
        self.names[name.casefold()] = user
        self.claimed(user, name, old)
        event = Renamed(old, name)
        for other in (user, *self.neighbours(user)):
            self._tell(other, event)
        self.tellElsewhere("r", old, name)
        self.log.info("{old} is now {new}", old=old, new=name)
        return name

    def signal(self, user: User, room=None, name=None, tags=None):
        """
        A message with nothing to keep (IRCv3 TAGMSG) to C{room}'s others or
        to C{name}: shown to those whose doors show such things.
        """
        stamp, uid = self.now(), self.newUid()
        if room is not None:
            if room.key not in user.rooms:
                raise errors.NotInRoom("talk there")
            self.maySpeak(user, room)  # the room's rules hold for a reaction too
            event = Signalled(room.name, user.name, None, stamp, uid, tags or {})
            room.broadcast(event, exclude=user)
            return event
        self.mustBeSignedIn(user)
        recipient = self.names.get(name.casefold())
        if recipient is None:
            raise errors.NoSuchUser(clean(name))
        event = Signalled(None, user.name, recipient.name, stamp, uid, tags or {})
        if recipient is not user:
            self._tell(recipient, event)
        return event

    def _tell(self, user, event):
        """Deliver C{event} to one user; a broken client is disconnected, not raised."""
        try:
            user.mind.deliver(event)
        except Exception:
            self.log.failure("Delivery to {user} failed", user=user)
            user.mind.disconnect("delivery failed")

    def history(self, user: User, room: Room, count=None) -> Deferred:
        """
        The C{count} messages before the oldest one C{user} has been sent in
        C{room}, as a L{Page}; the next call pages further back.
        """
        if count is None:
            count = self.settings.history_page
        if not 1 <= count <= self.settings.history_page_max:
            raise errors.BadHistoryCount(self.settings.history_page_max)
        if room.key not in user.rooms:
            raise errors.NotInRoom("read its history")
        cursor = user.cursors[room.key]
        low = max(1, cursor - count)
        if low >= cursor:
            return succeed(Page(room.name, [], 0))
        # Move the cursor now, so a second request pages on from here
        # even before the first one's rows arrive.
        user.cursors[room.key] = low
        d = self.store.page(room.id, low, cursor)
        return d.addCallback(lambda messages: Page(room.name, messages, low - 1))

    # Reading history by position (IRCv3 CHATHISTORY)

    def _readable(self, user, room):
        if room.key not in user.rooms:
            raise errors.NotInRoom("read its history")

    def messagesBetween(self, user: User, room: Room, low: int, high: int) -> Deferred:
        """The messages of C{room} with C{low <= seq < high} that have been sent, oldest first."""
        self._readable(user, room)
        low, high = max(1, low), min(high, room.delivered + 1)
        if low >= high:
            return succeed([])
        return self.store.page(room.id, low, high)

    def seqOf(self, user: User, room: Room, uid: str) -> Deferred:
        """The seq of the message with C{uid} in C{room}, or None."""
        self._readable(user, room)
        return self.store.seqOf(room.id, uid).addCallback(
            lambda seq: seq if seq is not None and seq <= room.delivered else None)

    def seqAt(self, user: User, room: Room, timestamp: float) -> Deferred:
        """The seq of the first message of C{room} stamped at or after C{timestamp}."""
        self._readable(user, room)
        return self.store.seqAt(room.id, timestamp).addCallback(
            lambda seq: room.delivered + 1 if seq is None else min(seq, room.delivered + 1))

    def online(self) -> list:
        """The names of everyone online (on every server), by name."""
        return sorted([*(u.name for u in self.names.values()), *self.onlineElsewhere()],
                      key=str.casefold)

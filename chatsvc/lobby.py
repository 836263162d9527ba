"""
The rules of the chat: who is online, which rooms exist, who is in them, and
what each of them is told. No sockets here; front doors call the Lobby and the
Lobby calls each user's L{IChatClient}.
"""

import re
import uuid
from collections import deque

from twisted.application import service
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from chatsvc import errors
from chatsvc.events import Arrival, Joined, Left, MadeWay, Page, Said, Whispered
from chatsvc.settings import Settings
from chatsvc.store import Message, RoomRecord
from chatsvc.text import clean

_NAME = re.compile(r"[A-Za-z0-9_-]+")
_ROOM_NAME = re.compile(r"[A-Za-z0-9_.-]+")


class User:
    """One connection's person: a name (once chosen), rooms and history cursors."""

    def __init__(self, mind):
        self.mind = mind
        self.name = None
        self.rooms = {}  # room key -> Room
        # room key -> the seq of the oldest message this user has been sent
        # there: `history` pages back from it.
        self.cursors = {}

    def __repr__(self):
        return f"<User {self.name or '(naming)'}>"


class Room:
    """A room, its members and its newest messages (kept for join replay)."""

    log = Logger()

    def __init__(self, record: RoomRecord, replay: int):
        self.id = record.id
        self.name = record.name
        self.key = record.name.casefold()
        self.created = record.created
        self.members = {}  # User -> None: a set that keeps join order
        self.nextSeq = record.last_seq + 1
        self.recent = deque(record.recent, maxlen=replay)
        self.delivered = record.last_seq  # the seq of the newest message broadcast
        self.outbox = []  # stored this turn, to be broadcast at its end

    def broadcast(self, event, exclude=None):
        """
        Deliver C{event} to each member. A member whose delivery fails is
        disconnected afterwards and never stops the others from hearing it.
        """
        failed = []
        for user in self.members:
            if user is exclude:
                continue
            try:
                user.mind.deliver(event)
            except Exception:
                self.log.failure("Delivery to {user} failed", user=user)
                failed.append(user)
        for user in failed:
            user.mind.disconnect("delivery failed")


class Lobby(service.Service):
    """
    Holds the users online and the rooms with their history. Synchronous
    where it can be; a Deferred wherever the store is involved.
    """

    log = Logger()

    def __init__(self, store, settings: Settings = Settings(), clock=None):
        if clock is None:
            from twisted.internet import reactor as clock
        self.store = store
        self.settings = settings
        self.clock = clock  # time stamps here; timeouts and flood control in front doors
        self._now = clock.seconds
        self.users = set()  # every connection, named or not
        self._unnamed = {}  # User -> None: connections choosing a name, oldest first
        self.names = {}  # casefolded name -> User
        self.rooms = {}  # casefolded room name -> Room
        self._creating = set()  # room keys being stored right now
        self._outboxes = []  # rooms with stored messages not broadcast yet
        self._delivered = []  # (Deferred, message): says to confirm once broadcast
        self._handedIn = 0  # messages given to the store so far
        self._returned = 0  # ... and come back from it, stored or not
        self._holdUntil = None  # broadcast once this many have come back
        self._broadcasting = False  # a broadcast is due at the end of this turn
        self._nextRoomId = 1
        self._guests = 0

    # Start and stop

    def startService(self):
        for record in self.store.open(self.settings.history_replay):
            self._addRoom(Room(record, self.settings.history_replay))
        self.log.info("Loaded {rooms} rooms", rooms=len(self.rooms))
        super().startService()

    def stopService(self):
        super().stopService()
        return self.store.close()

    def _addRoom(self, room):
        self.rooms[room.key] = room
        self._nextRoomId = max(self._nextRoomId, room.id + 1)

    # Arriving and leaving

    def connect(self, mind) -> User:
        """
        A new connection: its User, or L{errors.ServerFull} when C{max_clients}
        users are online. Up to as many connections may be choosing a name
        besides; past that the one that has waited longest makes way, so
        connections that never choose a name cannot keep users out.
        """
        limit = self.settings.max_clients
        if len(self.names) >= limit:
            raise errors.ServerFull(limit)
        if len(self._unnamed) >= limit:
            oldest = next(iter(self._unnamed))
            self.disconnect(oldest)
            self._tell(oldest, MadeWay())
        user = User(mind)
        self.users.add(user)
        self._unnamed[user] = None
        return user

    def disconnect(self, user: User):
        for room in list(user.rooms.values()):
            self._leave(user, room, "quit")
        if user.name is not None and self.names.get(user.name.casefold()) is user:
            del self.names[user.name.casefold()]
        self.users.discard(user)
        self._unnamed.pop(user, None)

    def chooseName(self, user: User, requested: str) -> str:
        """Give C{user} the name asked for, or the next free C{Guest<N>} for ''."""
        if len(self.names) >= self.settings.max_clients:  # it filled up meanwhile
            raise errors.ServerFull(self.settings.max_clients)
        name = clean(requested).strip()
        if not name:
            name = self._guestName()
        elif len(name) > self.settings.name_max or not _NAME.fullmatch(name):
            raise errors.InvalidName(self.settings.name_max)
        elif name.casefold() in self.names:
            raise errors.NameTaken(name)
        user.name = name
        self.names[name.casefold()] = user
        self._unnamed.pop(user, None)
        return name

    def _guestName(self) -> str:
        while True:
            self._guests += 1
            name = f"Guest{self._guests}"
            if name.casefold() not in self.names:
                return name

    # Rooms

    def roomList(self) -> list:
        """(name, users online) for every room, by name."""
        return sorted(((r.name, len(r.members)) for r in self.rooms.values()),
                      key=lambda pair: pair[0].casefold())

    def createRoom(self, user: User, requested: str, *, exclusive=True) -> Deferred:
        """
        Create a room and join C{user} to it once it is stored.

        @return: a Deferred firing with the L{Arrival}; it fails with
            L{errors.NotStored} if the store refuses, with nothing changed.
        """
        name = clean(requested).strip()
        if len(name) > self.settings.room_name_max or not _ROOM_NAME.fullmatch(name):
            raise errors.InvalidRoomName(self.settings.room_name_max)
        key = name.casefold()
        if key in self.rooms or key in self._creating:
            existing = self.rooms.get(key)
            raise errors.RoomExists(existing.name if existing else name,
                                    [n for n, _ in self.roomList()])
        record = RoomRecord(self._nextRoomId, name, self._now())
        self._nextRoomId += 1
        self._creating.add(key)  # a second create of this name is refused meanwhile

        def stored(_):
            self._creating.discard(key)
            self._addRoom(Room(record, self.settings.history_replay))
            self.log.info("{user} created room {room}", user=user.name, room=name)
            if user in self.users:
                return self.join(user, name, exclusive=exclusive)

        def failed(failure):
            self._creating.discard(key)
            self.log.failure("Could not store room {room}", failure, room=name)
            raise errors.NotStored(f"The room {name}", "it was not created")

        return self.store.addRoom(record).addCallbacks(stored, failed)

    def join(self, user: User, requested: str, *, exclusive=True):
        """
        Put C{user} in a room; with C{exclusive} (the native front door), out of
        any other room first. Returns the L{Arrival}, or None if already there.
        """
        room = self.rooms.get(clean(requested).strip().casefold())
        if room is None:
            raise errors.NoSuchRoom(clean(requested).strip())
        if room.key in user.rooms:
            return None
        if exclusive:
            for other in list(user.rooms.values()):
                self._leave(user, other, "moved")
        others = tuple(u.name for u in room.members)
        room.broadcast(Joined(room.name, user.name))
        room.members[user] = None
        user.rooms[room.key] = room
        # Replay comes from memory: a join costs the same whatever the history's size.
        replay = tuple(room.recent)
        user.cursors[room.key] = replay[0].seq if replay else room.delivered + 1
        return Arrival(room.name, others, replay, user.cursors[room.key] - 1)

    def leave(self, user: User, room):
        self._leave(user, room, "left")

    def _leave(self, user, room, why):
        room.members.pop(user, None)
        user.rooms.pop(room.key, None)
        user.cursors.pop(room.key, None)
        room.broadcast(Left(room.name, user.name, why))

    # Talking

    def say(self, user: User, room: Room, text: str) -> Deferred:
        """
        Store a message, then send it to everyone in the room, the sender
        included: their copy is the acknowledgement that it is stored. The
        Deferred fires with the message once it has been sent.
        """
        if room.key not in user.rooms:
            raise errors.NotInRoom("talk there")
        text = clean(text)
        if not text.strip():
            raise errors.EmptyMessage()
        message = Message(room.id, room.nextSeq, uuid.uuid4().hex, user.name, text,
                          self._now())
        room.nextSeq += 1
        d = self.store.addMessage(message)
        self._handedIn += 1
        d.addCallbacks(self._stored, self._notStored, (room, message))
        return d

    def _stored(self, _, room, message):
        if not room.outbox:
            self._outboxes.append(room)
        room.outbox.append(message)
        delivered = Deferred()
        self._delivered.append((delivered, message))
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
                self.clock.callLater(0, self._broadcastStored)

    def _broadcastStored(self):
        self._broadcasting = False
        rooms, self._outboxes = self._outboxes, []
        for room in rooms:
            messages, room.outbox = tuple(room.outbox), []
            room.recent.extend(messages)
            room.delivered = messages[-1].seq
            room.broadcast(Said(room.name, messages))
        delivered, self._delivered = self._delivered, []
        for d, message in delivered:
            d.callback(message)

    def _notStored(self, failure):
        self._returned += 1
        self._release()
        raise errors.NotStored()

    def whisper(self, user: User, name: str, text: str) -> Whispered:
        """A private message to one online user, wherever they are. Not stored."""
        recipient = self.names.get(name.casefold())
        if recipient is None:
            raise errors.NoSuchUser(clean(name))
        text = clean(text)
        if not text.strip():
            raise errors.EmptyMessage()
        event = Whispered(user.name, recipient.name, text)
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

    def online(self) -> list:
        """The names of everyone online, by name."""
        return sorted((u.name for u in self.names.values()), key=str.casefold)

"""
Several servers, one chat: how a Lobby keeps each room's messages in the
order of their seqs, once each, with no gaps, whichever server stored them
(cluster.md, points 4 to 7). The store numbers every message at commit; the
server that stored it publishes it on the bus; every server delivers a
room's messages in seq order, holds one that comes early, drops one it has,
and fills a hole (a publish lost while the bus was down, a server killed
between commit and publish) from the store. A mixin of L{chatsvc.lobby.Lobby};
with no bus (one server) only the ordering runs.
"""

import dataclasses
import json

from twisted.internet.task import LoopingCall

from chatsvc.elsewhere import PEOPLE
from chatsvc.events import ModeChanged, TopicChanged, Whispered

from chatsvc.rooms import Room
from chatsvc.store import Message

GAP_GRACE = 0.05  # seconds a hole may stay open while the bus is up, before the store fills it
POSITION_INTERVAL = 1.0  # seconds between checks of every occupied room's last seq
# ... while the bus is down, when they are how other servers' messages come
# (cluster.md 6): a talker's listeners wait this long, not a second.
BUS_DOWN_INTERVAL = 0.1
ROOMS = "rooms"  # the channel where servers say a room was created
WHISPERS = "whispers"  # ... and pass on private messages to users on other servers
SERVER = "server"  # ... and the server-wide settings (address bans) as just stored


def roomChannel(room_id) -> str:
    return f"room/{room_id}"


def encodeMessages(messages) -> bytes:
    return json.dumps({"m": [[m.room_id, m.seq, m.uid, m.sender, m.text, m.timestamp]
                             for m in messages]}, separators=(",", ":")).encode("utf-8")


def decodeMessages(payload: bytes) -> list:
    return [Message(*row) for row in json.loads(payload)["m"]]


# What a room's operators changed, as the other servers' members are told it.
_EVENTS = {"topic": TopicChanged, "modes": ModeChanged}


def encodeSettings(room, events) -> bytes:
    told = []
    for event in events:
        kind = next(k for k, t in _EVENTS.items() if type(event) is t)
        told.append([kind, dataclasses.astuple(event)])
    return json.dumps({"s": room.settings(), "e": told}, separators=(",", ":")).encode()


def decodeSettings(document) -> tuple:
    events = []
    for kind, fields in document.get("e", ()):
        if kind == "modes":
            room, by, changes = fields
            events.append(ModeChanged(room, by, tuple(tuple(c) for c in changes)))
        else:
            events.append(_EVENTS[kind](*fields))
    return document["s"], events


class Cluster:
    """Ordering, publishing and filling gaps (a mixin of the Lobby)."""

    bus = None
    _positions = None  # the LoopingCall of the position check
    _checking = False  # a position check is reading the store

    def startCluster(self):
        self._toPublish = {}  # room -> its messages stored here this turn
        self._byId = {room.id: room for room in self.rooms.values()}
        if self.bus is None:
            return
        self._positions = LoopingCall(self.checkPositions)
        self._positions.clock = self.clock
        self._positions.start(POSITION_INTERVAL, now=False)
        self.bus.received = self._busReceived
        self.bus.connected = self._busConnected
        self.bus.lost = lambda: self._checkEvery(BUS_DOWN_INTERVAL)
        self.bus.subscribe(ROOMS)
        self.bus.subscribe(WHISPERS)
        self.bus.subscribe(SERVER)

    def _busConnected(self):
        self._checkEvery(POSITION_INTERVAL)
        return self.checkPositions()  # what was published while it was down

    def _checkEvery(self, interval):
        if self._positions is None or not self._positions.running:
            return  # stopped
        if self._positions.interval != interval:
            self._positions.stop()
            self._positions.start(interval, now=False)

    def stopCluster(self):
        if self._positions is not None and self._positions.running:
            self._positions.stop()

    # In seq order, once each

    def accept(self, room, message):
        """
        A stored message of C{room}, from this server or another: queued for
        the end of the turn if it is the next one, held if it is early,
        dropped if it was delivered already.
        """
        if message.seq <= room.queued:
            return
        if message.seq > room.queued + 1:
            room.ahead[message.seq] = message
            self._mindTheGap(room)
            return
        if not room.outbox:
            self._outboxes.append(room)
        room.outbox.append(message)
        room.queued = message.seq
        while room.ahead and room.queued + 1 in room.ahead:
            room.queued += 1
            room.outbox.append(room.ahead.pop(room.queued))

    def _mindTheGap(self, room):
        if room.gapTimer is None and not room.filling:
            grace = GAP_GRACE if self.bus is not None and self.bus.isConnected else 0
            room.gapTimer = self.clock.callLater(grace, self._fillGap, room)

    def _fillGap(self, room):
        room.gapTimer = None
        if room.ahead:
            self._fill(room, room.queued + 1, min(room.ahead))

    def _fill(self, room, low, high):
        """Read C{low <= seq < high} of C{room} from the store, and deliver them in order."""
        if room.filling or low >= high:
            return
        room.filling = True

        def read(messages):
            for message in messages:
                self.accept(room, message)
            self._broadcastSoon()

        def done(result):
            room.filling = False
            if room.ahead:  # another hole, or this one not filled yet
                self._mindTheGap(room)
            return result

        d = self.store.page(room.id, low, high).addCallback(read).addBoth(done)
        d.addErrback(lambda failure: self.log.failure(
            "Could not fill the gap in {room}", failure, room=room.name))

    def _broadcastSoon(self):
        if self._outboxes and not self._broadcasting and self._holdUntil is None:
            self._broadcasting = True
            self._broadcastCall = self.clock.callLater(0, self._broadcastStored)

    # The bus

    def published(self, room, messages):
        """Messages stored here this turn: one publish per room, at the end of the turn."""
        if self.bus is not None:
            self._toPublish.setdefault(room, []).extend(messages)

    def publishStored(self):
        toPublish, self._toPublish = self._toPublish, {}
        for room, messages in toPublish.items():
            self.bus.publish(roomChannel(room.id), encodeMessages(messages))

    def settingsChanged(self, room, events):
        """How C{room} is run changed here (stored already): tell the other servers."""
        if self.bus is not None:
            self.bus.publish(roomChannel(room.id), encodeSettings(room, events))

    def whisperElsewhere(self, event):
        """A private message to a user on another server: the server that has them tells them."""
        if self.bus is not None:
            self.bus.publish(WHISPERS, json.dumps(dataclasses.asdict(event)).encode("utf-8"))

    def _whispered(self, payload):
        try:
            event = Whispered(**json.loads(payload))
        except (ValueError, TypeError):
            return self.log.warn("Ignored a private message on the bus")
        recipient = self.names.get(event.recipient.casefold())
        if recipient is not None:
            self._tell(recipient, event)

    def _busReceived(self, channel, payload):
        if channel == ROOMS:
            return self.checkPositions()
        if channel == WHISPERS:
            return self._whispered(payload)
        if channel == PEOPLE:
            return self._heardOfPeople(payload)
        if channel == SERVER:
            try:
                saved = json.loads(payload)
            except ValueError:
                return self.log.warn("Ignored a message on the bus's {channel}", channel=SERVER)
            return self.serverChanged(saved)
        try:
            room = self._byId.get(int(channel.split("/", 1)[1]))
            document = json.loads(payload)
            if "s" in document:
                settings, events = decodeSettings(document)
            else:
                messages = decodeMessages(payload)
        except (ValueError, KeyError, IndexError, TypeError):
            self.log.warn("Ignored a message on the bus's {channel}", channel=channel)
            return
        if room is None:
            return
        if "s" in document:  # another server's operator changed the room: as stored there
            room.restore(settings)
            self.noteSecret(room)
            for event in events:
                room.broadcast(event)
            return
        for message in messages:
            if message.room_id == room.id:
                self.accept(room, message)
        self._broadcastSoon()

    def tellServers(self, saved):
        """The server-wide settings, as just stored: the other servers apply them at once."""
        if self.bus is not None:
            self.bus.publish(SERVER, json.dumps(saved, sort_keys=True).encode())

    def roomAdded(self, room):
        self._byId[room.id] = room
        if self.bus is not None:
            self.bus.publish(ROOMS, str(room.id).encode("ascii"))

    def firstHere(self, room):
        """
        The first member on this server is coming into C{room}: subscribe,
        then (cluster.md 7) learn its last seq from the store, before its
        recent messages are read; seqs drop whatever the two overlap.
        """
        if self.bus is None:
            return None
        d = self.bus.subscribe(roomChannel(room.id))  # fires once the bus has it
        d.addCallback(lambda _: self.store.roomSettings(room.id))
        d.addCallback(self._settingsNow, room)
        d.addCallback(lambda _: self.store.lastSeqs([room.id]))
        return d.addCallback(self._caughtUp, [room])

    def _settingsNow(self, settings, room):
        """How C{room} is run now (other servers' operators may have changed it meanwhile)."""
        if settings is not None and not room.members:
            room.restore(settings)
            self.noteSecret(room)

    def hereNow(self, room):
        """C{room} has a member on this server (again): hear of its messages."""
        if self.bus is not None:
            self.bus.subscribe(roomChannel(room.id))

    def lastHereLeft(self, room):
        if self.bus is not None:
            self.bus.unsubscribe(roomChannel(room.id))

    def _caughtUp(self, lasts, rooms):
        for room in rooms:
            last = lasts.get(room.id, 0)
            if not room.members and not room.outbox and last > room.queued:
                room.queued = room.delivered = last  # nobody here to tell of what came before
                room.ahead = {seq: m for seq, m in room.ahead.items() if seq > last}

    # The position check: a publish lost is found within a second

    def checkPositions(self):
        """Read the last seq of every room with members here, and fill any tail missing."""
        if self._checking or self.bus is None:
            return
        self._checking = True
        rooms = [room for room in self._occupied if room.key in self.rooms]
        d = self.lookElsewhere()
        if rooms:
            d.addCallback(lambda _: self.store.lastSeqs([room.id for room in rooms]))
            d.addCallback(self._behind, rooms)

        def done(result):
            self._checking = False
            return result
        d.addBoth(done).addErrback(lambda failure: self.log.failure(
            "Could not check the rooms' positions", failure))
        return d

    def lookElsewhere(self):
        """The rooms other servers created that this one does not know yet (Deferred)."""
        return self.store.roomsAfter(max(self._byId, default=0)).addCallback(
            self._roomsCreatedElsewhere)

    def _behind(self, lasts, rooms):
        for room in rooms:
            last = lasts.get(room.id, 0)
            if last > room.queued and not room.ahead:
                self._fill(room, room.queued + 1, last + 1)
            elif room.ahead:
                self._mindTheGap(room)

    def _roomsCreatedElsewhere(self, records):
        for record in records:
            if record.removed or record.id in self._byId:
                continue
            if record.name.casefold() in self.rooms or record.name.casefold() in self._creating:
                continue
            room = Room(record)
            self._addRoom(room)
            self._byId[room.id] = room

"""An in-memory IHistoryStore whose Deferreds fire at once, for unit tests."""

import json
from dataclasses import replace

from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from chatsvc.store import IHistoryStore, RoomRecord, RoomTaken


@implementer(IHistoryStore)
class MemoryStore:
    def __init__(self):
        self.rooms = {}  # id -> RoomRecord
        self.messages = {}  # room id -> [Message]
        self.failing = False  # make every write fail, as a full disk would (or with this error)
        self.holding = None  # a list: hold writes here until released
        self.closed = False
        self.accounts = {}  # key -> (name, hash, created)
        self.settings = {}  # scope -> dict
        self.removed = set()  # ids of rooms removed with their history kept
        self.lastId = 0  # the highest room id given: never given again

    def open(self, recent):
        return [RoomRecord(r.id, r.name, r.created,
                           len(self.messages.get(r.id, [])),
                           tuple(self.messages.get(r.id, [])[-recent:] if recent else ()),
                           r.id in self.removed)
                for r in self.rooms.values()]

    def roomSettings(self, room_id):
        saved = self.settings.get(f"room/{room_id}")
        return succeed(None if saved is None else json.loads(json.dumps(saved)))

    def lastSeqs(self, room_ids):
        return succeed({i: (self.messages[i][-1].seq if self.messages.get(i) else 0)
                        for i in room_ids})

    def roomsAfter(self, room_id):
        return succeed([r for r in self.open(0) if r.id > room_id])

    def loadAccounts(self):
        return list(self.accounts.values())

    def loadSettings(self):
        return {scope: json.loads(json.dumps(v)) for scope, v in self.settings.items()}

    def addAccount(self, name, hashed, created):
        return self._write(lambda: self.accounts.__setitem__(
            name.casefold(), (name, hashed, created)))

    def setPassword(self, name, hashed):
        def apply():
            name_, _, created = self.accounts[name.casefold()]
            self.accounts[name.casefold()] = (name_, hashed, created)
        return self._write(apply)

    def saveSettings(self, scope, settings):
        copy = json.loads(json.dumps(settings))  # what a real store would keep
        return self._write(lambda: self.settings.__setitem__(scope, copy))

    def removeRoom(self, room_id, forget):
        def apply():
            if forget:
                self.rooms.pop(room_id, None)
                self.messages.pop(room_id, None)
                self.settings.pop(f"room/{room_id}", None)
            else:
                self.removed.add(room_id)
        return self._write(apply)

    def _write(self, apply):
        if self.failing:
            return fail(self._failure())
        if self.holding is not None:
            d = Deferred()
            self.holding.append((apply, d))
            return d
        return succeed(apply())

    def _failure(self):
        return self.failing if isinstance(self.failing, Exception) else OSError("disk full")

    def release(self, count=None):
        """
        Commit the first C{count} held writes (all by default), in order, as
        one commit; the others stay held. With C{failing} set they fail instead.
        """
        held = self.holding[:count]
        del self.holding[:len(held)]
        if count is None:
            self.holding = None
        for apply, d in held:
            if self.failing:
                d.errback(self._failure())
            else:
                d.callback(apply())
        waiting = getattr(self, "_whenReleased", None)
        if waiting is not None and not self.holding:
            self._whenReleased = None
            waiting.callback(None)

    def addRoom(self, room, settings=None):
        """As a real store: an id of its own, RoomTaken for a name in use, settings alongside."""
        key = room.name.casefold()
        if any(r.name.casefold() == key and r.id not in self.removed
               for r in self.rooms.values()):
            return fail(RoomTaken(room.name))
        if room.id is None:
            self.lastId = max([self.lastId, *self.rooms, *self.removed]) + 1
            room = replace(room, id=self.lastId)

        def apply():
            self.rooms[room.id] = room
            if settings is not None:
                self.settings[f"room/{room.id}"] = json.loads(json.dumps(settings))
            return room
        return self._write(apply)

    def addMessage(self, message):
        """Numbered when it is committed (here: applied), as a real store does."""
        def apply():
            stored = self.messages.setdefault(message.room_id, [])
            kept = message if message.seq is not None else replace(
                message, seq=(stored[-1].seq if stored else 0) + 1)
            stored.append(kept)
            return kept
        return self._write(apply)

    def page(self, room_id, low, high):
        return succeed([m for m in self.messages.get(room_id, []) if low <= m.seq < high])

    def seqOf(self, room_id, uid):
        return succeed(next((m.seq for m in self.messages.get(room_id, []) if m.uid == uid),
                            None))

    def seqAt(self, room_id, timestamp):
        return succeed(next((m.seq for m in self.messages.get(room_id, [])
                             if m.timestamp >= timestamp), None))

    def close(self):
        """Like a real store, once what is being written is written."""
        self.closed = True
        if self.holding:
            self._whenReleased = Deferred()
            return self._whenReleased
        return succeed(None)

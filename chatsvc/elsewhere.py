"""
The users of the other servers of one chat, and the rooms they are in, so
that `who`, names lists, `list` counts and the joins, leaves, renames and
quits people see are the same on every server (cluster.md 9).

Each server tells the others what its users do on the bus's L{PEOPLE}
channel, numbering what it tells; at each heartbeat it also writes to the
database who it has, as of the number it had reached. So what the bus lost
(a Redis restart) is put right at the next beat: a server replays on that
portrait what it heard after it, and whatever still differs is told to its
members as a join, leave or quit. The users of a server whose heartbeat
went stale quit everywhere once any server reaps it.

What one server's operator does to a user on another (kick, kill, a role,
an invitation) goes to that user's server as an order on the same channel,
and comes back to everyone as what happened.
"""

import json

from chatsvc.events import Away, Invited, Joined, Kicked, Left, Quit, Renamed

PEOPLE = "people"  # the bus channel of joins, leaves, renames, quits and orders
GONE = "Their server stopped answering"  # the quit of a reaped server's users


def portrait(user) -> dict:
    """What other servers show of a user of this one."""
    return {"name": user.name, "door": user.door, "ident": user.ident,
            "realname": user.realname, "account": user.account, "away": user.away,
            "operator": user.operator}


class _NoConnection:
    """A stranger's mind, as far as the doors read one: no connection here."""
    ident = None
    invisible = False

    def deliver(self, event):
        pass


class Stranger:
    """A user of another server, as this one shows them (in place of a L{User})."""

    mind = _NoConnection()
    host = None

    def __init__(self, node, told: dict):
        self.node = node
        self.roles = {}  # room id -> "o", "v", "ov" or ""
        self.update(told)

    def update(self, told):
        self.name = told["name"]
        self.door = told.get("door") or "native"
        self.ident = told.get("ident")
        self.realname = told.get("realname") or ""
        self.account = told.get("account")
        self.away = told.get("away")
        self.operator = bool(told.get("operator"))

    def told(self) -> dict:
        return portrait(self)

    def __repr__(self):
        return f"<Stranger {self.name} on {self.node}>"


class _View:
    """One other server's users, as this one knows them."""

    def __init__(self, since):
        self.users = {}  # casefolded name -> Stranger
        self.heard = []  # (number, kind, data) since the last portrait
        self.since = since  # when first heard of
        self.confirmed = False  # seen in the database at least once


class Elsewhere:
    """The users of the other servers (a mixin of the Lobby)."""

    _views = None  # node -> _View; None: one server alone
    _told = 0  # what this server has told the others, counted

    def startElsewhere(self):
        if self.bus is None:
            return
        self._views = {}
        self.bus.subscribe(PEOPLE)

    # What this server's users do, told to the others

    def tellElsewhere(self, kind, *data):
        if self._views is None:
            return
        self._told += 1
        self.bus.publish(PEOPLE, json.dumps({"n": self.me, "e": self._told, "k": kind,
                                             "d": data}, separators=(",", ":")).encode())

    def order(self, stranger, kind, *data):
        """Ask C{stranger}'s server to do something to them."""
        self.bus.publish(PEOPLE, json.dumps({"n": self.me, "to": stranger.node, "k": kind,
                                             "d": data}, separators=(",", ":")).encode())

    def portraitOfHere(self) -> str:
        """Who is here, as of what has been told: written with each heartbeat."""
        users = {}
        for key, user in self.names.items():
            if user.claiming is None:
                users[key] = [portrait(user), {str(room.id): room.roleOf(user)
                                               for room in user.rooms.values()}]
        return json.dumps({"e": self._told, "u": users}, separators=(",", ":"))

    # What other servers tell

    def _heardOfPeople(self, payload):
        try:
            told = json.loads(payload)
            node, kind, data = told["n"], told["k"], told["d"]
        except (ValueError, KeyError, TypeError):
            return self.log.warn("Ignored a message on the bus's {channel}", channel=PEOPLE)
        if node == self.me or self._views is None:
            return
        try:
            if "to" in told:
                if told["to"] == self.me:
                    self._ordered(kind, *data)
                return
            view = self._views.get(node)
            if view is None:
                view = self._views[node] = _View(self.clock.seconds())
            view.heard.append((told["e"], kind, data))
            self._happened(node, view, kind, data, tell=True)
        except (ValueError, KeyError, TypeError, AttributeError):
            self.log.failure("Ignored what {node} told of its users", node=node)

    def _happened(self, node, view, kind, data, tell=False, live=True):
        """
        Apply what C{node} told to C{view}. C{live}: the view the rooms show,
        so the rooms change too (and, with C{tell}, their members are told);
        else a view being worked out (L{_confirm}), and nothing else changes.
        """
        if kind in ("h", "j"):  # online there (in no room yet), or into a room
            told = data[0] if kind == "h" else data[1]
            key = told["name"].casefold()
            stranger = view.users.get(key)
            if stranger is None:
                stranger = view.users[key] = Stranger(node, told)
            else:
                stranger.update(told)
            if kind == "h":
                return
            room_id, role = data[0], data[2]
            first = room_id not in stranger.roles
            stranger.roles[room_id] = role
            room = self._byId.get(room_id) if live else None
            if room is not None and first:
                room.elsewhere[key] = stranger
                self._peopled.add(room)
                if tell:
                    room.broadcast(Joined(room.name, stranger.name))
        elif kind == "l":
            room_id, name, why, text, by = data
            stranger = view.users.get(name.casefold())
            if stranger is None or stranger.roles.pop(room_id, None) is None:
                return
            room = self._byId.get(room_id) if live else None
            if room is not None:
                self._unplace(room, stranger)
                if tell:
                    room.broadcast(Kicked(room.name, name, by, text) if why == "kicked"
                                   else Left(room.name, name, why, text))
        elif kind == "o":
            room_id, name, role = data
            stranger = view.users.get(name.casefold())
            if stranger is not None and room_id in stranger.roles:
                stranger.roles[room_id] = role
        elif kind == "q":
            name, why, text = data
            stranger = view.users.pop(name.casefold(), None)
            if stranger is not None and live:
                self._strangerQuit(stranger, why, text, tell)
        elif kind == "r":
            old, new = data
            stranger = view.users.pop(old.casefold(), None)
            if stranger is None:
                return
            rooms = self.roomsOf(stranger) if live else ()
            others = self._strangersNeighbours(stranger) if live and tell else ()
            for room in rooms:
                room.elsewhere.pop(old.casefold(), None)
            stranger.name = new
            view.users[new.casefold()] = stranger
            for room in rooms:
                room.elsewhere[new.casefold()] = stranger
            for other in others:
                self._tell(other, Renamed(old, new))
        elif kind == "a":
            name, away = data
            stranger = view.users.get(name.casefold())
            if stranger is not None:
                stranger.away = away
                if live and tell:
                    for other in self._strangersNeighbours(stranger):
                        self._tell(other, Away(name, away))

    def roomsOf(self, person) -> list:
        """The rooms of a user here, or of a stranger (as far as this server knows them)."""
        if not isinstance(person, Stranger):
            return list(person.rooms.values())
        return [self._byId[room_id] for room_id in person.roles if room_id in self._byId]

    def _strangersNeighbours(self, stranger) -> dict:
        others = {}
        for room in self.roomsOf(stranger):
            others.update(room.members)
        return others

    def _unplace(self, room, stranger):
        if room.elsewhere.get(stranger.name.casefold()) is stranger:
            del room.elsewhere[stranger.name.casefold()]
            if not room.elsewhere:
                self._peopled.discard(room)

    def _strangerQuit(self, stranger, why, text, tell):
        others = self._strangersNeighbours(stranger) if tell else ()
        for room in self.roomsOf(stranger):
            self._unplace(room, stranger)
        stranger.roles = {}
        for other in others:
            self._tell(other, Quit(stranger.name, why, text))

    def placeStrangers(self, room):
        """A room this server has just heard of: the users of other servers already in it."""
        if self._views is None:
            return
        for view in self._views.values():
            for key, stranger in view.users.items():
                if room.id in stranger.roles:
                    room.elsewhere[key] = stranger
                    self._peopled.add(room)

    # Orders from other servers, for users of this one

    def _ordered(self, kind, *data):
        if kind == "K":
            room_id, name, by, reason = data
            room, user = self._byId.get(room_id), self.names.get(name.casefold())
            if room is not None and user is not None and user in room.members:
                self.putOut(room, user, by, reason)
        elif kind == "X":
            name, by, reason = data
            user = self.names.get(name.casefold())
            if user is not None:
                self.kill(user, by, reason)
        elif kind == "O":
            room_id, name, letter, on = data
            room, user = self._byId.get(room_id), self.names.get(name.casefold())
            if room is not None and user is not None and user in room.members:
                holders = room.operators if letter == "o" else room.voiced
                (holders.add if on else holders.discard)(user)
                self.tellElsewhere("o", room.id, user.name, room.roleOf(user))
        elif kind == "I":
            room_id, name, by, letIn = data
            room, user = self._byId.get(room_id), self.names.get(name.casefold())
            if room is not None and user is not None:
                if letIn:
                    room.invited.add(user)
                self._tell(user, Invited(room.name, user.name, by))

    # The database's word, at each heartbeat

    def confirmElsewhere(self, portraits):
        """
        C{portraits}: (node, portrait) of each live server but this one, as
        they wrote them at their last heartbeat. Put right what the bus lost,
        and let the users of servers no longer live quit.
        """
        if self._views is None:
            return
        live = set()
        for node, written in portraits:
            live.add(node)
            try:
                self._confirm(node, json.loads(written))
            except (ValueError, KeyError, TypeError, AttributeError):
                self.log.failure("Ignored the users {node} wrote", node=node)
        ttl = getattr(self.store, "NODE_TTL", 15)
        for node, view in list(self._views.items()):
            # A server that started a moment ago may not have beaten yet.
            if node not in live and (view.confirmed or
                                     self.clock.seconds() - view.since > ttl):
                del self._views[node]
                for stranger in view.users.values():
                    self._strangerQuit(stranger, "lost", GONE, tell=True)
                if view.users:
                    self.log.info("{count} users of a server gone silent quit",
                                  count=len(view.users))

    def _confirm(self, node, written):
        view = self._views.get(node)
        if view is None:
            view = self._views[node] = _View(self.clock.seconds())
        upTo = written["e"]
        truth = _View(view.since)
        for key, (told, roles) in written["u"].items():
            stranger = truth.users[key] = Stranger(node, told)
            stranger.roles = {int(room_id): role for room_id, role in roles.items()}
        view.heard = [entry for entry in view.heard if entry[0] > upTo]
        for _, kind, data in view.heard:  # what it told since it wrote
            self._happened(node, truth, kind, data, live=False)
        self._reconcile(node, view, truth)
        view.confirmed = True

    def _reconcile(self, node, view, truth):
        """Make C{view} what C{truth} says, telling members what changed."""
        for key, stranger in list(view.users.items()):
            if key not in truth.users:
                del view.users[key]
                self._strangerQuit(stranger, "quit", "", tell=True)
        for key, true in truth.users.items():
            stranger = view.users.get(key)
            if stranger is None:
                stranger = view.users[key] = Stranger(node, true.told())
            else:
                stranger.update(true.told())
            for room_id in [r for r in stranger.roles if r not in true.roles]:
                self._happened(node, view, "l", [room_id, stranger.name, "left", "", None],
                               tell=True)
            for room_id, role in true.roles.items():
                if room_id in stranger.roles:
                    stranger.roles[room_id] = role
                else:
                    self._happened(node, view, "j", [room_id, true.told(), role], tell=True)

    # Looking people up

    def stranger(self, name):
        """The user of another server with C{name}, or None."""
        if self._views is None:
            return None
        key = name.casefold()
        for view in self._views.values():
            if key in view.users:
                return view.users[key]
        return None

    def person(self, name):
        """The user (here) or stranger (elsewhere) with C{name}, or None."""
        return self.names.get(name.casefold()) or self.stranger(name)

"""
Running rooms and the server: who may join and speak in a room (bans,
invite only, a key, a limit, moderation), what its operators may change
(topic, modes, privileges, bans), and what server operators may do (kill a
connection, ban an address, remove a room). A mixin of L{chatsvc.lobby.Lobby}:
every front door goes through it, so every door keeps the same rules.
What a room's operators set is stored before anyone is told of it.
"""

import fnmatch
import ipaddress
import re

from twisted.internet.defer import Deferred, maybeDeferred, succeed

from chatsvc import errors
from chatsvc.events import Invited, Kicked, Killed, ModeChanged, TopicChanged
from chatsvc.rooms import LIST_MODES, MODE_LETTERS, Topic, banMatcher
from chatsvc.text import clean

TOPIC_MAX = 300  # characters in a topic
FLAGS = "imnst"  # the modes that are on or off, with no argument
LIST_MAX = 100  # masks in each of a room's lists
LIMIT = re.compile(r"[0-9]{1,6}")  # +l's number: ASCII digits (str.isdigit takes "²")


def normalBan(mask: str) -> str:
    """A ban as a full mask: ``bob`` is ``bob!*@*``, ``*@host`` is ``*!*@host``."""
    mask = clean(mask).strip()
    if mask[:3].casefold() == "$m:":  # a mute: of a mask like any other
        return mask[:3] + normalBan(mask[3:]) if mask[3:] else mask
    if mask.startswith("$") or ("!" in mask and "@" in mask):
        return mask
    if "@" in mask:
        return "*!" + mask
    if "!" in mask:
        return mask + "@*"
    return mask + "!*@*"


def addressMatcher(mask):
    """A test of an address against a server-wide ban: an address, a network (CIDR) or a glob."""
    try:
        network = ipaddress.ip_network(mask, strict=False)
    except ValueError:
        folded = mask.casefold()
        return lambda host: host is not None and fnmatch.fnmatchcase(host.casefold(), folded)

    def inside(host):
        try:
            return ipaddress.ip_address(host) in network
        except ValueError:
            return False
    return inside


class Moderation:
    """The rules of rooms and of the server's operators (a mixin of the Lobby)."""

    # Who may come in and speak

    def privileged(self, user, room) -> bool:
        """Does C{user}'s account run C{room} (its owner, or an operator by role)?"""
        account = user.account.casefold() if user.account else None
        return account is not None and (room.owner == account or room.roles.get(account) == "o")

    def banned(self, user, room, speaking=False) -> bool:
        """Is C{user} banned (or, C{speaking}, muted) in C{room}, and not excepted (+e)?"""
        if not any(banMatcher(mask, speaking)(user) for mask in room.bans):
            return False
        return not any(banMatcher(mask, speaking)(user) for mask in room.lists["e"])

    def _invited(self, user, room) -> bool:
        return user in room.invited or any(banMatcher(mask)(user) for mask in room.lists["I"])

    def admit(self, user, room, key=None):
        """Refuse C{user} if C{room}'s rules keep them out; its owners always get in."""
        if self.privileged(user, room):
            return
        invited = user in room.invited
        if self.banned(user, room) and not invited:
            raise errors.Banned(room.name)
        if "i" in room.modes and not self._invited(user, room):
            raise errors.InviteOnly(room.name)
        if room.password is not None and key != room.password and not invited:
            raise errors.BadKey(room.name)
        if room.limit is not None and room.headcount() >= room.limit and not invited:
            raise errors.RoomFull(room.name, room.limit)

    def entered(self, user, room):
        """C{user} comes into C{room}: the privileges their account (or coming first) gives."""
        room.invited.discard(user)
        account = user.account.casefold() if user.account else None
        role = room.roles.get(account) if account else None
        if account is not None and room.owner == account:
            role = "o"
        if role is None and not room.headcount() and room.owner is None:
            role = "o"  # the first into a room nobody owns runs it while they stay, as on IRC
        if role == "o":
            room.operators.add(user)
        elif role == "v":
            room.voiced.add(user)

    def maySpeak(self, user, room):
        if room.key not in user.rooms:
            if "n" in room.modes or room.key not in self.rooms:
                raise errors.NotInRoom("talk there")
            self.mustBeSignedIn(user)
        if user in room.operators or user in room.voiced:
            return
        if self.banned(user, room, speaking=True):
            raise errors.CannotSend(room.name)
        if "m" in room.modes:
            raise errors.Moderated(room.name)

    def _mustRun(self, user, room):
        if user not in room.operators:
            raise errors.NotOperator(room.name)

    def _saved(self, room, undo, events):
        """Store C{room}'s settings, then tell its members C{events}; C{undo} if it fails."""
        def stored(_):
            for event in events:
                room.broadcast(event)
            self.settingsChanged(room, events)  # and the other servers' members
            return events

        def failed(failure):
            undo()
            self.noteSecret(room)
            self.log.failure("Could not store the settings of {room}", failure, room=room.name)
            raise errors.NotStored("That change", "nothing changed",
                                   self._notStoredBecause(failure))
        self.noteSecret(room)
        d = self.store.saveSettings(f"room/{room.id}", room.settings())
        return d.addCallbacks(stored, failed)

    # Secret rooms

    def noteSecret(self, room):
        """Keep count of the secret rooms, so that `list` counts them without walking every room."""
        if room.secret and room.key in self.rooms:
            self._secret.add(room)
        else:
            self._secret.discard(room)

    def canSee(self, viewer, room) -> bool:
        """A secret room is seen by its members, the accounts that run it, server operators."""
        return (not room.secret or viewer in room.members or viewer.operator
                or self.privileged(viewer, room))

    def roomCount(self, viewer) -> int:
        """How many rooms C{viewer} can see (secret ones are few: only they are walked)."""
        return len(self.rooms) - sum(not self.canSee(viewer, room) for room in self._secret)

    def _snapshot(self, room):
        settings = room.settings()
        operators, voiced = set(room.operators), set(room.voiced)

        def undo():
            room.restore(settings)
            room.operators.clear()
            room.operators.update(u for u in operators if u in room.members)
            room.voiced.clear()
            room.voiced.update(u for u in voiced if u in room.members)
        return undo

    # What operators change

    def setTopic(self, user, room, text):
        """
        Set (or, with "", clear) C{room}'s topic: its operators may, and so
        may any member of a room that is not +t. The Deferred fires once it
        is stored and told, with the L{TopicChanged}.
        """
        if room.key not in user.rooms:
            raise errors.NotInRoom("set its topic")
        if "t" in room.modes:
            self._mustRun(user, room)
        if self.stopping:
            raise errors.ServerStopping("The topic was not set")
        text = clean(text).strip()[:TOPIC_MAX]

        def change():
            undo = self._snapshot(room)
            at = self.now()
            room.topic = Topic(text, user.name, at) if text else None
            event = TopicChanged(room.name, user.name, text, at)
            return self._saved(room, undo, [event]).addCallback(lambda _: event)
        return self._inTurn(room, change)

    def _inTurn(self, room, change):
        """
        Run C{change} (which applies a change to C{room} and stores it) once
        the room's previous change is stored or refused: one at a time, so
        that a refused one is undone to exactly what was before it.
        """
        previous = self._turns.get(room.key)
        if previous is None:
            d = maybeDeferred(change)
        else:
            d = Deferred()
            previous.addCallback(lambda _: maybeDeferred(change).chainDeferred(d))
        turn = self._turns[room.key] = Deferred()

        def settled(result):
            if self._turns.get(room.key) is turn:
                del self._turns[room.key]
            turn.callback(None)
            return result
        return d.addBoth(settled)

    def setModes(self, user, room, changes, atomic=False):
        """
        Apply C{changes}, (on, letter, argument or None) each, to C{room}, by
        one of its operators. The Deferred fires with (the L{ModeChanged}
        told, or None if nothing changed; [(letter, L{errors.ChatError})]
        for the changes refused); what took is stored before anyone is told.
        With C{atomic}, one refusal changes nothing at all.
        """
        self._mustRun(user, room)
        if self.stopping:
            raise errors.ServerStopping("The room was not changed")
        return self._inTurn(room, lambda: self._changeModes(user, room, changes, atomic))

    def _changeModes(self, user, room, changes, atomic):
        self._mustRun(user, room)  # still, after the changes before these
        undo = self._snapshot(room)
        events, refused = [], []
        for on, letter, arg in changes:
            try:
                change = self._change(room, on, letter, arg, user)
            except errors.ChatError as refusal:
                refused.append((letter, refusal))
                continue
            if change is not None:
                events.append((("+" if on else "-") + letter, None if change is True else change))
        if refused and atomic:
            undo()
            return succeed((None, refused))
        if not events:
            undo()  # roles given again by who may not keep them: nothing to store
            return succeed((None, refused))
        event = ModeChanged(room.name, user.name, tuple(events))
        return self._saved(room, undo, [event]).addCallback(lambda _: (event, refused))

    def _change(self, room, on, letter, arg, user):
        """
        Change one mode: what ModeChanged names (a user, mask, key, limit),
        True if it names nothing, None if nothing changed.
        """
        if letter in "ov":
            return self._privilege(room, on, letter, arg, user)
        if letter in LIST_MODES:
            masks = room.lists[letter]
            mask = normalBan(arg or "")
            if not mask or " " in mask or mask.startswith(":") or len(mask) > 200:
                raise errors.BadMode("A mask is nick!ident@host (with * and ? as"
                                     " wildcards), $a:ACCOUNT, or $m:MASK to mute.")
            if not on:  # whatever case it was set in
                mask = next((m for m in masks if m.casefold() == mask.casefold()), mask)
            if on == (mask in masks):
                return None
            if on:
                if len(masks) >= LIST_MAX:
                    raise errors.BadMode(f"{room.name} has {LIST_MAX} such masks, the most"
                                         " it keeps: remove one first.")
                masks[mask] = (user.name, self.now())
            else:
                del masks[mask]
            return mask
        if letter == "k":
            if on:
                key = clean(arg or "").strip()
                # Not a word IRC would read as more than one: no spaces, commas, colons.
                if not key or any(c in key for c in " ,:") or len(key) > 32:
                    raise errors.BadMode("A key is 1 to 32 characters, with no spaces,"
                                         " commas or colons.")
                room.password = key
                room.modes.add("k")
                return key
            if room.password is None:
                return None
            room.password = None
            room.modes.discard("k")
            return "*"
        if letter == "l":
            if on:
                if not LIMIT.fullmatch(arg or "") or not 0 < int(arg) <= 100000:
                    raise errors.BadMode("A limit is a number of members, 1 or more.")
                if room.limit == int(arg):
                    return None
                room.limit = int(arg)
                room.modes.add("l")
                return str(room.limit)
            if room.limit is None:
                return None
            room.limit = None
            room.modes.discard("l")
            return True
        if letter in FLAGS:
            if on == (letter in room.modes):
                return None
            (room.modes.add if on else room.modes.discard)(letter)
            return True
        raise errors.BadMode(f"{letter} is not a room mode: they are {MODE_LETTERS}, o, v, b.")

    def owns(self, user, room) -> bool:
        """Is C{user} signed in to the account that owns C{room}?"""
        return room.owner is not None and user.account is not None and \
            user.account.casefold() == room.owner

    def _protected(self, user, room, target):
        """Only its owner (or a server operator) acts against a room's owner."""
        if self.owns(target, room) and target is not user and not (
                self.owns(user, room) or user.operator):
            raise errors.OwnerProtected(target.name, room.name)

    def _privilege(self, room, on, letter, name, user):
        target = self._member(room, name or "")
        if not on:
            self._protected(user, room, target)
        holders = room.operators if letter == "o" else room.voiced
        account = target.account.casefold() if target.account else None
        kept = False  # a role of their account's changed
        if account is not None and (self.owns(user, room) or user.operator):
            # What the owner gives an account, it keeps in this room from now on.
            role = room.roles.get(account)
            if on and role != letter and (letter == "o" or role != "o"):
                room.roles[account] = letter
                kept = True
            elif not on and role == letter:
                del room.roles[account]
                kept = True
        if (letter in room.roleOf(target)) == on and not kept:
            return None
        if target in room.members:
            (holders.add if on else holders.discard)(target)
            self.tellElsewhere("o", room.id, target.name, room.roleOf(target))
        else:  # on another server: it gives or takes the role, and tells
            self.order(target, "O", room.id, target.name, letter, on)
        return target.name

    def maskList(self, room, letter="b"):
        """(mask, who set it, when) for each mask of one of C{room}'s lists, oldest first."""
        return sorted(((mask, by, at) for mask, (by, at) in room.lists[letter].items()),
                      key=lambda entry: entry[2])

    def kick(self, user, room, name, reason=""):
        """An operator of C{room} puts C{name} out of it; everyone there is told first."""
        self._mustRun(user, room)
        target = self._member(room, name)
        self._protected(user, room, target)
        reason = clean(reason).strip()[:300]
        self.log.info("{by} kicked {name} from {room}", by=user.name, name=target.name,
                      room=room.name)
        if target not in room.members:  # on another server: it puts them out, and tells
            self.order(target, "K", room.id, target.name, user.name, reason)
            return Kicked(room.name, target.name, user.name, reason)
        return self.putOut(room, target, user.name, reason)

    def putOut(self, room, target, by, reason):
        """C{target} is kicked out of C{room} by C{by}: everyone there is told first."""
        event = Kicked(room.name, target.name, by, reason)
        room.broadcast(event)
        self._leave(target, room, "kicked", announce=False)
        self.tellElsewhere("l", room.id, target.name, "kicked", reason, by)
        return event

    def _member(self, room, name):
        """The member of C{room} (here or on another server) named C{name}."""
        target = self.person(name)
        if target is None:
            raise errors.NoSuchUser(clean(name))
        if target not in room.members and \
                room.elsewhere.get(target.name.casefold()) is not target:
            raise errors.NotInThatRoom(target.name, room.name)
        return target

    def invite(self, user, room, name):
        """
        A member of C{room} (an operator, if it is invite only) invites
        C{name}, who is told. An operator's invitation lets them in once
        past +i, +k, +l and bans; anyone else's is only word of the room.
        """
        if room.key not in user.rooms:
            raise errors.NotInRoom("invite anyone there")
        if "i" in room.modes:
            self._mustRun(user, room)
        target = self.person(name)
        if target is None:
            raise errors.NoSuchUser(clean(name))
        if target in room.everyone():
            raise errors.BadMode(f"{target.name} is in {room.name} already.")
        letIn = user in room.operators  # only an operator's invitation lets anyone past the rules
        event = Invited(room.name, target.name, user.name)
        if target.name.casefold() not in self.names:  # on another server: it tells them
            self.order(target, "I", room.id, target.name, user.name, letIn)
            return event
        if letIn:
            room.invited.add(target)
        if target is not user:
            self._tell(target, event)
        return event

    # Server operators

    def _mustOperate(self, user):
        if not user.operator:
            raise errors.NotServerOperator()

    def kill(self, victim, by, reason):
        """Disconnect C{victim}: they are told why, and those who shared a room see them quit."""
        name = victim.name
        text = f"Killed by {by}: {reason}" if by else reason
        self.disconnect(victim, "killed", text)
        self._tell(victim, Killed(by, reason))
        self.log.info("{name} was disconnected: {text}", name=name, text=text)

    def killUser(self, user, name, reason=""):
        """A server operator disconnects C{name}."""
        self._mustOperate(user)
        target = self.person(name)
        if target is None:
            raise errors.NoSuchUser(clean(name))
        reason = clean(reason).strip()[:300] or "no reason given"
        if target.name.casefold() in self.names:
            self.kill(target, user.name, reason)
        else:  # on another server: it disconnects them, and everyone sees them quit
            self.order(target, "X", target.name, user.name, reason)
        return target.name

    def restoreServer(self, saved):
        self.addressBans = {mask: tuple(ban) for mask, ban in saved.get("bans", {}).items()}

    def serverChanged(self, saved):
        """
        The server-wide settings as another server stored them (told on the
        bus, or read at a heartbeat): its bans hold here too, at once.
        """
        before = self.addressBans
        self.restoreServer(saved)
        for mask, (by, _, reason) in self.addressBans.items():
            if mask not in before:
                self.log.info("{by} banned {mask} on another server", by=by, mask=mask)
                self._sweep(mask, reason)

    def checkAddress(self, host):
        """Refuse a connection from an address a server operator banned."""
        if host is None or not self.addressBans:
            return
        for mask, (_, _, why) in self.addressBans.items():
            if addressMatcher(mask)(host):
                raise errors.AddressBanned(why)

    def banAddress(self, user, mask, reason=""):
        """
        A server operator bans an address (or a network, or a glob of
        hosts) server-wide: stored first, then everyone connected from it
        is disconnected. The Deferred fires with how many were.
        """
        self._mustOperate(user)
        mask = clean(mask).strip()
        if not mask or " " in mask:
            raise errors.BadMode("An address ban is an address, a network such as"
                                 " 192.0.2.0/24, or a glob such as 192.0.2.*.")
        reason = clean(reason).strip()[:300]
        bans = dict(self.addressBans)
        bans[mask] = (user.name, self.now(), reason)
        return self._saveServer(bans).addCallback(lambda _: self._sweep(mask, reason))

    def unbanAddress(self, user, mask):
        self._mustOperate(user)
        if mask not in self.addressBans:
            raise errors.BadMode(f"{clean(mask)} is not banned.")
        bans = dict(self.addressBans)
        del bans[mask]
        return self._saveServer(bans)

    def _saveServer(self, bans):
        saved = {"bans": {m: list(b) for m, b in bans.items()}}

        def stored(_):
            self.addressBans = bans
            self.tellServers(saved)

        def failed(failure):
            self.log.failure("Could not store the server's bans", failure)
            raise errors.NotStored("That ban", "nothing changed", self._notStoredBecause(failure))
        d = self.store.saveSettings("server", saved)
        return d.addCallbacks(stored, failed)

    def _sweep(self, mask, reason):
        match = addressMatcher(mask)
        count = 0
        for user in list(self.users):
            if match(user.host) and not user.operator:
                self.kill(user, None, "Your address is banned from this server"
                          + (f": {reason}" if reason else ""))
                count += 1
        return count

    def removeRoom(self, user, room, forget=False):
        """
        A server operator removes C{room}: its members are put out and its
        name is free; its history is kept (out of sight) unless C{forget}.
        """
        self._mustOperate(user)
        if room.key not in self.rooms:
            raise errors.NoSuchRoom(room.name)

        def stored(_):
            if self.rooms.get(room.key) is not room:
                return None
            event = Kicked(room.name, None, user.name, "This room was removed by a server operator")
            for member in list(room.members):
                self._tell(member, Kicked(room.name, member.name, user.name, event.reason))
                self._leave(member, room, "kicked", announce=False)
            del self.rooms[room.key]
            self.noteSecret(room)
            self._byName = [key for key in self._byName if key != room.key]
            self._occupied.discard(room)
            self.log.info("{by} removed room {room}{how}", by=user.name, room=room.name,
                          how=" and its history" if forget else "")
            return room.name

        def failed(failure):
            self.log.failure("Could not remove {room}", failure, room=room.name)
            raise errors.NotStored("The removal", "nothing changed",
                                   self._notStoredBecause(failure))
        return self.store.removeRoom(room.id, forget).addCallbacks(stored, failed)

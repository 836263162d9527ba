"""
The native door's commands for accounts and for running rooms and the
server: register, identify, password; topic, kick, ban, invite, op, voice,
mode; kill, banaddress, remove. The Lobby decides; this says it in words.
"""

from chatsvc import errors
from chatsvc.doors.line import wording
from chatsvc.text import clean, plural


class Moderating:
    """The account and moderation commands of a L{ChatProtocol} (a mixin)."""

    # Accounts

    def cmd_register(self, password):
        d = self.factory.lobby.register(self.user, password)
        d.addCallback(lambda account: self.notice(
            f"The name {account.name} is registered to you, and you are signed in. From now"
            f" on only you can use it: next time, type identify PASSWORD after it."))
        self._waitFor(d)

    def cmd_identify(self, name, password):
        name = name or self.user.name
        d = self.factory.lobby.identify(self.user, name, password)
        d.addCallback(lambda name: self.user is not None and self.notice(
            f"You are signed in to {self.user.account}."))
        self._waitFor(d)

    def cmd_password(self, old, new):
        d = self.factory.lobby.changePassword(self.user, old, new)
        d.addCallback(lambda _: self.notice("Your password is changed."))
        self._waitFor(d)

    # Running a room

    def cmd_topic(self, text):
        room = self._currentRoom("see or set a topic")
        if text is None:
            self.line(wording.topic(room))
            return
        # Everyone in the room, this user included, is told once it is stored.
        self._waitFor(self.factory.lobby.setTopic(self.user, room, text))

    def cmd_kick(self, name, reason):
        room = self._currentRoom("kick anyone")
        self.factory.lobby.kick(self.user, room, name, reason)  # the room, you included, is told

    def cmd_ban(self, mask):
        room = self._currentRoom("see or set its bans")
        if mask is None:
            self.lines(wording.masks(room.name, self.factory.lobby.maskList(room, "b")))
            return
        self._modes(room, [(True, "b", mask)],
                    lambda: f"That is banned from {room.name} already.")

    def cmd_unban(self, mask):
        room = self._currentRoom("lift a ban")
        self._modes(room, [(False, "b", mask)],
                    lambda: f"Nothing changed: that is not banned from {room.name}."
                    " Type ban to see the bans.")

    def cmd_invite(self, name):
        room = self._currentRoom("invite anyone there")
        event = self.factory.lobby.invite(self.user, room, name)
        self.notice(f"You invited {event.name} to {room.name}.")

    def _privilege(self, name, on, letter):
        room = self._currentRoom("change who runs it")
        what = {"o": "an operator", "v": "voiced"}[letter]

        def unchanged():
            target = self.factory.lobby.names.get(name.casefold())
            shown = target.name if target else name
            return (f"{shown} is {what} in {room.name} already." if on else
                    f"{shown} is not {what} in {room.name}.")
        self._modes(room, [(on, letter, name)], unchanged)

    def cmd_op(self, name):
        self._privilege(name, True, "o")

    def cmd_deop(self, name):
        self._privilege(name, False, "o")

    def cmd_voice(self, name):
        self._privilege(name, True, "v")

    def cmd_devoice(self, name):
        self._privilege(name, False, "v")

    def cmd_mode(self, changes, args):
        room = self._currentRoom("see or change its modes")
        if changes is None:
            self.lines(wording.modes(room, self.user in room.operators))
            return
        self._modes(room, modeChanges(changes, args),
                    lambda: f"Nothing changed: {room.name} is like that already.")

    def _modes(self, room, changes, unchanged):
        """Make C{changes} to C{room}, all of them or (refused) none; the room is told."""
        def done(result):
            event, refused = result
            if refused:
                for letter, refusal in refused:
                    self.error(str(refusal))
            elif event is None:
                self.notice(unchanged())
        d = self.factory.lobby.setModes(self.user, room, changes, atomic=True)
        self._waitFor(d.addCallback(done))

    # Running the server

    def cmd_kill(self, name, reason):
        killed = self.factory.lobby.killUser(self.user, name, reason)
        self.notice(f"You disconnected {killed}.")

    def cmd_banaddress(self, mask, reason):
        d = self.factory.lobby.banAddress(self.user, mask, reason)
        d.addCallback(lambda count: self.notice(
            f"The address {mask} is banned from the server;"
            f" {plural(count, 'connection')} from it closed."))
        self._waitFor(d)

    def cmd_unbanaddress(self, mask):
        d = self.factory.lobby.unbanAddress(self.user, mask)
        d.addCallback(lambda _: self.notice(f"The address {mask} is no longer banned."))
        self._waitFor(d)

    def cmd_remove(self, name, forget):
        lobby = self.factory.lobby
        lobby._mustOperate(self.user)
        room = lobby.rooms.get(clean(name).strip().casefold())
        if room is None:
            raise errors.NoSuchRoom(clean(name).strip())
        d = lobby.removeRoom(self.user, room, forget)
        d.addCallback(lambda removed: removed and self.notice(
            f"You removed {removed}" + (" and its history." if forget else
                                         "; its history is kept.")))
        self._waitFor(d)


def modeChanges(changes, args):
    """
    C{mode}'s changes, IRC style, as (on, letter, argument) each: "+i",
    "-m", "+k" KEY, "+l" N, "+o-v" NAME NAME. L{errors.BadMode} for an
    argument missing or left over: then nothing is changed.
    """
    args, parsed, on = list(args), [], True
    for letter in changes:
        if letter in "+-":
            on = letter == "+"
            continue
        needs = letter in "ovbeI" or (on and letter in "kl")
        if letter == "k" and not on and args:  # -k KEY, as IRC clients send it
            needs = True
        if needs and not args:
            raise errors.BadMode(f"{'+' if on else '-'}{letter} needs a"
                                 f" {_NEEDS.get(letter, 'value')}; nothing changed.")
        parsed.append((on, letter, args.pop(0) if needs else None))
    if args:
        raise errors.BadMode(f"{' '.join(args)}: no change takes that; nothing changed.")
    if not parsed:
        raise errors.BadMode("Type mode +LETTER or -LETTER, e.g. mode +i; nothing changed.")
    return parsed


_NEEDS = {"o": "NAME", "v": "NAME", "b": "MASK", "e": "MASK", "I": "MASK", "k": "KEY",
          "l": "NUMBER"}

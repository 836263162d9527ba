"""
Signing in: how the Lobby registers a user's name as an account, checks
an account's password and gives its owner their name back. A mixin of
L{chatsvc.lobby.Lobby}; the accounts themselves are L{chatsvc.accounts}.
"""

import re

from chatsvc import errors
from chatsvc.events import AccountChanged, ModeChanged
from chatsvc.text import SCREEN_NAME, clean

_GUEST = re.compile(r"guest[0-9]+")  # names handed out to guests: nobody's to own


class SigningIn:
    """Accounts, as the Lobby's users see them (a mixin of the Lobby)."""

    def mustBeSignedIn(self, user):
        """With --accounts required, refuse what only signed-in users may do."""
        if self.settings.accounts == "required" and user.account is None:
            raise errors.AccountsRequired()

    def register(self, user, password, name=None):
        """
        Register C{name} (by default the user's own) as an account with
        C{password}, signing C{user} in to it once it is stored. The Deferred
        fires with the account.
        """
        name = clean(name or user.name or "").strip()
        if not name:
            raise errors.NotRegistered("*")
        if len(name) > self.settings.name_max or not SCREEN_NAME.fullmatch(name):
            raise errors.InvalidName(self.settings.name_max)
        if _GUEST.fullmatch(name.casefold()):
            raise errors.BadMode(f"{name} is a guest name, which nobody may own: take a"
                                 " name of your own (reconnect with one, or on IRC type"
                                 " nick NAME) and register that.")
        if user.account is not None:
            raise errors.BadMode(f"You are signed in to {user.account} already.")
        holder = self.names.get(name.casefold())
        if holder is not None and holder is not user:
            raise errors.NameTaken(name)
        if user.name is not None and name.casefold() != user.name.casefold():
            raise errors.BadMode(f"You can register only the name you have, {user.name}.")

        def registered(account):
            self.log.info("{name} registered", name=account.name)
            if user in self.users:
                self._signedIn(user, account)
            return account
        return self.accounts.register(name, password, self.now(), user.address).addCallback(
            registered)

    def authenticate(self, user, name, password):
        """
        Sign C{user} in to the account C{name} if C{password} is its password
        (for SASL, before a name is chosen: the name is taken separately).
        The Deferred fires with the account.
        """
        if user.account is not None and user.account.casefold() == clean(name).casefold():
            return self.accounts.check(name, password, user.address).addCallback(
                lambda account: account)
        d = self.accounts.check(clean(name).strip(), password, user.address)

        def right(account):
            if user in self.users:
                self._signedIn(user, account)
            return account
        return d.addCallback(right)

    def identify(self, user, name, password):
        """
        Sign in to C{name}'s account and take the name, from whoever holds it
        now (a stale connection of the owner's). The Deferred fires with the name.
        """
        d = self.accounts.check(clean(name).strip(), password, user.address)

        def right(account):
            if user not in self.users:
                return None
            user.account = account.name  # the name is theirs now: take it first ...
            try:
                if user.name is None:
                    return self.chooseName(user, account.name)
                if user.name.casefold() != account.name.casefold():
                    return self.rename(user, account.name)
                return user.name
            finally:  # ... then tell, under the name they have now
                self._signedIn(user, account)
        return d.addCallback(right)

    def changePassword(self, user, old, new):
        """The signed-in C{user}'s account takes password C{new}, if C{old} is its password."""
        if user.account is None:
            raise errors.NotIdentified("change a password")
        d = self.accounts.check(user.account, old, user.address)
        return d.addCallback(lambda account: self.accounts.changePassword(account, new))

    def _signedIn(self, user, account):
        user.account = account.name
        if account.name.casefold() in self.settings.operators:
            user.operator = True
        if user.name is None:
            return
        event = AccountChanged(user.name, account.name)
        for other in (user, *self.neighbours(user)):
            self._tell(other, event)
        for room in user.rooms.values():  # what the rooms they are in give their account
            role = room.roles.get(account.name.casefold())
            if room.owner == account.name.casefold():
                role = "o"
            holders = {"o": room.operators, "v": room.voiced}.get(role)
            if holders is not None and user not in holders:
                holders.add(user)
                room.broadcast(ModeChanged(room.name, None, (("+" + role, user.name),)))

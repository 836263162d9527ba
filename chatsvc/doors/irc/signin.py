"""The IRC door's accounts: SASL PLAIN (AUTHENTICATE), IRCv3
draft/account-registration (REGISTER), and NickServ-style messages for
clients that know only those. The Lobby checks every password.
"""

import base64
import binascii

from chatsvc import errors
from chatsvc.doors.irc import wording as w
from chatsvc.doors.irc.message import format
from chatsvc.text import SCREEN_NAME

def _shown(account):
    """An account name as a middle parameter: itself if it is a name, else *."""
    return account if account and SCREEN_NAME.fullmatch(account) and len(account) <= 64 else "*"


CHUNK = 400  # bytes of base64 in one AUTHENTICATE line (IRCv3 SASL)
SASL_MAX = 8192  # bytes of base64 in one exchange, at most
NICKSERV = "NickServ"


class SigningIn:
    """The account commands of an L{IRCProtocol} (a mixin)."""

    sasl = None  # the base64 received so far of a SASL PLAIN exchange underway

    # SASL

    def irc_AUTHENTICATE(self, message, data=None, *rest):
        if data is None:
            return self.numeric(w.ERR_NEEDMOREPARAMS, "AUTHENTICATE", "Not enough parameters")
        if self.user.account is not None and self.sasl is None:
            return self.numeric(w.ERR_SASLALREADY, "You have already authenticated")
        if data == "*":
            if self.sasl is not None:
                self.sasl = None
                return self.numeric(w.ERR_SASLABORTED, "SASL authentication aborted")
            return self.numeric(w.ERR_SASLFAIL, "SASL authentication failed: none underway")
        if self.sasl is None:  # the mechanism
            if data.upper() != "PLAIN":
                self.numeric(w.RPL_SASLMECHS, "PLAIN", "are available SASL mechanisms")
                return self.numeric(w.ERR_SASLFAIL, "SASL authentication failed")
            self.sasl = ""
            return self.line(format("AUTHENTICATE", "+"))
        if len(data) > CHUNK:
            self.sasl = None
            return self.numeric(w.ERR_SASLTOOLONG, "SASL message too long")
        if data != "+":
            self.sasl += data
            if len(self.sasl) > SASL_MAX:
                self.sasl = None
                return self.numeric(w.ERR_SASLFAIL, "SASL authentication failed: too long")
            if len(data) == CHUNK:
                return  # more to come
        blob, self.sasl = self.sasl, None
        self._plain(blob)

    def _plain(self, blob):
        try:
            authzid, authcid, password = base64.b64decode(blob, validate=True) \
                .decode("utf-8").split("\0")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return self.numeric(w.ERR_SASLFAIL, "SASL authentication failed: not PLAIN")
        if not authcid or not password or authzid and authzid != authcid:
            return self.numeric(w.ERR_SASLFAIL, "SASL authentication failed")
        try:
            d = self.factory.lobby.authenticate(self.user, authcid, password)
        except errors.ChatError as refusal:
            return self.numeric(w.ERR_SASLFAIL, f"SASL authentication failed: {refusal}")
        d.addCallback(self._loggedIn)
        self.waitFor(d, lambda failure: self.numeric(
            w.ERR_SASLFAIL, f"SASL authentication failed: {failure.value}"
            if failure.check(errors.ChatError) else "SASL authentication failed"))

    def _loggedIn(self, account):
        self.numeric(w.RPL_LOGGEDIN, self._fullMask(), account.name,
                     f"You are now logged in as {account.name}")
        self.numeric(w.RPL_SASLSUCCESS, "SASL authentication successful")

    def _fullMask(self):
        if self.registered:
            return self.mask()
        return f"{self.nick or '*'}!~{self.ident or '*'}@{self.door}.chatsvc"

    def abortSasl(self):
        """Registration ends while a SASL exchange is underway: it is aborted."""
        if self.sasl is not None:
            self.sasl = None
            self.numeric(w.ERR_SASLABORTED, "SASL authentication aborted")

    # draft/account-registration

    def irc_REGISTER(self, message, account=None, email=None, password=None, *rest):
        if password is None:
            return self.reply("FAIL", "REGISTER", "NEED_MORE_PARAMS", _shown(account),
                              "Usage: REGISTER <account> <email> <password>")
        if not self.registered and not self.settings.register_before_connect:
            return self.reply("FAIL", "REGISTER", "COMPLETE_CONNECTION_REQUIRED",
                              _shown(account),
                              "Finish connecting (NICK, USER, CAP END) before you REGISTER")
        nick = self.user.name or self.nick or self.triedNick
        if account == "*":
            account = nick
        if not account:
            return self.reply("FAIL", "REGISTER", "NEED_NICK", "*",
                              "Choose a nickname (NICK) first: it is what you register")
        if nick is None or account.casefold() != nick.casefold():
            return self.reply("FAIL", "REGISTER", "ACCOUNT_NAME_MUST_BE_NICK", _shown(account),
                              "You can register only your current nickname")
        try:
            d = self.factory.lobby.register(self.user, password, account)
        except errors.ChatError as refusal:
            return self._registerFailed(account, refusal)
        d.addCallback(self._registered)
        self.waitFor(d, lambda failure: self._registerFailed(account, failure.value))

    def _registered(self, account):
        self.reply("REGISTER", "SUCCESS", account.name, "Account successfully registered")
        self.numeric(w.RPL_LOGGEDIN, self._fullMask(), account.name,
                     f"You are now logged in as {account.name}")

    def _registerFailed(self, account, refusal):
        code = {errors.AlreadyRegistered: "ACCOUNT_EXISTS", errors.NameTaken: "ACCOUNT_EXISTS",
                errors.NameRegistered: "ACCOUNT_EXISTS", errors.BadPassword: "WEAK_PASSWORD",
                errors.InvalidName: "BAD_ACCOUNT_NAME",
                errors.TooManyAttempts: "TEMPORARILY_UNAVAILABLE",
                errors.NotStored: "TEMPORARILY_UNAVAILABLE"}.get(type(refusal), "UNACCEPTABLE")
        if not isinstance(refusal, errors.ChatError):
            code, refusal = "TEMPORARILY_UNAVAILABLE", "Sorry, the server failed to do that"
        self.reply("FAIL", "REGISTER", code, _shown(account), str(refusal))

    # NickServ, for clients that know nothing else

    def toNickServ(self, text):
        """PRIVMSG NickServ: IDENTIFY [NAME] PASSWORD, REGISTER PASSWORD, PASSWORD OLD NEW."""
        words = text.split()
        command = words[0].upper() if words else "HELP"
        lobby = self.factory.lobby
        if command == "IDENTIFY" and len(words) in (2, 3):
            name, password = (words[1], words[2]) if len(words) == 3 else (self.me, words[1])
            d = lobby.identify(self.user, name, password)
            d.addCallback(lambda _: self.fromNickServ(
                f"You are now identified as {self.user.account}."))
            return self.waitFor(d, lambda f: self.fromNickServ(
                str(f.value) if f.check(errors.ChatError) else "Sorry, that failed."))
        if command == "PASSWORD" and len(words) == 3:
            d = lobby.changePassword(self.user, words[1], words[2])
            d.addCallback(lambda _: self.fromNickServ("Your password is changed."))
            return self.waitFor(d, lambda f: self.fromNickServ(
                str(f.value) if f.check(errors.ChatError) else "Sorry, that failed."))
        if command == "REGISTER" and len(words) >= 2:
            d = lobby.register(self.user, words[1])
            d.addCallback(lambda account: self.fromNickServ(
                f"{account.name} is registered to you now, and you are signed in."))
            return self.waitFor(d, lambda f: self.fromNickServ(
                str(f.value) if f.check(errors.ChatError) else "Sorry, that failed."))
        self.fromNickServ("Commands: IDENTIFY [NAME] PASSWORD signs you in to an account"
                          " (and gives you its name); REGISTER PASSWORD registers your"
                          " nickname; PASSWORD OLD NEW changes yours. Clients that can"
                          " should use SASL instead.")

    def irc_NS(self, message, *words):
        """/ns IDENTIFY ..., as clients send it: NickServ's commands without the PRIVMSG."""
        self.toNickServ(" ".join(words))

    irc_NICKSERV = irc_NS

    def fromNickServ(self, text):
        self.line(format("NOTICE", self.me, text,
                         source=f"{NICKSERV}!{NICKSERV}@{self.server}"))

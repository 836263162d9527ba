"""
The IRC front door's connection: registration (CAP, PASS, NICK, USER), the
commands IRC clients use, and the Lobby's events as IRC lines. Rooms are
channels (room ``kitchen`` is ``#kitchen``); names and nicks are one namespace.
"""

import re
import time

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ServerFactory
from zope.interface import implementer

from chatsvc import errors
from chatsvc.doors.connection import Connection, DoorFactory
from chatsvc.doors.irc import history, wording as w
from chatsvc.doors.irc.channels import Channels
from chatsvc.doors.irc.delivery import Delivery, saidKey
from chatsvc.doors.irc.labels import Labels
from chatsvc.doors.irc.message import format, parse
from chatsvc.doors.irc.moderating import Moderating
from chatsvc.doors.irc.signin import SigningIn
from chatsvc.doors.irc.talking import Talking
from chatsvc.events import IChatClient
from chatsvc.text import clean

REGISTRATION = {"CAP", "NICK", "USER", "PASS", "PING", "PONG", "QUIT",
                "AUTHENTICATE", "REGISTER"}  # before 001
TAGS_MAX = 4096  # bytes of tags a client may send, with the '@' and the space (IRCv3)
_NICK = re.compile(r"[A-Za-z0-9_-]+")  # the Lobby's names


@implementer(IChatClient)
class IRCProtocol(Channels, Moderating, Talking, SigningIn, Delivery, Connection):
    """
    One IRC connection: registration and liveness here; the channel
    commands (L{Channels}), talking (L{Talking}) and the Lobby's events as
    IRC lines (L{Delivery}) in their own modules.
    """

    door = "irc"

    def __init__(self):
        super().__init__()
        self.caps = set()
        self.saidKey = saidKey(self.caps)  # how messages are rendered for these caps
        self.negotiating = False  # CAP LS or REQ before registration: wait for CAP END
        self.nick = None  # the nick asked for, before registration
        self.triedNick = None  # ... the last one tried, even if refused (for REGISTER *)
        self.ident = None  # USER's username
        self.passed = False  # PASS matched the server password
        self.registered = False
        self.invisible = False
        self._pinged = False  # a PING of ours is waiting for an answer
        self.clientTags = {}  # the client-only tags of the line being handled
        self.labels = Labels(self)
        self._unconfirmed = 0  # messages to channels said but not yet stored and sent
        self._whenConfirmed = None  # the next command, waiting for them
        self.signon = time.time()
        self.lastSpoke = time.time()

    # What this door says (see Connection)

    @property
    def server(self):
        return self.factory.serverName

    @property
    def me(self):
        return self.user.name if self.user is not None and self.user.name else (self.nick or "*")

    def refuse(self, refusal):
        self.line(format("ERROR", f"Closing link: {refusal}"))

    def tooLong(self, replaced=False):
        self.numeric(w.ERR_INPUTTOOLONG, "Input line was too long")

    def slowed(self):
        self.line(format("NOTICE", self.me,
                         f"You are sending more than {self.settings.flood_rate:g} lines a"
                         " second from your address; the server now reads your lines more"
                         " slowly. Nothing you sent is lost.", source=self.server))

    def timedOut(self, what):
        self.line(format("ERROR", "Closing link: registration timed out" if what == "login"
                         else "Closing link: ping timeout"))

    def failed(self):
        self.labels.reply(format("FAIL", "*", "INTERNAL_ERROR",
                                 "Sorry, the server failed to do that. Please tell its operator.",
                                 source=self.server))

    def encode(self, line: str) -> bytes:
        return line.encode("utf-8") + b"\r\n"

    # Output

    def tags(self, timestamp=None, uid=None, client=None, source=None) -> dict:
        """
        The tags this client takes on a message or event (C{client}: its
        client-only tags; C{source}: the name of whoever it is from).
        """
        tags = {}
        if "server-time" in self.caps:
            tags["time"] = w.isoTime(timestamp if timestamp is not None
                                     else self.factory.lobby.now())
        if "message-tags" in self.caps:
            if uid:
                tags["msgid"] = uid
            if client:
                tags.update(client)
        if source is not None and "account-tag" in self.caps:
            account = self.accountOf(source)
            if account is not None:
                tags["account"] = account
        return tags

    def accountOf(self, name):
        """The account the user online as C{name} is signed in to, or None."""
        user = self.factory.lobby.person(name) if name else None
        return user.account if user is not None else None

    def reply(self, command, *params, source=None, tags=None):
        """A line answering the command being handled (labeled, if it was)."""
        self.labels.reply(format(command, *params, source=source or self.server, tags=tags))

    def numeric(self, number, *params):
        self.reply(number, self.me, *params)

    def mask(self, user=None) -> str:
        """How a user is shown: nick!ident@host, with a host that names their door, not their address."""
        user = user or self.user
        ident = getattr(user.mind, "ident", None) or user.ident or user.name[:w.USER_LENGTH]
        return f"{user.name}!~{ident}@{user.door}.chatsvc"

    def maskOf(self, name: str) -> str:
        user = self.factory.lobby.person(name)  # here or on another server
        return self.mask(user) if user is not None else f"{name}!~{name[:w.USER_LENGTH]}@chatsvc"

    # Reading

    def undecodable(self, raw):
        command = raw.split(b" ", 2)
        command = command[1] if raw.startswith((b"@", b":")) and len(command) > 1 else command[0]
        command = command.decode("ascii", "replace").upper()[:32] or "*"
        self.line(format("FAIL", command, "INVALID_UTF8",
                         "That line is not UTF-8; it was discarded.", source=self.server))
        return True

    def connectionMade(self):
        super().connectionMade()
        if self.user is not None:  # room for the tags besides the line itself
            self.maxLine = self.settings.max_line + TAGS_MAX
            self.MAX_LENGTH = self.maxLine + 1

    def textReceived(self, text):
        self._pinged = False
        tagged = text.startswith("@")
        if tagged and len(text.partition(" ")[0].encode("utf-8")) + 1 > TAGS_MAX or \
                len((text.partition(" ")[2] if tagged else text).encode("utf-8")) \
                > self.settings.max_line:
            return self.tooLong()
        message = parse(text)
        if not message.command:
            return
        self.clientTags = {k: v for k, v in message.tags.items() if k.startswith("+")}
        if self._unconfirmed and not self._pipelined(message):
            # Answer in order: whatever follows a message waits until it is
            # stored and sent (its echo first, then this command's answer).
            self._whenConfirmed = d = Deferred()
            d.addCallback(lambda _: self.textReceived(text))
            Connection.waitFor(self, d, self._refused)  # before its label begins
            return
        self.labels.begin(message.tags.get("label") if "labeled-response" in self.caps else None)
        try:
            self.dispatch(message)
        except errors.ChatError as refusal:
            self.reply("NOTICE", self.me, str(refusal))
        except Exception:
            self.log.failure("Line from {user} failed", user=self.user)
            self.failed()
        finally:
            self.labels.end()

    def waitFor(self, d, refused):
        """
        Connection.waitFor, inside the labeled answer if any: what C{d}
        brings (or its refusal) is part of the answer, and the answer ends
        before the next command is read (the hold is released last).
        """
        d.addErrback(self._refusedBy, refused)
        self.labels.wait(d)
        return Connection.waitFor(self, d, refused)

    @staticmethod
    def _pipelined(message):
        """Messages to channels follow one another without waiting to be stored."""
        return (message.command == "PRIVMSG" and "label" not in message.tags
                and len(message.params) > 1 and message.params[0].startswith("#"))

    def _confirmed(self, result):
        self._unconfirmed -= 1
        if not self._unconfirmed and self._whenConfirmed is not None:
            waiting, self._whenConfirmed = self._whenConfirmed, None
            waiting.callback(None)
        return result

    def dispatch(self, message):
        command, params = message.command, message.params
        if not self.registered and command not in REGISTRATION:
            if command.isalpha() and hasattr(self, "irc_" + command):
                return self.numeric(w.ERR_NOTREGISTERED, "You have not registered")
            return self.numeric(w.ERR_UNKNOWNCOMMAND, clean(command)[:32], "Unknown command")
        handler = getattr(self, "irc_" + command, None) if command.isalnum() else None
        if handler is None:
            return self.numeric(w.ERR_UNKNOWNCOMMAND, clean(command)[:32], "Unknown command")
        need = getattr(handler, "needs", 0)
        if len(params) < need:
            return self.numeric(w.ERR_NEEDMOREPARAMS, command, "Not enough parameters")
        handler(message, *params)

    # Registration

    def irc_CAP(self, message, *params):
        if not params:
            return self.numeric(w.ERR_NEEDMOREPARAMS, "CAP", "Not enough parameters")
        sub = params[0].upper()
        if sub == "LS":
            if not self.registered:
                self.negotiating = True
            values = len(params) > 1 and params[1].isdigit() and int(params[1]) >= 302
            self.reply("CAP", self.me, "LS", " ".join(
                f"{cap}={self._capValue(cap)}" if values and self._capValue(cap) else cap
                for cap in w.CAPABILITIES))
        elif sub == "LIST":
            self.reply("CAP", self.me, "LIST", " ".join(sorted(self.caps)))
        elif sub == "REQ":
            if not self.registered:
                self.negotiating = True
            asked = params[1].split() if len(params) > 1 else []
            wanted = [(c[1:], False) if c.startswith("-") else (c, True) for c in asked]
            if asked and all(cap in w.CAPABILITIES for cap, _ in wanted):
                for cap, on in wanted:
                    (self.caps.add if on else self.caps.discard)(cap)
                self.saidKey = saidKey(self.caps)
                self.reply("CAP", self.me, "ACK", " ".join(asked))
            else:
                self.reply("CAP", self.me, "NAK", " ".join(asked))
        elif sub == "END":
            if not self.registered:
                self.abortSasl()
                self.negotiating = False
                self._register()
        else:
            self.numeric(w.ERR_INVALIDCAPCMD, clean(params[0])[:32], "Invalid CAP command")

    def _capValue(self, cap):
        if cap == "draft/account-registration" and not self.settings.register_before_connect:
            return None
        return w.CAP_VALUES.get(cap)

    def irc_PASS(self, message, password=None):
        if self.registered:
            return self.numeric(w.ERR_ALREADYREGISTERED, "You may not reregister")
        if password is None:
            return self.numeric(w.ERR_NEEDMOREPARAMS, "PASS", "Not enough parameters")
        self.passed = password == self.factory.password

    def irc_NICK(self, message, nick=None):
        lobby = self.factory.lobby
        if nick and self._validNick(nick):
            self.triedNick = nick
        if not nick:
            return self.numeric(w.ERR_NONICKNAMEGIVEN, "No nickname given")
        if not self._validNick(nick):
            return self.numeric(w.ERR_ERRONEUSNICKNAME, clean(nick)[:64],
                                f"Erroneous nickname: 1 to {self.settings.name_max} letters,"
                                " digits, _ or -")
        holder = lobby.names.get(nick.casefold())
        # A registered nick is its owner's, who may sign in (SASL) before
        # registration ends and take it back from a stale connection.
        owned = not self.registered and lobby.accounts.isRegistered(nick)
        if holder is not None and holder is not self.user and not owned:
            return self.numeric(w.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
        if not self.registered:
            self.nick = nick
            return self._register()
        try:
            lobby.rename(self.user, nick)  # Renamed comes back to us and everyone who shares a room
        except errors.NameRegistered as refusal:
            self.numeric(w.ERR_NICKNAMEINUSE, refusal.name, self._registeredNick(refusal.name))

    @staticmethod
    def _registeredNick(name):
        return (f"{name} is a registered name: sign in to it (SASL, or /msg NickServ"
                f" IDENTIFY {name} PASSWORD) or choose another")

    def _validNick(self, nick):
        return len(nick) <= self.settings.name_max and _NICK.fullmatch(nick) is not None

    def irc_USER(self, message, *params):
        if self.registered:
            return self.numeric(w.ERR_ALREADYREGISTERED, "You may not reregister")
        if len(params) < 4 or not params[0] or not params[3]:
            return self.numeric(w.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters")
        ident = "".join(c for c in params[0] if c.isalnum() or c in "_-.")[:w.USER_LENGTH]
        self.ident = ident or "user"
        self.user.ident = self.ident  # what ban masks match
        self.user.realname = clean(params[3])[:100]
        self._register()

    def _register(self):
        if self.registered or self.negotiating or self.nick is None or self.ident is None:
            return
        if self.factory.password is not None and not self.passed:
            self.numeric(w.ERR_PASSWDMISMATCH, "Password incorrect")
            self.line(format("ERROR", "Closing link: password incorrect"))
            return self._close()
        try:
            name = self.factory.lobby.chooseName(self.user, self.nick)
        except errors.NameTaken:
            nick, self.nick = self.nick, None
            return self.numeric(w.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
        except errors.NameRegistered as refusal:
            self.nick = None
            return self.numeric(w.ERR_NICKNAMEINUSE, refusal.name,
                                self._registeredNick(refusal.name))
        except (errors.ServerFull, errors.ClusterUnavailable) as full:
            self.line(format("ERROR", f"Closing link: {full}"))
            return self._close()
        claiming = self.factory.lobby.whenClaimed(self.user)
        if claiming is not None:  # several servers: registration ends once it is ours
            self.registered = True  # meanwhile nothing but registration is read anyway
            return self.waitFor(claiming.addCallback(self._claimed, name), self._refused)
        self._completeRegistration(name)

    def _claimed(self, ours, name):
        if ours:
            return self._completeRegistration(name)
        self.registered = False
        self.nick = None
        self.numeric(w.ERR_NICKNAMEINUSE, name, "Nickname is already in use")

    def _completeRegistration(self, name):
        self.registered = True
        self.log.info("{name} arrived by IRC from {peer}", name=name, peer=self.peer)
        self.named()
        self._scheduleTimeout()
        self._welcome()

    def _welcome(self):
        server = self.server
        self.numeric(w.RPL_WELCOME, f"Welcome to the chatsvc IRC network, {self.mask()}")
        self.numeric(w.RPL_YOURHOST, f"Your host is {server}, running chatsvc")
        self.numeric(w.RPL_CREATED, f"This server was created {self.factory.created}")
        self.numeric(w.RPL_MYINFO, server, "chatsvc", "i", "beIiklmnostv", "beIklov")
        self._isupport()
        self.irc_LUSERS(None)
        self.irc_MOTD(None)

    def _isupport(self):
        tokens = w.isupport(self.settings, self.server)
        for i in range(0, len(tokens), 12):  # a dozen to a line, as clients expect
            self.numeric(w.RPL_ISUPPORT, *tokens[i:i + 12], "are supported by this server")

    # Liveness: an idle client is pinged, and dropped if it never answers

    def _scheduleTimeout(self):
        if self.factory.pingInterval > 0:
            self.setTimeout(self.factory.pingInterval)

    def timeoutConnection(self):
        self._judge(self._pingOrDrop)

    def _pingOrDrop(self):
        if self.user is None or self._leaving:
            return
        if self._heard or not self.isSilent():
            self._pinged = False
        elif not self._pinged:
            self._pinged = True
            self.line(format("PING", self.server))
        else:
            self.log.info("{user} did not answer a ping", user=self.user)
            self.timedOut("idle")
            self.factory.lobby.disconnect(self.user, "lost", "Ping timeout")
            return self._close()
        self._scheduleTimeout()

    def irc_PING(self, message, token=None):
        if token is None:
            return self.numeric(w.ERR_NEEDMOREPARAMS, "PING", "Not enough parameters")
        self.reply("PONG", self.server, token)

    def irc_PONG(self, message, *params):
        pass

    def irc_QUIT(self, message, text=""):
        text = clean(text)[:300]
        self.line(format("ERROR", f"Closing link: {self.user.host} (Quit: {text or self.me})"))
        if self.registered:
            self.factory.lobby.disconnect(self.user, "quit", text)
        self._close()

    # The server

    def irc_MOTD(self, message, *params):
        self.numeric(w.RPL_MOTDSTART, f"- {self.server} Message of the day -")
        for text in w.motd(self.server):
            self.numeric(w.RPL_MOTD, text)
        self.numeric(w.RPL_ENDOFMOTD, "End of /MOTD command")

    def irc_LUSERS(self, message, *params):
        lobby = self.factory.lobby
        users = len(lobby.names)
        unknown = len(lobby.users) - users
        self.numeric(w.RPL_LUSERCLIENT, f"There are {users} users and 0 invisible on 1 servers")
        self.numeric(w.RPL_LUSEROP, sum(u.operator for u in lobby.names.values()),
                     "operator(s) online")
        if unknown:
            self.numeric(w.RPL_LUSERUNKNOWN, unknown, "unknown connection(s)")
        self.numeric(w.RPL_LUSERCHANNELS, len(lobby.rooms), "channels formed")
        self.numeric(w.RPL_LUSERME, f"I have {users} clients and 0 servers")
        most = max(lobby.mostOnline, users)
        self.numeric(w.RPL_LOCALUSERS, users, most, f"Current local users {users}, max {most}")
        self.numeric(w.RPL_GLOBALUSERS, users, most, f"Current global users {users}, max {most}")

    def irc_CHATHISTORY(self, message, *params):
        history.answer(self, params)


class IRCFactory(DoorFactory, ServerFactory):
    """Makes one L{IRCProtocol} per IRC connection, sharing the Lobby with every door."""

    protocol = IRCProtocol

    def __init__(self, lobby, addresses=None, pacer=None, serverName="chatsvc",
                 password=None, pingInterval=120.0, operators=None):
        super().__init__(lobby, addresses, pacer)
        self.operators = operators or {}  # name -> password, for OPER
        self.serverName = serverName
        self.password = password
        self.pingInterval = pingInterval
        self.created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())

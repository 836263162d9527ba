"""
The IRC front door's connection: registration (CAP, PASS, NICK, USER), the
commands IRC clients use, and the Lobby's events as IRC lines. Rooms are
channels (room ``kitchen`` is ``#kitchen``); names and nicks are one namespace.
"""

import fnmatch
import hmac
import re
import time

from twisted.internet.defer import Deferred

from twisted.internet.protocol import ServerFactory
from zope.interface import implementer

from chatsvc import __version__, errors
from chatsvc.doors.connection import Connection, DoorFactory
from chatsvc.doors.irc import history, wording as w
from chatsvc.doors.irc.labels import Labels, batchId
from chatsvc.doors.irc.message import LINE, format, parse, said
from chatsvc.events import (Away, IChatClient, Joined, Left, MadeWay, ModeChanged, Noticed,
                            Quit, Renamed, Said, Signalled, Stopping, Whispered)
from chatsvc.rooms import ROOM_NAME
from chatsvc.text import clean

REGISTRATION = {"CAP", "NICK", "USER", "PASS", "PING", "PONG", "QUIT"}  # before 001
TAGS_MAX = 4096  # bytes of tags a client may send, with the '@' and the space (IRCv3)
_NICK = re.compile(r"[A-Za-z0-9_-]+")  # the Lobby's names
# The kinds of client a room's messages are rendered for once each (see
# _deliverSaid), by server-time then message-tags: made once, not per member.
_SAID_KEYS = ((("irc", False, False), ("irc", False, True)),
              (("irc", True, False), ("irc", True, True)))


@implementer(IChatClient)
class IRCProtocol(Connection):
    door = "irc"

    def __init__(self):
        super().__init__()
        self.caps = set()
        self.saidKey = _SAID_KEYS[False][False]  # how messages are rendered for these caps
        self.negotiating = False  # CAP LS or REQ before registration: wait for CAP END
        self.nick = None  # the nick asked for, before registration
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

    def tags(self, timestamp=None, uid=None, client=None) -> dict:
        """The tags this client takes on a message or event (C{client}: its client-only tags)."""
        tags = {}
        if "server-time" in self.caps:
            tags["time"] = w.isoTime(timestamp if timestamp is not None
                                     else self.factory.lobby.now())
        if "message-tags" in self.caps:
            if uid:
                tags["msgid"] = uid
            if client:
                tags.update(client)
        return tags

    def reply(self, command, *params, source=None, tags=None):
        """A line answering the command being handled (labeled, if it was)."""
        self.labels.reply(format(command, *params, source=source or self.server, tags=tags))

    def numeric(self, number, *params):
        self.reply(number, self.me, *params)

    def mask(self, user=None) -> str:
        """How a user is shown: nick!ident@host, with a host that names their door, not their address."""
        user = user or self.user
        ident = getattr(user.mind, "ident", None) or user.name[:w.USER_LENGTH]
        return f"{user.name}!~{ident}@{user.door}.chatsvc"

    def maskOf(self, name: str) -> str:
        user = self.factory.lobby.names.get(name.casefold())
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
            self.waitFor(d, self._refused)
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
            self.reply("CAP", self.me, "LS", " ".join(w.CAPABILITIES))
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
                self.saidKey = _SAID_KEYS["server-time" in self.caps]["message-tags" in self.caps]
                self.reply("CAP", self.me, "ACK", " ".join(asked))
            else:
                self.reply("CAP", self.me, "NAK", " ".join(asked))
        elif sub == "END":
            if not self.registered:
                self.negotiating = False
                self._register()
        else:
            self.numeric(w.ERR_INVALIDCAPCMD, clean(params[0])[:32], "Invalid CAP command")

    def irc_PASS(self, message, password=None):
        if self.registered:
            return self.numeric(w.ERR_ALREADYREGISTERED, "You may not reregister")
        if password is None:
            return self.numeric(w.ERR_NEEDMOREPARAMS, "PASS", "Not enough parameters")
        self.passed = password == self.factory.password

    def irc_NICK(self, message, nick=None):
        lobby = self.factory.lobby
        if not nick:
            return self.numeric(w.ERR_NONICKNAMEGIVEN, "No nickname given")
        if not self._validNick(nick):
            return self.numeric(w.ERR_ERRONEUSNICKNAME, clean(nick)[:64],
                                f"Erroneous nickname: 1 to {self.settings.name_max} letters,"
                                " digits, _ or -")
        holder = lobby.names.get(nick.casefold())
        if holder is not None and holder is not self.user:
            return self.numeric(w.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
        if not self.registered:
            self.nick = nick
            return self._register()
        lobby.rename(self.user, nick)  # Renamed comes back to us, and to everyone who shares a room

    def _validNick(self, nick):
        return len(nick) <= self.settings.name_max and _NICK.fullmatch(nick) is not None

    def irc_USER(self, message, *params):
        if self.registered:
            return self.numeric(w.ERR_ALREADYREGISTERED, "You may not reregister")
        if len(params) < 4 or not params[0] or not params[3]:
            return self.numeric(w.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters")
        ident = "".join(c for c in params[0] if c.isalnum() or c in "_-.")[:w.USER_LENGTH]
        self.ident = ident or "user"
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
            self.nick = None
            return self.numeric(w.ERR_NICKNAMEINUSE, self.me, "Nickname is already in use")
        except errors.ServerFull as full:
            self.line(format("ERROR", f"Closing link: {full}"))
            return self._close()
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
        self.numeric(w.RPL_MYINFO, server, "chatsvc", "i", "nosv", "ov")
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

    # Channels

    def roomOf(self, channel, joined=True):
        """The Room a channel names, or None (after the numeric saying why)."""
        lobby = self.factory.lobby
        room = lobby.rooms.get(channel[1:].casefold()) if channel.startswith("#") else None
        if room is None:
            self.numeric(w.ERR_NOSUCHCHANNEL, clean(channel)[:64], "No such channel")
        elif joined and room.key not in self.user.rooms:
            self.numeric(w.ERR_NOTONCHANNEL, "#" + room.name, "You're not on that channel")
            return None
        return room

    def irc_JOIN(self, message, channels=None, keys=None):
        if channels is None:
            return self.numeric(w.ERR_NEEDMOREPARAMS, "JOIN", "Not enough parameters")
        if channels == "0":  # leave every channel
            for room in list(self.user.rooms.values()):
                self.factory.lobby.leave(self.user, room)
                self._parted(room.name, "")
            return
        for channel in self._targets(channels):
            self._join(channel)

    def _targets(self, names):
        """The first TARGETS of a comma-separated list; 407 for the rest."""
        names = names.split(",")
        if len(names) > w.TARGETS:
            self.numeric(w.ERR_TOOMANYTARGETS, clean(names[w.TARGETS])[:64],
                         f"Too many targets: at most {w.TARGETS} at once")
        return names[:w.TARGETS]

    def _join(self, channel):
        lobby = self.factory.lobby
        name = channel[1:]
        if not channel.startswith("#") or not ROOM_NAME.fullmatch(name) or \
                len(name) > self.settings.room_name_max or name.casefold() in {"lobby"}:
            return self.numeric(w.ERR_BADCHANMASK if not channel.startswith("#")
                                else w.ERR_NOSUCHCHANNEL, clean(channel)[:64],
                                "No such channel: a channel name is # and then 1 to"
                                f" {self.settings.room_name_max} letters, digits, dots,"
                                " dashes or underscores, starting with a letter or digit")
        if name.casefold() in self.user.rooms:
            return
        if len(self.user.rooms) >= w.CHANNEL_LIMIT:
            return self.numeric(w.ERR_TOOMANYCHANNELS, clean(channel),
                                "You have joined too many channels")
        if name.casefold() in lobby.rooms:
            d = lobby.join(self.user, name, exclusive=False)
        else:  # IRC creates a channel by joining it
            rooms = self.visitor.rooms
            if self.settings.create_rate > 0:
                wait = rooms.allow()
                if wait:
                    minutes = max(1, round(wait / 60))
                    return self.reply(
                        "FAIL", "JOIN", "CREATING_TOO_OFTEN", "#" + name,
                        f"Your address has created channels too often; try again in"
                        f" {minutes} min, or join one that exists (/list)")
            try:
                d = lobby.createRoom(self.user, name, exclusive=False)
            except errors.RoomExists:  # being created by someone else right now
                if self.settings.create_rate > 0:
                    rooms.tokens += 1  # it was not this one's creation
                d = lobby.join(self.user, name, exclusive=False)
            except errors.ChatError:
                if self.settings.create_rate > 0:
                    rooms.tokens += 1
                raise
        self.labels.wait(self.waitFor(d.addCallback(self._arrived), self._refused))

    def _refused(self, failure):
        if failure.check(errors.ChatError):
            self.reply("FAIL", "*", "REFUSED", str(failure.value))
        else:
            self.failed()

    def _arrived(self, arrival):
        if arrival is None:
            return
        channel = "#" + arrival.room
        room = self.factory.lobby.rooms[arrival.room.casefold()]
        self.reply("JOIN", channel, source=self.mask(), tags=self.tags())
        self._names(room)
        if arrival.replay and "server-time" in self.caps:
            # Recent history, as Ergo replays it: only to clients that show when it was said.
            lines = self._historyLines(channel, arrival.replay)
            self.labels.pace(lines)

    def _historyLines(self, target, messages, batch="chathistory"):
        ref = batchId() if "batch" in self.caps else None
        if ref:
            yield format("BATCH", "+" + ref, batch, target, source=self.server)
        for m in messages:
            tags = self.tags(m.timestamp, m.uid)
            if ref:
                tags["batch"] = ref
            yield said("PRIVMSG", target, m.text, self.maskOf(m.sender), tags)
        if ref:
            yield format("BATCH", "-" + ref, source=self.server)

    def irc_PART(self, message, channels=None, text=""):
        if channels is None:
            return self.numeric(w.ERR_NEEDMOREPARAMS, "PART", "Not enough parameters")
        for channel in self._targets(channels):
            room = self.roomOf(channel)
            if room is not None:
                self.factory.lobby.leave(self.user, room, clean(text)[:300])
                self._parted(room.name, clean(text)[:300])

    def _parted(self, room, text):
        params = ("#" + room, text) if text else ("#" + room,)
        self.reply("PART", *params, source=self.mask(), tags=self.tags())

    def _prefixes(self, room, user):
        marks = ("@" if user in room.operators else "") + ("+" if user in room.voiced else "")
        return marks if "multi-prefix" in self.caps else marks[:1]

    def _names(self, room):
        channel = "#" + room.name
        full = "userhost-in-names" in self.caps
        names = [self._prefixes(room, u) + (self.mask(u) if full else u.name)
                 for u in room.members]
        kind = "@" if room.secret else "="
        line, size = [], 0
        for name in names:  # a few hundred bytes a line, as clients expect
            if size + len(name) > 400 and line:
                self.numeric(w.RPL_NAMREPLY, kind, channel, " ".join(line))
                line, size = [], 0
            line.append(name)
            size += len(name) + 1
        if line:
            self.numeric(w.RPL_NAMREPLY, kind, channel, " ".join(line))
        self.numeric(w.RPL_ENDOFNAMES, channel, "End of /NAMES list")

    def irc_NAMES(self, message, channels=None, *rest):
        if not channels:
            return self.numeric(w.ERR_NEEDMOREPARAMS, "NAMES", "Not enough parameters")
        for channel in channels.split(",")[:1]:
            room = self.factory.lobby.rooms.get(channel[1:].casefold()) \
                if channel.startswith("#") else None
            if room is None or room.secret and room.key not in self.user.rooms:
                self.numeric(w.RPL_ENDOFNAMES, clean(channel)[:64], "End of /NAMES list")
            else:
                self._names(room)

    def irc_LIST(self, message, pattern=None, *rest):
        lobby = self.factory.lobby
        me, server = self.me, self.server
        self.numeric(w.RPL_LISTSTART, "Channel", "Users  Name")
        glob = pattern.split(",")[0] if pattern else None
        if glob and glob.startswith("#") and not ("*" in glob or "?" in glob):
            room = lobby.rooms.get(glob[1:].casefold())  # one channel, by name
            shown = room is not None and (not room.secret or room.key in self.user.rooms)
            rooms = iter([(room.name, len(room.members))] if shown else [])
        else:
            rooms = lobby.roomList(glob[1:] if glob and glob.startswith("#") else glob,
                                   self.user)

        def lines():
            for item in rooms:
                if item is None:
                    yield None
                else:
                    yield format(w.RPL_LIST, me, "#" + item[0], item[1], "", source=server)
            yield format(w.RPL_LISTEND, me, "End of /LIST", source=server)
        self.labels.pace(lines())

    def irc_WHO(self, message, mask=None, *rest):
        lobby = self.factory.lobby
        if not mask:
            mask = "*"
        if mask.startswith("#"):
            room = lobby.rooms.get(mask[1:].casefold())
            if room is not None and (not room.secret or room.key in self.user.rooms):
                for user in room.members:
                    self._whoReply("#" + room.name, user, room)
        elif mask == "*" or "*" in mask or "?" in mask:
            pattern = mask.casefold()
            mine = set(lobby.neighbours(self.user)) | {self.user}
            for user in list(lobby.names.values()):
                if getattr(user.mind, "invisible", False) and user not in mine:
                    continue
                if fnmatch.fnmatchcase(user.name.casefold(), pattern):
                    self._whoReply("*", user, None)
        else:
            user = lobby.names.get(mask.casefold())
            if user is not None:
                self._whoReply("*", user, None)
        self.numeric(w.RPL_ENDOFWHO, clean(mask)[:64], "End of /WHO list")

    def _whoReply(self, channel, user, room):
        flags = ("G" if user.away else "H") + ("*" if user.operator else "")
        if room is not None:
            flags += self._prefixes(room, user)
        ident = self.mask(user).split("!", 1)[1].split("@", 1)[0]
        self.numeric(w.RPL_WHOREPLY, channel, ident, f"{user.door}.chatsvc", self.server,
                     user.name, flags, f"0 {user.realname or user.name}")

    def irc_WHOIS(self, message, *params):
        if not params:
            return self.numeric(w.ERR_NONICKNAMEGIVEN, "No nickname given")
        nick = params[-1].split(",")[0]
        user = self.factory.lobby.names.get(nick.casefold())
        if user is None:
            self.numeric(w.ERR_NOSUCHNICK, clean(nick)[:64], "No such nick/channel")
            return self.numeric(w.RPL_ENDOFWHOIS, clean(nick)[:64], "End of /WHOIS list")
        mask = self.mask(user)
        ident = mask.split("!", 1)[1].split("@", 1)[0]
        self.numeric(w.RPL_WHOISUSER, user.name, ident, f"{user.door}.chatsvc", "*",
                     user.realname or user.name)
        channels = [self._prefixes(r, user) + "#" + r.name for r in user.rooms.values()]
        if channels:
            self.numeric(w.RPL_WHOISCHANNELS, user.name, " ".join(channels))
        self.numeric(w.RPL_WHOISSERVER, user.name, self.server,
                     f"chatsvc ({user.door} door)")
        if user.operator:
            self.numeric(w.RPL_WHOISOPERATOR, user.name, "is an IRC operator")
        if user.away:
            self.numeric(w.RPL_AWAY, user.name, user.away)
        mind = user.mind
        if hasattr(mind, "lastSpoke"):
            self.numeric(w.RPL_WHOISIDLE, user.name, int(time.time() - mind.lastSpoke),
                         int(mind.signon), "seconds idle, signon time")
        self.numeric(w.RPL_ENDOFWHOIS, user.name, "End of /WHOIS list")

    def irc_TOPIC(self, message, channel=None, *text):
        if channel is None:
            return self.numeric(w.ERR_NEEDMOREPARAMS, "TOPIC", "Not enough parameters")
        room = self.roomOf(channel, joined=bool(text))
        if room is None:
            return
        if not text:
            return self.numeric(w.RPL_NOTOPIC, "#" + room.name, "No topic is set")
        self.numeric(w.ERR_CHANOPRIVSNEEDED, "#" + room.name,
                     "Topics cannot be set on this server yet")

    def irc_MODE(self, message, target=None, *changes):
        if target is None:
            return self.numeric(w.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters")
        if not target.startswith("#"):
            return self._userMode(target, changes)
        room = self.roomOf(target, joined=False)
        if room is None:
            return
        channel = "#" + room.name
        if not changes:
            self.numeric(w.RPL_CHANNELMODEIS, channel, "+ns" if room.secret else "+n")
            return self.numeric(w.RPL_CREATIONTIME, channel, int(room.created))
        modes, args = changes[0], list(changes[1:])
        on = True
        for letter in modes:
            if letter in "+-":
                on = letter == "+"
            elif letter == "b" and not args:
                self.numeric(w.RPL_ENDOFBANLIST, channel, "End of channel ban list")
            elif letter in "ov":
                if not args:
                    self.numeric(w.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters")
                    continue
                name = args.pop(0)
                try:
                    self.factory.lobby.setPrivilege(self.user, room, name, letter, on)
                except errors.NotOperator:
                    self.numeric(w.ERR_CHANOPRIVSNEEDED, channel, "You're not channel operator")
                except errors.NoSuchUser:
                    self.numeric(w.ERR_NOSUCHNICK, clean(name)[:64], "No such nick/channel")
                except errors.NotInThatRoom:
                    self.numeric(w.ERR_USERNOTINCHANNEL, clean(name)[:64], channel,
                                 "They aren't on that channel")
            elif letter == "s":
                try:
                    self.factory.lobby.setSecret(self.user, room, on)
                except errors.NotOperator:
                    self.numeric(w.ERR_CHANOPRIVSNEEDED, channel, "You're not channel operator")
            elif letter == "n":
                if not on:
                    self.numeric(w.ERR_UNKNOWNMODE, letter,
                                 "is unknown mode char to me: every room is +n")
            else:
                self.numeric(w.ERR_UNKNOWNMODE, letter, "is unknown mode char to me")

    def _userMode(self, target, changes):
        if target.casefold() != self.me.casefold():
            if target.casefold() not in self.factory.lobby.names:
                return self.numeric(w.ERR_NOSUCHNICK, clean(target)[:64], "No such nick/channel")
            return self.numeric(w.ERR_USERSDONTMATCH, "Can't change mode for other users")
        if changes:
            on, unknown = True, False
            for letter in changes[0]:
                if letter in "+-":
                    on = letter == "+"
                elif letter == "i":
                    if self.invisible != on:
                        self.invisible = on
                        self.reply("MODE", self.me, ("+" if on else "-") + "i",
                                   source=self.mask())
                else:
                    unknown = True
            if unknown:
                self.numeric(w.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
            return
        self.numeric(w.RPL_UMODEIS, "+i" if self.invisible else "+")

    # Talking

    def irc_PRIVMSG(self, message, targets=None, text=None, *rest):
        self._message("PRIVMSG", targets, text)

    def irc_NOTICE(self, message, targets=None, text=None, *rest):
        self._message("NOTICE", targets, text)

    def irc_TAGMSG(self, message, targets=None, *rest):
        # Client-only tags are not relayed (CLIENTTAGDENY=*): what is left is
        # its msgid and time, for clients that take tags.
        if not targets:
            return self.numeric(w.ERR_NORECIPIENT, "No recipient given (TAGMSG)")
        lobby = self.factory.lobby
        for target in targets.split(",")[:w.TARGETS]:
            if target.startswith("#"):
                room = lobby.rooms.get(target[1:].casefold())
                if room is None:
                    self.numeric(w.ERR_NOSUCHCHANNEL, clean(target)[:64], "No such channel")
                    continue
                if room.key not in self.user.rooms:
                    self.numeric(w.ERR_CANNOTSENDTOCHAN, "#" + room.name,
                                 "Cannot send to channel: join it first")
                    continue
                event = lobby.signal(self.user, room=room, tags=self.clientTags)
            else:
                if target.casefold() not in lobby.names:
                    self.numeric(w.ERR_NOSUCHNICK, clean(target)[:64], "No such nick/channel")
                    continue
                event = lobby.signal(self.user, name=target, tags=self.clientTags)
            if "echo-message" in self.caps and "message-tags" in self.caps:
                self.reply("TAGMSG", _signalTarget(event), source=self.mask(),
                           tags=self.tags(event.timestamp, event.uid, event.tags))
            if event.recipient is not None and event.recipient == self.user.name:
                self.deliver(event)

    def _message(self, command, targets, text):
        # A NOTICE is never answered automatically (RFC 2812, 3.3.2): no errors.
        numeric = self.numeric if command == "PRIVMSG" else _unanswered
        if not targets:
            return numeric(w.ERR_NORECIPIENT, f"No recipient given ({command})")
        if not text:
            return numeric(w.ERR_NOTEXTTOSEND, "No text to send")
        self.lastSpoke = time.time()
        lobby = self.factory.lobby
        text, action = _fromIrc(text)
        if text is None:
            return  # CTCP requests and replies other than /me: not chat, not kept
        names = targets.split(",")
        if len(names) > w.TARGETS:
            numeric(w.ERR_TOOMANYTARGETS, clean(names[w.TARGETS])[:64],
                    f"Too many recipients: at most {w.TARGETS} at once")
        for target in names[:w.TARGETS]:
            if len(format(command, target, text, source=self.mask()).encode("utf-8")) > LINE:
                # What IRC clients are sent must fit in 512 bytes with our
                # prefix: say so rather than cut it (other doors' longer
                # lines go to IRC clients in several).
                room = LINE - len(format(command, target, "", source=self.mask()).encode())
                numeric(w.ERR_INPUTTOOLONG, f"Your message is too long for one IRC line:"
                                            f" at most {room} bytes to {clean(target)[:64]}")
                continue
            if target.startswith("#"):
                room = lobby.rooms.get(target[1:].casefold())
                if room is None:
                    numeric(w.ERR_NOSUCHCHANNEL, clean(target)[:64], "No such channel")
                elif room.key not in self.user.rooms:
                    numeric(w.ERR_CANNOTSENDTOCHAN, "#" + room.name,
                                 "Cannot send to channel: join it first")
                elif command == "NOTICE":
                    event = lobby.notice(self.user, room, text, self.clientTags)
                    if "echo-message" in self.caps:
                        self.labels.reply(said("NOTICE", "#" + room.name, event.text,
                                               self.mask(), self.tags(event.timestamp,
                                                                      event.uid, event.tags)))
                else:
                    self._say(room, text, action)
            else:
                self._whisper(command, target, text, numeric, action)

    def _say(self, room, text, action):
        lobby = self.factory.lobby
        uid = lobby.newUid()
        if "echo-message" in self.caps:
            self.labels.expectEcho(uid)  # the echo, when it comes, answers the label
        d = lobby.say(self.user, room, text, uid, self.clientTags, action)
        self._unconfirmed += 1
        d.addBoth(self._confirmed)
        channel = "#" + room.name

        def notStored(failure):
            if failure.check(errors.NotStored, errors.ServerStopping):
                self.reply("FAIL", "PRIVMSG", "MESSAGE_NOT_STORED", channel,
                           str(failure.value))
            else:
                self._refused(failure)
        d.addErrback(self._refusedBy, notStored)
        if self.labels.active:
            self.labels.wait(self.waitFor(d, notStored))

    def _whisper(self, command, target, text, numeric, action):
        lobby = self.factory.lobby
        recipient = lobby.names.get(target.casefold())
        if recipient is None:
            return numeric(w.ERR_NOSUCHNICK, clean(target)[:64], "No such nick/channel")
        event = lobby.whisper(self.user, target, text, command == "NOTICE", self.clientTags,
                              action)
        if "echo-message" in self.caps:
            self.labels.reply(said(command, event.recipient, event.text, self.mask(),
                                   self.tags(event.timestamp, event.uid, event.tags)))
        if recipient is self.user:
            self.deliver(event)
        elif recipient.away and command == "PRIVMSG":
            numeric(w.RPL_AWAY, recipient.name, recipient.away)

    def irc_OPER(self, message, name=None, password=None, *rest):
        if password is None:
            return self.numeric(w.ERR_NEEDMOREPARAMS, "OPER", "Not enough parameters")
        expected = self.factory.operators.get(name)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            self.log.warn("{user} failed to become an operator as {name}", user=self.user,
                          name=clean(name))
            return self.numeric(w.ERR_PASSWDMISMATCH, "Password incorrect")
        self.user.operator = True
        self.log.info("{user} is a server operator ({name})", user=self.user, name=name)
        self.numeric(w.RPL_YOUREOPER, "You are now an IRC operator")

    def irc_ISON(self, message, *nicks):
        if not nicks:
            return self.numeric(w.ERR_NEEDMOREPARAMS, "ISON", "Not enough parameters")
        names = self.factory.lobby.names
        online = [names[n.casefold()].name for word in nicks for n in word.split()
                  if n.casefold() in names]
        self.numeric(w.RPL_ISON, " ".join(online))

    def irc_VERSION(self, message, *params):
        self.numeric(w.RPL_VERSION, f"chatsvc-{__version__}", self.server,
                     "a chat server built on Twisted")
        self._isupport()

    def irc_TIME(self, message, *params):
        now = time.time()
        self.numeric(w.RPL_TIME, self.server, str(int(now)), "0",
                     time.strftime("%A %B %d %Y -- %H:%M:%S +00:00", time.gmtime(now)))

    def irc_USERHOST(self, message, *nicks):
        if not nicks:
            return self.numeric(w.ERR_NEEDMOREPARAMS, "USERHOST", "Not enough parameters")
        found = []
        for nick in nicks[:5]:
            user = self.factory.lobby.names.get(nick.casefold())
            if user is not None:
                host = self.mask(user).split("!", 1)[1]
                found.append(f"{user.name}{'*' if user.operator else ''}="
                             f"{'-' if user.away else '+'}{host}")
        self.numeric(w.RPL_USERHOST, " ".join(found))

    def irc_AWAY(self, message, text=None, *rest):
        text = clean(text or "")[:w.AWAY_LENGTH].strip()
        self.factory.lobby.setAway(self.user, text or None)
        if text:
            self.numeric(w.RPL_NOWAWAY, "You have been marked as being away")
        else:
            self.numeric(w.RPL_UNAWAY, "You are no longer marked as being away")

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

    # The Lobby's events

    def deliver(self, event):
        kind = type(event)
        if kind is Said:  # every member, for every message: only closing() is skipped,
            return self._deliverSaid(event)  # which acts on Stopping and MadeWay alone
        elif kind is Joined:
            self.line(format("JOIN", "#" + event.room, source=self.maskOf(event.name),
                             tags=self.tags()))
            joiner = self.factory.lobby.names.get(event.name.casefold())
            if joiner is not None and joiner.away and "away-notify" in self.caps:
                self.line(format("AWAY", joiner.away, source=self.mask(joiner),
                                 tags=self.tags()))
        elif kind is Left:
            params = ("#" + event.room, event.text) if event.text else ("#" + event.room,)
            self.line(format("PART", *params, source=self.maskOf(event.name), tags=self.tags()))
        elif kind is Quit:
            if event.why == "quit":
                text = f"Quit: {event.text}" if event.text else "Quit"
            else:
                text = event.text or "Connection lost"
            self.line(format("QUIT", text, source=self.maskOf(event.name), tags=self.tags()))
        elif kind is Renamed:
            source = f"{event.old}!" + self.maskOf(event.new).split("!", 1)[1]
            line = format("NICK", event.new, source=source, tags=self.tags())
            if event.new == self.me:  # our own: it answers our NICK
                self.labels.reply(line)
            else:
                self.line(line)
        elif kind is Whispered:
            self.line(said("NOTICE" if event.notice else "PRIVMSG", event.recipient,
                           event.text, self.maskOf(event.sender),
                           self.tags(event.timestamp, event.uid, event.tags)))
        elif kind is Signalled:
            if "message-tags" in self.caps:
                self.line(format("TAGMSG", _signalTarget(event), source=self.maskOf(event.sender),
                                 tags=self.tags(event.timestamp, event.uid, event.tags)))
        elif kind is Noticed:
            self.line(said("NOTICE", "#" + event.room, event.text, self.maskOf(event.sender),
                           self.tags(event.timestamp, event.uid, event.tags)))
        elif kind is Away:
            if "away-notify" in self.caps:
                params = (event.text,) if event.text else ()
                self.line(format("AWAY", *params, source=self.maskOf(event.name),
                                 tags=self.tags()))
        elif kind is ModeChanged:
            params = (event.change,) if event.name is None else (event.change, event.name)
            self.line(format("MODE", "#" + event.room, *params,
                             source=self.maskOf(event.by), tags=self.tags()))
        elif kind is Stopping:
            self.line(format("ERROR", "Closing link: the server is stopping"))
        elif kind is MadeWay:
            self.line(format("ERROR", "Closing link: you did not register, and a newer"
                             " connection needed your place"))
        self.closing(event)

    def _deliverSaid(self, event):
        # Every member, for every broadcast: a member who said none of it
        # does two lookups and a write.
        rendered = event.rendered
        senders = rendered.get("senders")
        if senders is None:
            senders = rendered["senders"] = {m.sender for m in event.messages}
        key = self.saidKey
        mine = self.user.name
        if mine in senders and ("echo-message" not in self.caps or self.labels.echoes):
            echo = "echo-message" in self.caps
            labels = self.labels
            # Lines one by one: ours are left out without echo-message, and
            # an echo that answers a label goes with its answer. The others
            # go out in one write, as they would to anyone else, and each
            # is rendered once per kind of client.
            each = self._saidLines(event, key)
            out = []
            for m, data in zip(event.messages, each):
                if m.sender == mine:
                    if not echo:
                        continue
                    if labels.isEcho(m.uid):
                        if out:  # what came before it, first
                            self.write(b"".join(out))
                            out = []
                        labels.echoed(m.uid, self._said(event, m))
                        continue
                out.append(data)
            if out:
                self.write(b"".join(out))
            return
        data = rendered.get(key)
        if data is None:  # once per kind of client, not once per member
            data = rendered[key] = b"".join(self._saidLines(event, key))
        self.write(data)

    def _saidLines(self, event, key):
        """Each of the event's messages as this kind of client (C{key}) is sent it, encoded."""
        each = event.rendered.get((key, "each"))
        if each is None:
            each = event.rendered[(key, "each")] = tuple(
                self.encode(self._said(event, m)) for m in event.messages)
        return each

    def _said(self, event, m):
        return said("PRIVMSG", "#" + event.room, m.text, self.maskOf(m.sender),
                    self.tags(m.timestamp, m.uid, event.tags.get(m.uid)))


def _unanswered(*params):
    pass


def _signalTarget(event):
    return "#" + event.room if event.room is not None else event.recipient


_COLOURS = re.compile(r"\x03(?:[0-9]{1,2}(?:,[0-9]{1,2})?)?|\x04[0-9A-Fa-f]{6}(?:,[0-9A-Fa-f]{6})?")


def _fromIrc(text):
    """
    What an IRC client said, as the Lobby keeps it: (text, is it an action),
    or (None, False) for a CTCP request or reply, which is not chat. Colour
    codes go with their numbers (the Lobby strips the other control characters).
    """
    action = False
    if text.startswith("\x01"):
        if not text.startswith("\x01ACTION "):
            return None, False
        text, action = text[8:].rstrip("\x01"), True
    if "\x03" in text or "\x04" in text:
        text = _COLOURS.sub("", text)
    return text, action


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

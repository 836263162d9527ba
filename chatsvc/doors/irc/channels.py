"""The IRC door's channel commands: JOIN, PART, NAMES, LIST, WHO, WHOIS,
TOPIC and MODE, over the Lobby's rooms.
"""

import fnmatch
import time

from chatsvc import errors
from chatsvc.doors.irc import wording as w
from chatsvc.doors.irc.labels import batchId
from chatsvc.doors.irc.message import format, said
from chatsvc.rooms import ROOM_NAME
from chatsvc.text import clean


class Channels:
    """The channel commands of an L{IRCProtocol} (a mixin)."""

    # Channels

    def roomOf(self, channel, joined=True, secretToo=True):
        """
        The Room a channel names, or None (after the numeric saying why);
        without C{secretToo}, a secret room is no such channel to outsiders.
        """
        lobby = self.factory.lobby
        room = lobby.rooms.get(channel[1:].casefold()) if channel.startswith("#") else None
        if room is not None and not secretToo and not lobby.canSee(self.user, room):
            room = None
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
        keys = keys.split(",") if keys else []
        for i, channel in enumerate(self._targets(channels)):
            self._join(channel, keys[i] if i < len(keys) else None)

    def _targets(self, names, numeric=None):
        """The first TARGETS of a comma-separated list; 407 (by C{numeric}) for the rest."""
        names = names.split(",")
        if len(names) > w.TARGETS:
            (numeric or self.numeric)(w.ERR_TOOMANYTARGETS, clean(names[w.TARGETS])[:64],
                                      f"Too many targets: at most {w.TARGETS} at once")
        return names[:w.TARGETS]

    def _join(self, channel, key=None):
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
        try:
            if name.casefold() in lobby.rooms:
                d = lobby.join(self.user, name, exclusive=False, key=key)
            else:  # IRC creates a channel by joining it
                try:
                    d = self.createRoom(name, exclusive=False)
                except errors.CreatingTooOften as refusal:
                    return self.reply(
                        "FAIL", "JOIN", "CREATING_TOO_OFTEN", "#" + name,
                        f"Your address has created channels too often; try again in"
                        f" {max(1, round(refusal.wait / 60))} min, or join one that exists"
                        " (/list)")
                except errors.RoomExists:  # being created by someone else right now
                    d = lobby.join(self.user, name, exclusive=False, key=key)
        except errors.ChatError as refusal:
            if self.joinRefused(clean(channel)[:64], refusal):
                return
            raise
        self.waitFor(d.addCallback(self._arrived),
                                      lambda failure: self._joinFailed(failure, channel))

    def _joinFailed(self, failure, channel):
        if failure.check(errors.ChatError) and self.joinRefused(clean(channel)[:64],
                                                                 failure.value):
            return
        self._refused(failure)

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
        self.labels.reply(self.joinLine(arrival.room, self.user, self.user.name))
        self.sendTopic(room)
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
        role = room.roleOf(user)
        marks = ("@" if "o" in role else "") + ("+" if "v" in role else "")
        return marks if "multi-prefix" in self.caps else marks[:1]

    def _names(self, room):
        channel = "#" + room.name
        full = "userhost-in-names" in self.caps
        names = [self._prefixes(room, u) + (self.mask(u) if full else u.name)
                 for u in room.everyone()]
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
            if room is None or not self.factory.lobby.canSee(self.user, room):
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
            shown = room is not None and lobby.canSee(self.user, room)
            rooms = iter([(room.name, room.headcount())] if shown else [])
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
            if room is not None and lobby.canSee(self.user, room):
                for user in room.everyone():
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
            user = lobby.person(mask)
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
        user = self.factory.lobby.person(nick)
        if user is None:
            self.numeric(w.ERR_NOSUCHNICK, clean(nick)[:64], "No such nick/channel")
            return self.numeric(w.RPL_ENDOFWHOIS, clean(nick)[:64], "End of /WHOIS list")
        mask = self.mask(user)
        ident = mask.split("!", 1)[1].split("@", 1)[0]
        self.numeric(w.RPL_WHOISUSER, user.name, ident, f"{user.door}.chatsvc", "*",
                     user.realname or user.name)
        channels = [self._prefixes(r, user) + "#" + r.name
                    for r in self.factory.lobby.roomsOf(user)]
        if channels:
            self.numeric(w.RPL_WHOISCHANNELS, user.name, " ".join(channels))
        self.numeric(w.RPL_WHOISSERVER, user.name, self.server,
                     f"chatsvc ({user.door} door)")
        if user.operator:
            self.numeric(w.RPL_WHOISOPERATOR, user.name, "is an IRC operator")
        if user.account is not None:
            self.numeric(w.RPL_WHOISACCOUNT, user.name, user.account, "is logged in as")
        if user.away:
            self.numeric(w.RPL_AWAY, user.name, user.away)
        mind = user.mind
        if hasattr(mind, "lastSpoke"):
            self.numeric(w.RPL_WHOISIDLE, user.name, int(time.time() - mind.lastSpoke),
                         int(mind.signon), "seconds idle, signon time")
        self.numeric(w.RPL_ENDOFWHOIS, user.name, "End of /WHOIS list")

    def irc_MODE(self, message, target=None, *changes):
        if target is None:
            return self.numeric(w.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters")
        if not target.startswith("#"):
            return self._userMode(target, changes)
        room = self.roomOf(target, joined=False, secretToo=False)
        if room is not None:
            self.channelMode(room, changes)

    def _userMode(self, target, changes):
        if target.casefold() != self.me.casefold():
            if self.factory.lobby.person(target) is None:
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

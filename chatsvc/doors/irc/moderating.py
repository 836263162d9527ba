"""The IRC door's commands for running channels and the server: TOPIC,
MODE (channel modes and lists), KICK, INVITE, KILL and DLINE. The Lobby
decides; this says it in numerics.
"""

from chatsvc import errors
from chatsvc.doors.irc import wording as w
from chatsvc.moderation import LIMIT
from chatsvc.rooms import LIST_MODES
from chatsvc.text import clean

FLAGS = "imnst"
MODES_AT_ONCE = 20  # changes one MODE may make; the rest are ignored
# What a refusal to come in is on IRC
JOIN_REFUSALS = {errors.Banned: (w.ERR_BANNEDFROMCHAN, "Cannot join channel (+b)"),
                 errors.InviteOnly: (w.ERR_INVITEONLYCHAN, "Cannot join channel (+i)"),
                 errors.BadKey: (w.ERR_BADCHANNELKEY, "Cannot join channel (+k)"),
                 errors.RoomFull: (w.ERR_CHANNELISFULL, "Cannot join channel (+l)"),
                 errors.AccountsRequired: (w.ERR_NEEDREGGEDNICK,
                                           "Cannot join channel: sign in to an account first")}


class Moderating:
    """The moderation commands of an L{IRCProtocol} (a mixin)."""

    def joinRefused(self, channel, refusal):
        number, text = JOIN_REFUSALS.get(type(refusal), (None, None))
        if number is None:
            return False
        self.numeric(number, channel, text)
        return True

    def sendTopic(self, room, asked=False):
        """332 and 333 for a room with a topic; 331 only when asked."""
        channel = "#" + room.name
        if room.topic is None:
            if asked:
                self.numeric(w.RPL_NOTOPIC, channel, "No topic is set")
            return
        self.numeric(w.RPL_TOPIC, channel, room.topic.text)
        self.numeric(w.RPL_TOPICWHOTIME, channel, self.maskOf(room.topic.by).split("!")[0],
                     int(room.topic.at))

    def irc_TOPIC(self, message, channel=None, *text):
        if channel is None:
            return self.numeric(w.ERR_NEEDMOREPARAMS, "TOPIC", "Not enough parameters")
        room = self.roomOf(channel, joined=bool(text))
        if room is None:
            return
        if not text:
            if not self.factory.lobby.canSee(self.user, room):
                return self.numeric(w.ERR_NOTONCHANNEL, "#" + room.name,
                                    "You're not on that channel")
            return self.sendTopic(room, asked=True)
        try:
            d = self.factory.lobby.setTopic(self.user, room, text[0])
        except errors.NotOperator:
            return self.numeric(w.ERR_CHANOPRIVSNEEDED, "#" + room.name,
                                "You're not channel operator")
        self.waitFor(d, self._refused)

    # MODE

    def channelMode(self, room, changes):
        channel = "#" + room.name
        if not changes:
            letters = "".join(sorted(room.modes - {"k", "l"}))
            args = []
            if room.password is not None:
                letters += "k"
                args.append(room.password if room.key in self.user.rooms else "*")
            if room.limit is not None:
                letters += "l"
                args.append(str(room.limit))
            self.numeric(w.RPL_CHANNELMODEIS, channel, "+" + letters, *args)
            return self.numeric(w.RPL_CREATIONTIME, channel, int(room.created))
        modes, args = changes[0], list(changes[1:])
        on, wanted = True, []
        for letter in modes:
            if letter in "+-":
                on = letter == "+"
            elif letter in LIST_MODES:
                if args:
                    wanted.append((on, letter, args.pop(0)))
                else:
                    self._maskList(room, letter)
            elif letter in "ov":
                if not args:
                    self.numeric(w.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters")
                    continue
                wanted.append((on, letter, args.pop(0)))
            elif letter == "k":
                arg = args.pop(0) if args else None
                if on and not arg:
                    self.numeric(w.ERR_INVALIDMODEPARAM, channel, "k", "*",
                                 "A key is 1 to 32 characters, with no spaces, commas or colons")
                    continue
                wanted.append((on, letter, arg))
            elif letter == "l":
                if on:
                    arg = args.pop(0) if args else ""
                    if not LIMIT.fullmatch(arg) or int(arg) <= 0:
                        self.numeric(w.ERR_INVALIDMODEPARAM, channel, "l", clean(arg)[:32] or "*",
                                     "A limit is a number of members, 1 or more")
                        continue
                    wanted.append((on, letter, arg))
                else:
                    wanted.append((on, letter, None))
            elif letter in FLAGS:
                wanted.append((on, letter, None))
            else:
                self.numeric(w.ERR_UNKNOWNMODE, letter, "is unknown mode char to me")
        if not wanted:
            return
        lobby = self.factory.lobby
        if self.user not in room.operators:
            if room.key not in self.user.rooms:
                return self.numeric(w.ERR_NOTONCHANNEL, channel, "You're not on that channel")
            return self.numeric(w.ERR_CHANOPRIVSNEEDED, channel, "You're not channel operator")
        d = lobby.setModes(self.user, room, wanted[:MODES_AT_ONCE])
        d.addCallback(lambda result: self._modesRefused(room, result[1]))
        self.waitFor(d, self._refused)

    def _modesRefused(self, room, refused):
        channel = "#" + room.name
        for letter, refusal in refused:
            if isinstance(refusal, errors.NoSuchUser):
                self.numeric(w.ERR_NOSUCHNICK, refusal.name[:64], "No such nick/channel")
            elif isinstance(refusal, errors.NotInThatRoom):
                self.numeric(w.ERR_USERNOTINCHANNEL, refusal.name, channel,
                             "They aren't on that channel")
            else:
                self.numeric(w.ERR_INVALIDMODEPARAM, channel, letter, "*", str(refusal))

    def _maskList(self, room, letter):
        entry, end, text = w.LISTS[letter]
        channel = "#" + room.name
        for mask, by, at in self.factory.lobby.maskList(room, letter):
            self.numeric(entry, channel, mask, by or self.server, int(at))
        self.numeric(end, channel, text)

    # KICK and INVITE

    def irc_KICK(self, message, channels=None, nicks=None, reason=None, *rest):
        if not channels or not nicks:
            return self.numeric(w.ERR_NEEDMOREPARAMS, "KICK", "Not enough parameters")
        channels, nicks = channels.split(","), self._targets(nicks)
        if len(channels) == 1:
            channels = channels * len(nicks)
        for channel, nick in zip(channels, nicks):
            room = self.roomOf(channel)
            if room is None:
                continue
            try:
                self.factory.lobby.kick(self.user, room, nick, reason or self.me)
            except errors.NotOperator:
                self.numeric(w.ERR_CHANOPRIVSNEEDED, "#" + room.name, "You're not channel operator")
            except errors.NoSuchUser:
                self.numeric(w.ERR_NOSUCHNICK, clean(nick)[:64], "No such nick/channel")
            except errors.NotInThatRoom:
                self.numeric(w.ERR_USERNOTINCHANNEL, clean(nick)[:64], "#" + room.name,
                             "They aren't on that channel")

    def irc_INVITE(self, message, nick=None, channel=None, *rest):
        if nick is None:  # the channels one is invited to: none kept past joining
            return self.numeric(w.RPL_ENDOFINVITELIST, "End of /INVITE list")
        if channel is None:
            return self.numeric(w.ERR_NEEDMOREPARAMS, "INVITE", "Not enough parameters")
        lobby = self.factory.lobby
        if lobby.person(nick) is None:
            return self.numeric(w.ERR_NOSUCHNICK, clean(nick)[:64], "No such nick/channel")
        room = self.roomOf(channel)
        if room is None:
            return
        try:
            event = lobby.invite(self.user, room, nick)
        except errors.NotOperator:
            return self.numeric(w.ERR_CHANOPRIVSNEEDED, "#" + room.name,
                                "You're not channel operator")
        except errors.BadMode:
            return self.numeric(w.ERR_USERONCHANNEL, lobby.person(nick).name,
                                "#" + room.name, "is already on channel")
        self.numeric(w.RPL_INVITING, event.name, "#" + room.name)
        target = lobby.person(event.name)
        if target is not None and target.away:
            self.numeric(w.RPL_AWAY, target.name, target.away)

    # The server's operators

    def irc_KILL(self, message, nick=None, reason="", *rest):
        if nick is None:
            return self.numeric(w.ERR_NEEDMOREPARAMS, "KILL", "Not enough parameters")
        try:
            self.factory.lobby.killUser(self.user, nick, reason)
        except errors.NotServerOperator:
            self.numeric(w.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")
        except errors.NoSuchUser:
            self.numeric(w.ERR_NOSUCHNICK, clean(nick)[:64], "No such nick/channel")

    def irc_DLINE(self, message, mask=None, *reason):
        """DLINE ADDRESS [:reason]: ban an address (or network) server-wide."""
        if mask is None:
            return self.numeric(w.ERR_NEEDMOREPARAMS, "DLINE", "Not enough parameters")
        try:
            d = self.factory.lobby.banAddress(self.user, mask, reason[-1] if reason else "")
        except errors.NotServerOperator:
            return self.numeric(w.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")
        d.addCallback(lambda count: self.reply(
            "NOTICE", self.me, f"{clean(mask)} is banned; {count} disconnected"))
        self.waitFor(d, self._refused)

    def irc_UNDLINE(self, message, mask=None, *rest):
        if mask is None:
            return self.numeric(w.ERR_NEEDMOREPARAMS, "UNDLINE", "Not enough parameters")
        try:
            d = self.factory.lobby.unbanAddress(self.user, mask)
        except errors.NotServerOperator:
            return self.numeric(w.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")
        d.addCallback(lambda _: self.reply("NOTICE", self.me, f"{clean(mask)} is no longer banned"))
        self.waitFor(d, self._refused)

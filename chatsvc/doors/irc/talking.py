"""The IRC door's talking: PRIVMSG, NOTICE and TAGMSG to channels and nicks,
and the commands about people (AWAY, ISON, USERHOST, OPER) and the server's
clock and version.
"""

import hmac
import re
import time

from chatsvc import __version__, errors
from chatsvc.doors.irc import wording as w
from chatsvc.doors.irc.message import LINE, format, said
from chatsvc.text import clean


ROOM_FOR_PREFIX = 160  # ":nick!~ident@web.chatsvc PRIVMSG #a-long-room :" is ~100 bytes


class Talking:
    """The talking commands of an L{IRCProtocol} (a mixin)."""

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
                try:
                    event = lobby.signal(self.user, room=room, tags=self.clientTags)
                except (errors.Moderated, errors.CannotSend) as refusal:
                    self.numeric(w.ERR_CANNOTSENDTOCHAN, "#" + room.name,
                                 f"Cannot send to channel: {refusal}")
                    continue
            else:
                if target.casefold() not in lobby.names:
                    self.numeric(w.ERR_NOSUCHNICK, clean(target)[:64], "No such nick/channel")
                    continue
                event = lobby.signal(self.user, name=target, tags=self.clientTags)
            if "echo-message" in self.caps and "message-tags" in self.caps:
                self.reply("TAGMSG", signalTarget(event), source=self.mask(),
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
        # A prefix and a target take well under ROOM_FOR_PREFIX bytes: only a
        # longer text needs its relayed line measured.
        long = len(text) * 4 > LINE - ROOM_FOR_PREFIX and \
            len(text.encode("utf-8")) > LINE - ROOM_FOR_PREFIX
        for target in self._targets(targets, numeric):
            if long and len(format(command, target, text, source=self.mask())
                            .encode("utf-8")) > LINE:
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
                    continue
                try:
                    lobby.maySpeak(self.user, room)
                except (errors.NotInRoom, errors.Moderated, errors.CannotSend,
                        errors.AccountsRequired) as refusal:
                    numeric(w.ERR_CANNOTSENDTOCHAN, "#" + room.name,
                            "Cannot send to channel: join it first"
                            if isinstance(refusal, errors.NotInRoom) else
                            f"Cannot send to channel: {refusal}")
                    continue
                if command == "NOTICE":
                    event = lobby.notice(self.user, room, text, self.clientTags)
                    if "echo-message" in self.caps:
                        self.labels.reply(said("NOTICE", "#" + room.name, event.text,
                                               self.mask(), self.tags(event.timestamp,
                                                                      event.uid, event.tags)))
                else:
                    self._say(room, text, action)
            elif target.casefold() == "nickserv" and command == "PRIVMSG":
                self.toNickServ(text)
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
            self.waitFor(d, notStored)

    def _whisper(self, command, target, text, numeric, action):
        lobby = self.factory.lobby
        recipient = lobby.names.get(target.casefold())
        if recipient is None and lobby.nameElsewhere(target) is None:  # nor on another server
            return numeric(w.ERR_NOSUCHNICK, clean(target)[:64], "No such nick/channel")
        event = lobby.whisper(self.user, target, text, command == "NOTICE", self.clientTags,
                              action)
        if "echo-message" in self.caps:
            self.labels.reply(said(command, event.recipient, event.text, self.mask(),
                                   self.tags(event.timestamp, event.uid, event.tags)))
        if recipient is self.user:
            self.deliver(event)
        elif recipient is not None and recipient.away and command == "PRIVMSG":
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
        lobby = self.factory.lobby  # here or on other servers
        online = [person.name for person in (lobby.person(n) for word in nicks
                                             for n in word.split()) if person is not None]
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
            user = self.factory.lobby.person(nick)
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


def _unanswered(*params):
    pass


def signalTarget(event):
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

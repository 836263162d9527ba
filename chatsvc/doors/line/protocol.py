"""
The native front door: a line protocol a person can use with ``nc``. Turns
lines into calls on the Lobby and the Lobby's events into marked lines
(see protocol.md: ``<name>`` said, ``*`` notice, ``!`` error, ``->``/``<-`` private).
"""

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ServerFactory
from zope.interface import implementer

from chatsvc import errors
from chatsvc.doors.connection import Connection, DoorFactory
from chatsvc.doors.line import wording
from chatsvc.doors.line.commands import Chat, Invocation, parse
from chatsvc.doors.line.moderating import Moderating
from chatsvc.events import IChatClient, Said
from chatsvc.text import clean

LEGACY_QUIT = b"#quit"  # what the original chatClient.py waits for to leave
LEAVING = {"create", "join", "leave", "quit"}  # commands that take you out of your room
NAME_WORDS = {"quit": "quit", "/quit": "quit", "help": "help", "/help": "help",
              "commands": "help", "/commands": "help"}  # understood at the name prompt


@implementer(IChatClient)
class ChatProtocol(Moderating, Connection):
    door = "native"

    def __init__(self):
        super().__init__()
        self.legacy = False  # the peer is the original chatClient.py
        self._unconfirmed = 0  # messages said but not yet stored and echoed
        self._whenConfirmed = None  # a quit waiting for them
        self._tried = None  # the registered name last tried at the name prompt

    # What this door says

    def greet(self):
        self.notice(f"Welcome to chatsvc! {wording.NAME_PROMPT}")

    def refuse(self, refusal):
        self.error(str(refusal))

    def tooLong(self, replaced=False):
        if replaced:
            self.error(f"That line is longer than {self.maxLine} bytes once its invalid"
                       " UTF-8 bytes are replaced (each by 3 bytes); it was discarded.")
        else:
            self.error(f"That line is longer than {self.maxLine} bytes; it was discarded.")

    def slowed(self):
        self.line(wording.slowed(self.settings.flood_rate, self.settings.flood_burst))

    def timedOut(self, what):
        if what == "login":
            self.error(f"You did not choose a screen name within "
                       f"{self.settings.login_timeout:g} seconds. Goodbye.")
        else:
            self.notice(f"You were silent for {self.settings.idle_timeout:g} seconds."
                        " Closing the connection.")

    def failed(self):
        self.error("Sorry, the server failed to do that. Please tell its operator.")

    @property
    def room(self):
        """The room this user is in (the native door keeps them in one at most)."""
        return next(iter(self.user.rooms.values()), None)

    # Reading lines

    def textReceived(self, text):
        # Clean at the edge: no control character or escape goes any further,
        # not even back to its sender inside an error message.
        line = clean(text)
        if self.legacy and line.startswith("> "):
            line = line[2:]  # the original client's prompt rides on every line
        try:
            if self.user.name is None:
                self.nameReceived(line)
            else:
                self.commandReceived(line)
        except errors.ChatError as refusal:
            self.error(str(refusal))

    def nameReceived(self, line):
        if self.user.name is None and line.startswith("name:") and not self.legacy:
            self.legacy = True
            line = line[len("name:"):]
        word = NAME_WORDS.get(line.strip().lower())
        if word == "quit":
            return self._goodbye("Goodbye.")
        if word == "help":
            self.notice(wording.NAME_HELP.format(limit=self.settings.name_max))
            self.notice(wording.NAME_PROMPT)
            return
        parts = line.split()
        if len(parts) > 1 and parts[0].lower().lstrip("/") == "identify":
            return self._identifyAtPrompt(parts[1:])
        try:
            name = self.factory.lobby.chooseName(self.user, line)
        except errors.NameRegistered as refusal:
            self._tried = refusal.name
            self.error(str(refusal))
            self.notice(wording.NAME_PROMPT)
            return
        except errors.ChatError as refusal:
            self.error(str(refusal))
            self.notice(wording.NAME_PROMPT)
            return
        claiming = self.factory.lobby.whenClaimed(self.user)
        if claiming is None:
            return self._welcome(name)
        self._waitFor(claiming.addCallback(self._claimed, name))  # with several servers

    def _claimed(self, ours, name, signedIn=False):
        if ours:
            return self._welcome(name, signedIn)
        self.error(str(errors.NameTaken(name)))
        self.notice(wording.NAME_PROMPT)

    def _welcome(self, name, signedIn=False):
        self.log.info("{name} arrived from {peer}", name=name, peer=self.transport.getPeer())
        self.named()
        self.lines(wording.welcome(name, signedIn,
                                   self.settings.accounts == "required"
                                   and self.user.account is None, self.user.operator))

    def _identifyAtPrompt(self, args):
        """identify PASSWORD (for the registered name just tried) or identify NAME PASSWORD."""
        if len(args) == 1 and self._tried is None:
            self.error("Type identify NAME PASSWORD, or your screen name first.")
            self.notice(wording.NAME_PROMPT)
            return
        if len(args) > 2:
            self.error("Usage: identify [NAME] PASSWORD (one word each).")
            self.notice(wording.NAME_PROMPT)
            return
        name, password = (self._tried, args[0]) if len(args) == 1 else args

        def identified(name):
            if self.user is None or self.user.name is None:
                return
            self._tried = None
            claiming = self.factory.lobby.whenClaimed(self.user)
            if claiming is not None:  # several servers: welcomed once the name is theirs
                return claiming.addCallback(self._claimed, name, signedIn=True)
            self._welcome(name, signedIn=True)

        def refused(failure):
            self._refused(failure)
            if self.user is not None and self.user.name is None:
                self.notice(wording.NAME_PROMPT)
        try:
            d = self.factory.lobby.identify(self.user, name, password)
        except errors.ChatError as refusal:
            self.error(str(refusal))
            self.notice(wording.NAME_PROMPT)
            return
        self.waitFor(d.addCallback(identified), refused)

    def commandReceived(self, line):
        parsed = parse(line, self.user.operator)
        if isinstance(parsed, Chat):
            parsed = self._keyedJoin(line) or parsed
        if isinstance(parsed, Chat):
            self.cmd_say(parsed.text)
        elif parsed.name in LEAVING and self._unconfirmed:
            # Let the echoes of what was said here arrive before leaving it.
            self._whenConfirmed = Deferred()
            self._whenConfirmed.addCallback(lambda _: self.commandReceived(line))
            self._waitFor(self._whenConfirmed)
        else:
            getattr(self, "cmd_" + parsed.name)(*parsed.args)

    def _keyedJoin(self, line):
        """
        C{join ROOM KEY} without a /, for a room that has a key: any other
        "join the party" is still chat.
        """
        parts = line.split()
        if len(parts) != 3 or parts[0].lower() != "join":
            return None
        room = self.factory.lobby.rooms.get(parts[1].casefold())
        if room is None or room.password is None:
            return None
        return Invocation("join", (parts[1], parts[2]))

    # Commands

    def cmd_commands(self):
        self.lines(wording.commands(self.user.operator))

    def cmd_create(self, name):
        d = self.createRoom(name)
        d.addCallback(self.arrived)
        self._waitFor(d)

    def cmd_list(self, pattern):
        lobby = self.factory.lobby
        here = self.room.name if self.room else None
        # Secret rooms are neither listed nor counted for those outside them.
        self._sendPaced(wording.roomList(lobby.roomList(pattern, self.user),
                                         lobby.roomCount(self.user), here, pattern))

    def cmd_join(self, name, key=None):
        d = self.factory.lobby.join(self.user, name, key=key)
        d.addCallback(self._joined)
        self._waitFor(d)

    def _joined(self, arrival):
        if arrival is None:
            if self.room is not None:
                self.notice(f"You are in {self.room.name} already.")
        else:
            self.arrived(arrival)

    def cmd_online(self):
        self._sendPaced(wording.online(self.factory.lobby.online()))

    def cmd_leave(self):
        room = self._currentRoom("leave one")
        self.factory.lobby.leave(self.user, room)
        self.notice(f"You left {room.name}. You are in the Lobby.")

    def cmd_who(self):
        room = self.room
        if room is None:
            names = self.factory.lobby.online()
            self.notice(f"Online ({len(names)}): {', '.join(names)}. You are in the Lobby.")
        else:
            names = [u.name for u in room.everyone()]
            self.notice(f"In {room.name} ({len(names)}): {', '.join(names)}.")

    def cmd_history(self, count):
        room = self._currentRoom("read a room's history")
        d = self.factory.lobby.history(self.user, room, count)
        d.addCallback(self.paged)
        self._waitFor(d)

    def cmd_msg(self, name, text):
        lobby = self.factory.lobby
        event = lobby.whisper(self.user, name, text)
        self.line(f"-> {event.recipient}: {event.text}")
        recipient = lobby.names.get(event.recipient.casefold())
        if recipient is not None and recipient.away:
            self.notice(f"{recipient.name} is away: {recipient.away}")

    def cmd_me(self, text):
        self.cmd_say(text, action=True)

    def cmd_say(self, text, action=False):
        room = self._currentRoom("talk: no one would hear that")
        # The echo, delivered with everyone else's copy, is the acknowledgement.
        # Messages are pipelined (a paste of many lines shares transactions), so
        # the answers to commands typed after one may arrive before its echo.
        d = self.factory.lobby.say(self.user, room, text, action=action)
        self._unconfirmed += 1
        d.addErrback(self._refusedBy, self._refused)
        d.addBoth(self._confirmed)

    def _confirmed(self, _):
        self._unconfirmed -= 1
        if not self._unconfirmed and self._whenConfirmed is not None:
            waiting, self._whenConfirmed = self._whenConfirmed, None
            waiting.callback(None)

    def cmd_quit(self):
        self._goodbye(f"Goodbye, {self.user.name}.")

    def _goodbye(self, text):
        if self.legacy:
            self.write(LEGACY_QUIT)
        else:
            self.notice(text)
        self.factory.lobby.disconnect(self.user, "quit")  # the room hears it now
        self._close()

    def _currentRoom(self, what):
        room = self.room
        if room is None:
            raise errors.NotInRoom(what)
        return room

    def _waitFor(self, d):
        """Answer C{d}'s refusal, if any, reading nothing more until it is done."""
        self.waitFor(d, self._refused)

    def _refused(self, failure):
        if failure.check(errors.ChatError):
            self.error(str(failure.value))
        else:
            self.failed()

    # Showing what happened

    def arrived(self, arrival):
        if arrival is not None:  # None: disconnected while the room was being made
            self._sendPaced(wording.arrival(arrival))

    def paged(self, page):
        self._sendPaced(wording.page(page))

    def _sendPaced(self, lines):
        self.sendPaced(lines)

    def deliver(self, event):
        if type(event) is Said:
            data = event.rendered.get("native")
            if data is None:  # once per event, not once per member
                data = event.rendered["native"] = wording.said(event.messages)
            self.write(data)
        else:
            room = self.room
            text = wording.event(event, room.name if room else "the Lobby",
                                 self.user.name if self.user else None)
            if text is not None:
                self.line(text)
            self.closing(event)

    def notice(self, text):
        self.line("* " + text)

    def error(self, text):
        self.line("! " + text)


class ChatFactory(DoorFactory, ServerFactory):
    """Makes one L{ChatProtocol} per connection, all sharing one Lobby."""

    protocol = ChatProtocol

"""The Lobby's events as IRC lines, for one IRC connection: a broadcast is
rendered once per kind of client (its capabilities), not once per member.
"""

from chatsvc.doors.irc.message import format, said
from chatsvc.doors.irc.talking import signalTarget
from chatsvc.events import (Away, Joined, Left, MadeWay, ModeChanged, Noticed, Quit,
                            Renamed, Said, Signalled, Stopping, Whispered)


# The kinds of client a room's messages are rendered for once each, by
# server-time then message-tags: made once, not per member.
SAID_KEYS = ((("irc", False, False), ("irc", False, True)),
             (("irc", True, False), ("irc", True, True)))


class Delivery:
    """How an L{IRCProtocol} shows the Lobby's events (a mixin)."""

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
                self.line(format("TAGMSG", signalTarget(event), source=self.maskOf(event.sender),
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

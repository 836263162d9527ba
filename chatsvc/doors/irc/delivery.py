"""The Lobby's events as IRC lines, for one IRC connection: a broadcast is
rendered once per kind of client (its capabilities), not once per member.
"""

from chatsvc.doors.irc.message import format, said
from chatsvc.doors.irc.talking import signalTarget
from chatsvc.events import (AccountChanged, Away, Invited, Joined, Kicked, Killed, Left,
                            MadeWay, ModeChanged, Noticed, Quit, Renamed, Said, Signalled,
                            Stopping, TopicChanged, Whispered)


def saidKey(caps):
    """
    The kind of client a room's messages are rendered for once each: by
    the capabilities that change how a message looks.
    """
    return ("irc", "server-time" in caps, "message-tags" in caps, "account-tag" in caps)


def modeLine(changes):
    """((change, argument), ...) as one MODE's parameters: "+ov-b", "alice", "bob", "x!*@*"."""
    letters, args, sign = "", [], None
    for change, arg in changes:
        if change[0] != sign:
            sign = change[0]
            letters += sign
        letters += change[1:]
        if arg is not None:
            args.append(str(arg))
    return (letters, *args)


class Delivery:
    """How an L{IRCProtocol} shows the Lobby's events (a mixin)."""

    # The Lobby's events

    def deliver(self, event):
        kind = type(event)
        if kind is Said:  # every member, for every message: only closing() is skipped,
            return self._deliverSaid(event)  # which acts on Stopping and MadeWay alone
        elif kind is Joined:
            joiner = self.factory.lobby.person(event.name)
            self.line(self.joinLine(event.room, joiner, event.name))
            if joiner is not None and joiner.away and "away-notify" in self.caps:
                self.line(format("AWAY", joiner.away, source=self.mask(joiner),
                                 tags=self.tags()))
        elif kind is Left:
            params = ("#" + event.room, event.text) if event.text else ("#" + event.room,)
            self.line(format("PART", *params, source=self.maskOf(event.name),
                             tags=self.tags(source=event.name)))
        elif kind is Quit:
            if event.why == "quit":
                text = f"Quit: {event.text}" if event.text else "Quit"
            else:
                text = event.text or "Connection lost"
            self.line(format("QUIT", text, source=self.maskOf(event.name),
                             tags=self.tags(source=event.name)))
        elif kind is Renamed:
            source = f"{event.old}!" + self.maskOf(event.new).split("!", 1)[1]
            line = format("NICK", event.new, source=source, tags=self.tags(source=event.new))
            if event.new == self.me:  # our own: it answers our NICK
                self.labels.reply(line)
            else:
                self.line(line)
        elif kind is Whispered:
            self.line(said("NOTICE" if event.notice else "PRIVMSG", event.recipient,
                           event.text, self.maskOf(event.sender),
                           self.tags(event.timestamp, event.uid, event.tags, event.sender)))
        elif kind is Signalled:
            if "message-tags" in self.caps:
                self.line(format("TAGMSG", signalTarget(event), source=self.maskOf(event.sender),
                                 tags=self.tags(event.timestamp, event.uid, event.tags,
                                                event.sender)))
        elif kind is Noticed:
            self.line(said("NOTICE", "#" + event.room, event.text, self.maskOf(event.sender),
                           self.tags(event.timestamp, event.uid, event.tags, event.sender)))
        elif kind is Away:
            if "away-notify" in self.caps:
                params = (event.text,) if event.text else ()
                self.line(format("AWAY", *params, source=self.maskOf(event.name),
                                 tags=self.tags(source=event.name)))
        elif kind is ModeChanged:
            source = self.server if event.by is None else self.maskOf(event.by)
            line = format("MODE", "#" + event.room, *modeLine(event.changes), source=source,
                          tags=self.tags(source=event.by))
            if event.by == self.me:  # it answers our MODE
                self.labels.reply(line)
            else:
                self.line(line)
        elif kind is TopicChanged:
            line = format("TOPIC", "#" + event.room, event.text, source=self.maskOf(event.by),
                          tags=self.tags(source=event.by))
            if event.by == self.me:
                self.labels.reply(line)
            else:
                self.line(line)
        elif kind is Kicked:
            source = self.server if event.by is None else self.maskOf(event.by)
            self.line(format("KICK", "#" + event.room, event.name, event.reason or event.by
                             or "Removed", source=source, tags=self.tags(source=event.by)))
        elif kind is Invited:
            self.line(format("INVITE", event.name, "#" + event.room, source=self.maskOf(event.by),
                             tags=self.tags(source=event.by)))
        elif kind is AccountChanged:
            if "account-notify" in self.caps and event.name != self.me:
                self.line(format("ACCOUNT", event.account or "*", source=self.maskOf(event.name),
                                 tags=self.tags(source=event.name)))
        elif kind is Killed:
            why = f"Killed by {event.by}: {event.reason}" if event.by else event.reason
            self.line(format("ERROR", f"Closing link: {why}"))
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
                    self.tags(m.timestamp, m.uid, event.tags.get(m.uid), m.sender))

    def joinLine(self, room, user, name):
        """A JOIN of C{name} (online as C{user}) to C{room}, as this client takes it."""
        params = ("#" + room,)
        if "extended-join" in self.caps:
            params += ((user.account if user else None) or "*",
                       (user.realname if user else "") or name)
        return format("JOIN", *params, source=self.maskOf(name), tags=self.tags(source=name))

"""
The IRC door delivering what is said in a channel (IRCProtocol._deliverSaid),
over StringTransports: one write per member for each broadcast, a sender's
own lines only with echo-message, and a labeled echo as its command's
answer, after the others' lines.
"""

from twisted.trial.unittest import TestCase

from chatsvc.doors.irc.protocol import IRCFactory
from tests.memorystore import MemoryStore
from tests.support import Session, makeLobby


class DeliveryTests(TestCase):
    def setUp(self):
        self.store = MemoryStore()
        self.factory = IRCFactory(makeLobby(self.store), serverName="srv")

    def member(self, nick, caps=()):
        session = Session(self.factory)
        if caps:
            session.send(f"CAP REQ :{' '.join(caps)}\r\n".encode())
        session.send(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nCAP END\r\n".encode())
        session.send(b"JOIN #room\r\n")
        session.read()
        writes = session.writes = []
        write = session.protocol.write
        session.protocol.write = lambda data: (writes.append(data), write(data))
        return session

    def say(self, *said):
        """Each (session, line) is sent while the store holds them; then one commit."""
        self.store.holding = []
        for session, line in said:
            session.send(line)
        self.store.release()
        self.factory.clock.advance(0)

    def test_oneWriteEach(self):
        a, b = self.member("a"), self.member("b", ["echo-message"])
        c = self.member("c")
        for s in (a, b, c):
            s.read()
            del s.writes[:]
        self.say((a, b"PRIVMSG #room :one\r\nPRIVMSG #room :two\r\n"),
                 (b, b"PRIVMSG #room :three\r\n"), (c, b"PRIVMSG #room :four\r\n"))
        lines = {n: f":{n}!~{n}@irc.chatsvc PRIVMSG #room " for n in "abc"}  # one word: no colon
        self.assertEqual(a.read(), [lines["b"] + "three", lines["c"] + "four"])
        self.assertEqual(b.read(), [lines["a"] + "one", lines["a"] + "two",
                                    lines["b"] + "three", lines["c"] + "four"])
        self.assertEqual(c.read(), [lines["a"] + "one", lines["a"] + "two",
                                    lines["b"] + "three"])
        self.assertEqual([len(s.writes) for s in (a, b, c)], [1, 1, 1])

    def test_labeledEcho(self):
        """
        A labeled echo is its command's answer, sent once the message has
        been stored and sent to everyone: after the rest of the broadcast.
        """
        a = self.member("a", ["echo-message", "labeled-response", "batch"])
        b = self.member("b")
        a.read()
        self.say((b, b"PRIVMSG #room :before\r\n"),
                 (a, b"@label=L1 PRIVMSG #room :mine\r\n"),
                 (b, b"PRIVMSG #room :after\r\n"))
        self.assertEqual(a.read(), [":b!~b@irc.chatsvc PRIVMSG #room before",
                                    ":b!~b@irc.chatsvc PRIVMSG #room after",
                                    "@label=L1 :a!~a@irc.chatsvc PRIVMSG #room mine"])

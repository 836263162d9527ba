"""
Property-based tests: arbitrary bytes, split at arbitrary points, from several
users connecting and disconnecting in any order. Whatever arrives, the server
raises nothing, answers every complete line, keeps rooms and users consistent,
and never passes control characters from one user to another.
"""

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from tests.support import makeServer

MAX_LINE = 64
SLOTS = 4

word = st.sampled_from([
    b"list", b"join", b"create", b"leave", b"who", b"history", b"msg", b"say", b"quit",
    b"help", b"commands", b"/", b"/join", b"/msg", b"/history", b"/say", b"/dance",
    b"name:", b">",
])
junk = st.one_of(
    st.sampled_from([
        b"room1", b"ROOM1", b"r.2", b"u0", b"U1", b"Guest1", b"0", b"3", b"99999999999",
        b"\t", b"\r", b"\x1b[31m", b"\x1b]0;x\x07", b"\x00", b"\x07", b"\x7f", b"\xc2\x9b",
        b"\xe2\x80\xa8", b"\xff\xfe", b"\xc3", b"x" * (MAX_LINE + 10),
    ]),
    st.binary(max_size=8),
    st.text(max_size=8).map(lambda t: t.encode("utf-8")),
)
line = st.tuples(
    st.one_of(word, st.just(b"")),
    st.lists(junk, max_size=4),
    st.sampled_from([b"\n", b"\r\n", b""]),
).map(lambda t: b" ".join([t[0], *t[1]]).lstrip(b" ") + t[2])
chunk = st.lists(line, min_size=1, max_size=5).map(b"".join)
# Besides raw bytes: shortcuts to states worth fuzzing in (named, in a room).
action = st.tuples(st.integers(0, SLOTS - 1),
                   st.one_of(st.sampled_from(["connect", "login", "enter", "close"]), chunk))

# What must never reach a screen: C0 controls but tab and newline, DEL, C1,
# and the line separators.
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


class ProtocolFuzzTests(TestCase):
    @settings(max_examples=300, deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(action, max_size=40))
    def test_anyInput(self, actions):
        lobby, connect = makeServer(max_line=MAX_LINE, max_clients=SLOTS - 1,
                                    history_replay=3)
        sessions = [None] * SLOTS
        for slot, what in actions:
            session = sessions[slot]
            if what in ("connect", "login"):
                if session is None:
                    sessions[slot] = connect()
                    if what == "login":
                        sessions[slot].send(f"u{slot}")
            elif what == "enter":
                if session is not None:
                    session.send(b"create room1\njoin room1\n")
            elif what == "close":
                if session is not None:
                    session.close()
                    sessions[slot] = None
            elif session is not None and not session.transport.disconnecting:
                self.sendAndCheckAnswers(session, what)
            # A transport the server closed is gone: tell the protocol, as the reactor would.
            for i, s in enumerate(sessions):
                if s is not None and s.transport.disconnecting:
                    s.close()
                    sessions[i] = None
            self.checkConsistent(lobby, sessions)
            for s in sessions:
                if s is not None:
                    self.checkClean(s.transport.value())
        self.assertEqual(self.flushLoggedErrors(), [])

    def sendAndCheckAnswers(self, session, data):
        session.transport.clear()
        discarding = session.protocol._discarding
        session.send(data)
        output = session.transport.value()
        self.checkClean(output)
        if session.transport.disconnecting:
            return  # quit, or refused: answered by closing
        complete = data.count(b"\n") - (1 if discarding and b"\n" in data else 0)
        answers = output.count(b"\n")
        self.assertGreaterEqual(answers, complete, (data, output))

    def checkClean(self, output):
        text = output.decode("utf-8")  # the server only ever sends valid UTF-8
        for line in text.split("\n"):
            self.assertIsNone(FORBIDDEN.search(line), repr(line))

    def checkConsistent(self, lobby, sessions):
        live = {s.protocol.user for s in sessions if s is not None and s.protocol.user}
        self.assertEqual(lobby.users, live)
        self.assertEqual(set(lobby.names.values()), {u for u in live if u.name})
        for room in lobby.rooms.values():
            for user in room.members:
                self.assertIn(user, live)
                self.assertIs(user.rooms[room.key], room)
        for user in live:
            self.assertLessEqual(len(user.rooms), 1)  # the native door: one room at a time
            for room in user.rooms.values():
                self.assertIn(user, room.members)
        counts = dict(lobby.roomList())
        for name, count in counts.items():
            self.assertEqual(count, sum(1 for u in live if name.casefold() in u.rooms))

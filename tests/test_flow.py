"""The pieces every door shares: the token bucket and the pacer of long output."""

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from chatsvc.doors.flow import Pacer, TokenBucket


class TokenBucketTests(TestCase):
    def test_clockGoingBackRefillsNothingAndHoldsNobody(self):
        clock = Clock()
        clock.advance(1000)
        bucket = TokenBucket(5, 10, clock)
        for _ in range(9):
            self.assertEqual(bucket.take(), 0)
        clock.rightNow -= 60
        self.assertEqual(bucket.take(), 0.2)  # one line's worth, not a minute's
        self.assertNotEqual(bucket.allow(), 0)
        clock.advance(0.2)
        self.assertEqual(bucket.allow(), 0)  # 0.2 s later, as if the clock had not moved

    def test_allowRefusesWithoutSpending(self):
        clock = Clock()
        bucket = TokenBucket(1, 1, clock)
        self.assertEqual(bucket.allow(), 0)
        for _ in range(100):
            self.assertEqual(bucket.allow(), 1)
        clock.advance(1)
        self.assertEqual(bucket.allow(), 0)


class PacerTests(TestCase):
    def setUp(self):
        self.clock = Clock()
        self.pacer = Pacer(self.clock)
        self.sent = []

    def sender(self, name, pieces, cost=0.0):
        left = [pieces]

        def send():
            self.sent.append(name)
            self.clock.rightNow += cost  # the time this piece took
            left[0] -= 1
            return left[0] > 0
        return send

    def test_roundRobinOnePieceATime(self):
        self.pacer.add(self.sender("a", 3))
        self.pacer.add(self.sender("b", 1))
        self.pacer.add(self.sender("c", 2))
        self.assertEqual(self.sent, [])  # not within the turn that asked
        self.clock.advance(0)
        self.assertEqual(self.sent, ["a", "b", "c", "a", "c", "a"])

    def test_pauseAsLongAsThePieceTook(self):
        self.pacer.add(self.sender("list", 3, cost=0.004))
        self.clock.advance(0)
        self.assertEqual(self.sent, ["list"])
        (call,) = self.clock.getDelayedCalls()
        self.assertAlmostEqual(call.getTime() - self.clock.seconds(), 0.004)
        self.clock.advance(0.004)
        self.assertEqual(self.sent, ["list", "list"])

    def test_senderAddedDuringATurnIsServedOnce(self):
        def first():
            self.sent.append("first")
            self.pacer.add(self.sender("second", 1))
            return False
        self.pacer.add(first)
        self.clock.advance(0)
        self.assertEqual(self.sent, ["first", "second"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

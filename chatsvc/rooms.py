"""
A room: its members and, while anyone is in it, its newest messages; and
how room names are told apart and matched. The Lobby holds the rooms.
"""

import fnmatch
import re

from twisted.logger import Logger

from chatsvc.store import RoomRecord

ROOM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
RESERVED_ROOMS = {"lobby"}  # where everyone is before joining a room: not a room


def roomMatcher(pattern):
    """
    A test for room names: a pattern with C{*} or C{?} is a glob over the
    whole name, any other a word the name contains; case is ignored.
    """
    if not pattern:
        return None
    pattern = pattern.casefold()
    if "*" in pattern or "?" in pattern:
        match = re.compile(fnmatch.translate(pattern)).match
        return lambda key: match(key) is not None
    return lambda key: pattern in key


class Room:
    """
    A room, its members and, while anyone is in it, its newest messages (for
    join replay): memory grows with the rooms people are in, not with every
    room that has history.
    """

    __slots__ = ("id", "name", "key", "created", "members", "nextSeq", "recent",
                 "delivered", "outbox", "loading", "operators", "voiced", "secret")
    log = Logger()

    def __init__(self, record: RoomRecord):
        self.id = record.id
        self.name = record.name
        self.key = record.name.casefold()
        self.created = record.created
        self.members = {}  # User -> None: a set that keeps join order
        self.nextSeq = record.last_seq + 1
        self.recent = None  # a deque of the newest messages once read; None: not kept
        self.delivered = record.last_seq  # the seq of the newest message broadcast
        self.outbox = []  # stored this turn, to be broadcast at its end
        self.loading = None  # Deferreds waiting for `recent` to be read
        self.operators = set()  # members who may give and take privileges here
        self.voiced = set()
        self.secret = False  # listed only to its members

    def broadcast(self, event, exclude=None):
        """
        Deliver C{event} to each member. A member whose delivery fails is
        disconnected afterwards and never stops the others from hearing it.
        """
        failed = []
        for user in self.members:
            if user is exclude:
                continue
            try:
                user.mind.deliver(event)
            except Exception:
                self.log.failure("Delivery to {user} failed", user=user)
                failed.append(user)
        for user in failed:
            user.mind.disconnect("delivery failed")

"""
A room: its members and, while anyone is in it, its newest messages; and
how room names are told apart and matched. The Lobby holds the rooms.
"""

import fnmatch
import functools
import re
import weakref
from typing import NamedTuple

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


# The room modes, as IRC letters: invite only, keyed, limited, moderated,
# no messages from outside, secret, topic settable by operators only.
MODE_LETTERS = "iklmnst"
LIST_MODES = "beI"  # bans, ban exceptions, invite exceptions: lists of masks
DEFAULT_MODES = "nt"  # as on most IRC networks


class Topic(NamedTuple):
    text: str
    by: str
    at: float


@functools.lru_cache(maxsize=4096)  # checked on every message: translate each glob once
def banMatcher(mask, muting=False):
    """
    A test of a User against a list mask: ``nick!ident@host`` globs,
    ``$a:account`` (signed in to it), or ``$m:mask`` (muted: it matches
    only when C{muting}, for who may speak, not who may join).
    """
    folded = mask.casefold()
    if folded.startswith("$m:"):
        if not muting:
            return lambda user: False
        inner = banMatcher(mask[3:])
        return inner
    if folded.startswith("$a:"):
        account = folded[3:]
        return lambda user: user.account is not None and fnmatch.fnmatchcase(
            user.account.casefold(), account)
    match = re.compile(fnmatch.translate(folded)).match
    return lambda user: any(match(m) for m in user.masks())


class Room:
    """
    A room, its members and, while anyone is in it, its newest messages (for
    join replay): memory grows with the rooms people are in, not with every
    room that has history.
    """

    __slots__ = ("id", "name", "key", "created", "members", "elsewhere", "recent", "queued",
                 "ahead", "filling", "gapTimer",
                 "delivered", "outbox", "loading", "operators", "voiced", "invited",
                 "owner", "topic", "modes", "password", "limit", "lists", "roles")
    log = Logger()

    def __init__(self, record: RoomRecord):
        self.id = record.id
        self.name = record.name
        self.key = record.name.casefold()
        self.created = record.created
        self.members = {}  # User -> None: a set that keeps join order
        self.elsewhere = {}  # casefolded name -> Stranger: members on other servers
        self.recent = None  # a deque of the newest messages once read; None: not kept
        self.delivered = record.last_seq  # the seq of the newest message broadcast
        self.queued = record.last_seq  # ... and of the newest to be (in the outbox)
        self.ahead = {}  # seq -> a message that came before those ahead of it in the room
        self.filling = False  # a hole is being read from the store
        self.gapTimer = None  # when a hole will be read from the store
        self.outbox = []  # stored this turn, to be broadcast at its end
        self.loading = None  # Deferreds waiting for `recent` to be read
        self.operators = set()  # members who run the room now
        self.voiced = set()  # members who may speak when it is moderated
        # Users an operator invited past +i, +k, +l and bans, until they join
        # (the person, not the name: whoever takes the name later is not invited).
        self.invited = weakref.WeakSet()
        # What its operators set, kept in the store (see settings()):
        self.owner = None  # the casefolded account that created it, if any
        self.topic = None  # a Topic, or None
        self.modes = set(DEFAULT_MODES)  # letters of MODE_LETTERS
        self.password = None  # the key +k asks for
        self.limit = None  # the most members +l allows
        # The list modes: bans (b), exceptions to them (e), and masks let in
        # past +i (I); each mask -> (who set it, when).
        self.lists = {"b": {}, "e": {}, "I": {}}
        self.roles = {}  # casefolded account -> "o" or "v", given on each join

    def everyone(self):
        """Its members here, then those on other servers (users and strangers)."""
        yield from self.members
        yield from self.elsewhere.values()

    def headcount(self) -> int:
        return len(self.members) + len(self.elsewhere)

    def roleOf(self, person) -> str:
        """"o", "v", "ov" or "" for a member here or on another server."""
        if person in self.members:
            return ("o" if person in self.operators else "") + \
                ("v" if person in self.voiced else "")
        return getattr(person, "roles", {}).get(self.id, "")

    @property
    def bans(self):
        return self.lists["b"]

    @property
    def secret(self):
        return "s" in self.modes

    def settings(self) -> dict:
        """What the store keeps of how the room is run (JSON)."""
        return {"owner": self.owner,
                "topic": None if self.topic is None else list(self.topic),
                "modes": "".join(sorted(self.modes)), "key": self.password,
                "limit": self.limit,
                "lists": {letter: [[mask, by, at] for mask, (by, at) in masks.items()]
                          for letter, masks in self.lists.items()},
                "roles": dict(self.roles)}

    def restore(self, settings: dict):
        self.owner = settings.get("owner")
        topic = settings.get("topic")
        self.topic = Topic(*topic) if topic else None
        self.modes = set(settings.get("modes", DEFAULT_MODES))
        self.password = settings.get("key")
        self.limit = settings.get("limit")
        lists = settings.get("lists", {})
        self.lists = {letter: {mask: (by, at) for mask, by, at in lists.get(letter, ())}
                      for letter in LIST_MODES}
        self.roles = dict(settings.get("roles", {}))

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

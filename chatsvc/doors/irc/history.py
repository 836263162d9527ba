"""
IRCv3 ``draft/chathistory`` on the IRC door: BEFORE, AFTER, LATEST, AROUND
and BETWEEN a message (by msgid or time stamp) become ranges of the room's
sequence numbers, read from the store in pages no longer than ``history``'s
(CHATHISTORY=N in ISUPPORT); TARGETS lists the channels one is in that have
messages in a span of time.
"""

from twisted.internet.defer import gatherResults, succeed

from chatsvc import errors
from chatsvc.doors.irc import wording as w
from chatsvc.doors.irc.labels import batchId
from chatsvc.doors.irc.message import format

SUBCOMMANDS = ("BEFORE", "AFTER", "LATEST", "AROUND", "BETWEEN", "TARGETS")
HALF_MS = 0.0005  # time stamps are kept to the millisecond
_SAY = {
    "INVALID_PARAMS": "Usage: CHATHISTORY BEFORE|AFTER|LATEST|AROUND target"
                      " msgid=ID|timestamp=T limit, BETWEEN target ref ref limit,"
                      " TARGETS timestamp timestamp limit",
    "INVALID_TARGET": "You can read the history of channels you are in",
}


class _Invalid(Exception):
    def __init__(self, code, *context):
        self.code = code
        self.context = context


def _fail(connection, code, context, description):
    connection.reply("FAIL", "CHATHISTORY", code, *context, description)


def answer(connection, params):
    if not params:
        return connection.numeric(w.ERR_NEEDMOREPARAMS, "CHATHISTORY", "Not enough parameters")
    sub = params[0].upper()
    try:
        if sub not in SUBCOMMANDS:
            raise _Invalid("INVALID_PARAMS", params[0])
        if sub == "TARGETS":
            return _targets(connection, params[1:])
        d = _query(connection, sub, params[1:])
    except _Invalid as invalid:
        return _fail(connection, invalid.code, invalid.context, _SAY[invalid.code])
    except errors.NotInRoom:
        return _fail(connection, "INVALID_TARGET", (sub, params[1]), _SAY["INVALID_TARGET"])
    d.addCallback(_send, connection)
    connection.waitFor(d, lambda failure: _fail(
        connection, "MESSAGE_ERROR", (sub, params[1]),
        "The history could not be read. Please try again."))


def _limit(connection, text):
    if not text.isdigit():
        raise _Invalid("INVALID_PARAMS", text)
    return max(0, min(int(text), connection.settings.history_page_max))


def _room(connection, sub, target):
    room = connection.factory.lobby.rooms.get(target[1:].casefold()) \
        if target.startswith("#") else None
    if room is None or room.key not in connection.user.rooms:
        raise _Invalid("INVALID_TARGET", sub, target)
    return room


def _reference(text, allowStar=False):
    """("msgid", id), ("time", ms) or ("*", None)."""
    if allowStar and text == "*":
        return ("*", None)
    kind, _, value = text.partition("=")
    if kind == "msgid" and value:
        return ("msgid", value)
    if kind == "timestamp":
        ms = w.parseTime(value)
        if ms is not None:
            return ("time", ms)
    raise _Invalid("INVALID_PARAMS", text)


def _seq(lobby, user, room, ref, after):
    """
    Where a reference falls, as a seq: for C{after}, the first message after
    it; otherwise the bound below which everything is before it. None: no
    such message.
    """
    kind, value = ref
    if kind == "msgid":
        d = lobby.seqOf(user, room, value)
        return d.addCallback(lambda seq: None if seq is None else seq + (1 if after else 0))
    seconds = value / 1000
    return lobby.seqAt(user, room, seconds + HALF_MS if after else seconds - HALF_MS)


def _query(connection, sub, params):
    lobby, user = connection.factory.lobby, connection.user
    need = 4 if sub == "BETWEEN" else 3
    if len(params) < need:
        raise _Invalid("INVALID_PARAMS", sub)
    target = params[0]
    room = _room(connection, sub, target)
    limit = _limit(connection, params[need - 1])
    newest = room.delivered + 1  # just past the newest message sent

    def read(low, high, fromTop):
        """At most C{limit} messages in [low, high): the newest of them if C{fromTop}."""
        if high is None or low is None:
            return succeed((target, []))
        low, high = max(1, low), min(high, newest)
        if fromTop:
            low = max(low, high - limit)
        else:
            high = min(high, low + limit)
        return lobby.messagesBetween(user, room, low, high).addCallback(
            lambda messages: (target, messages))

    def after(ref):
        return _seq(lobby, user, room, ref, True)

    def before(ref):
        return _seq(lobby, user, room, ref, False)

    if sub == "LATEST":
        ref = _reference(params[1], allowStar=True)
        if ref[0] == "*":
            return read(1, newest, True)
        return after(ref).addCallback(lambda low: read(low, newest, True))
    ref = _reference(params[1])
    if sub == "BEFORE":
        return before(ref).addCallback(lambda high: read(1, high, True))
    if sub == "AFTER":
        return after(ref).addCallback(lambda low: read(low, newest, False))
    if sub == "AROUND":
        def around(centre):
            if centre is None:
                return read(None, None, False)
            low = centre - (limit - 1) // 2
            return read(low, low + limit, False)
        return before(ref).addCallback(around)
    # BETWEEN: both ends excluded; read from the first end towards the second
    other = _reference(params[2])
    d = gatherResults([after(ref), before(ref), after(other), before(other)])

    def between(seqs):
        afterFirst, beforeFirst, afterOther, beforeOther = seqs
        if None in seqs:
            return read(None, None, False)
        if afterFirst <= afterOther:  # forwards, from the oldest
            return read(afterFirst, beforeOther, False)
        return read(afterOther, beforeFirst, True)  # backwards, from the newest
    return d.addCallback(between)


def _send(result, connection):
    target, messages = result
    connection.labels.pace(connection._historyLines(target, messages))


def _targets(connection, params):
    if len(params) < 3:
        raise _Invalid("INVALID_PARAMS", "TARGETS")
    first, second = _reference(params[0]), _reference(params[1])
    if first[0] != "time" or second[0] != "time":
        raise _Invalid("INVALID_PARAMS", "TARGETS")
    low, high = sorted((first[1] / 1000, second[1] / 1000))
    limit = _limit(connection, params[2])
    found = []
    for room in connection.user.rooms.values():
        latest = room.recent[-1].timestamp if room.recent else None
        if latest is not None and low < latest < high:
            found.append((latest, room.name))
    found.sort()
    ref = batchId() if "batch" in connection.caps else None
    server = connection.server
    lines = [format("CHATHISTORY", "TARGETS", "#" + name, "timestamp=" + w.isoTime(latest),
                    source=server, tags={"batch": ref} if ref else None)
             for latest, name in found[:limit]]
    if ref:
        lines = [format("BATCH", "+" + ref, "draft/chathistory-targets", source=server),
                 *lines, format("BATCH", "-" + ref, source=server)]
    connection.labels.pace(lines)


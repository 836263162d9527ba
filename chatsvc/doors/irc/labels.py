"""
IRCv3 labeled-response: the answer to a command sent with a ``label`` tag
carries the label, on its one line, on an ACK if it has none, or in a
``labeled-response`` batch if it has several, however long they take (the
store, paced output). Everything else goes out as it comes.
"""

import itertools

from chatsvc.doors.irc.message import format

_ids = itertools.count(1)


def batchId() -> str:
    return f"b{next(_ids)}"


def inBatch(line: str, ref: str) -> str:
    """C{line} with a batch tag, unless it has one already (a batch inside the batch)."""
    if not line.startswith("@"):
        return f"@batch={ref} {line}"
    tags = line[1:line.index(" ")]
    if any(t.startswith("batch=") for t in tags.split(";")):
        return line
    return f"@batch={ref};{line[1:]}"


class _Answer:
    """What answers one labeled command."""

    def __init__(self, connection, label):
        self.connection = connection
        self.label = label
        self.lines = []  # held until we know whether there is one line or more
        self.batch = None
        self.pending = 0  # store round trips and paced output still to come
        self.ended = False  # the command's handler has returned

    def add(self, line):
        if self.batch is not None:
            self.connection.line(inBatch(line, self.batch))
        else:
            self.lines.append(line)
            if len(self.lines) > 1:
                self.openBatch()

    def openBatch(self):
        if self.batch is None:
            self.batch = batchId()
            self.connection.line(format("BATCH", "+" + self.batch, "labeled-response",
                                        source=self.connection.server,
                                        tags={"label": self.label}))
            held, self.lines = self.lines, []
            for line in held:
                self.connection.line(inBatch(line, self.batch))

    def done(self):
        self.pending -= 1
        self.finishIfDone()

    def finishIfDone(self):
        if not self.ended or self.pending:
            return
        c = self.connection
        if c.labels.current is self:
            c.labels.current = None
        if self.batch is not None:
            c.line(format("BATCH", "-" + self.batch, source=c.server))
        elif self.lines:
            line = self.lines[0]
            c.line(f"@label={self.label};{line[1:]}" if line.startswith("@")
                   else f"@label={self.label} {line}")
        else:
            c.line(format("ACK", source=c.server, tags={"label": self.label}))


class Labels:
    """One connection's labeled answers; without a label, replies go straight out."""

    def __init__(self, connection):
        self.connection = connection
        self.current = None
        self.echoes = {}  # message uid -> the _Answer its echo belongs to

    @property
    def active(self) -> bool:
        return self.current is not None

    def begin(self, label):
        self.current = _Answer(self.connection, label) if label else None

    def end(self):
        if self.current is not None:
            self.current.ended = True
            self.current.finishIfDone()

    def reply(self, line):
        if self.current is None:
            self.connection.line(line)
        else:
            self.current.add(line)

    def wait(self, d):
        """The answer goes on until C{d} fires."""
        answer = self.current
        if answer is not None:
            answer.pending += 1
            d.addBoth(lambda result: (answer.done(), result)[1])
        return d

    def pace(self, lines):
        """Send a long run of lines through the Pacer, inside the labeled batch if any."""
        answer = self.current
        if answer is None:
            return self.connection.sendPaced(lines)
        answer.openBatch()
        answer.pending += 1
        ref = answer.batch
        self.connection.sendPaced(
            (None if line is None else inBatch(line, ref) for line in lines), answer.done)

    def expectEcho(self, uid):
        if self.current is not None:
            self.echoes[uid] = self.current

    def isEcho(self, uid) -> bool:
        return uid in self.echoes

    def echoed(self, uid, line):
        self.echoes.pop(uid).add(line)

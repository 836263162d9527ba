"""
A terminal for the client's tests: insults' TerminalBuffer with what the
client relies on and TerminalBuffer leaves out: autowrap that can be turned
off (?7l), and a new width, the screen's lines either rewrapped (as tmux,
screen, VTE, kitty do) or cut (as xterm does).
"""

import re
import string

from twisted.conch.insults import helper, insults

_PRINTABLE = string.printable.encode("ascii")
_AUTOWRAP = insults.privateModes.AUTO_WRAP


class _Row(list):
    wraps = False  # the line goes on in the next row: it was wrapped there


class Terminal(helper.TerminalBuffer):

    def _emptyLine(self, width):
        return _Row(super()._emptyLine(width))

    def insertAtCursor(self, b):
        if self.x >= self.width and b in _PRINTABLE and b not in b"\r\n":
            if self.privateModes.get(_AUTOWRAP):
                self.lines[self.y].wraps = True
            else:
                self.x = self.width - 1  # the last column is written over
        super().insertAtCursor(b)

    def eraseToLineEnd(self):
        super().eraseToLineEnd()
        self.lines[self.y].wraps = False

    def unhandledControlSequence(self, buf):
        raise AssertionError(f"the client sent {buf!r}, which no test terminal knows")

    def text(self):
        """The screen's rows, without trailing blanks."""
        return [line.rstrip() for line in bytes(self).decode("utf-8").split("\n")]

    def resize(self, width, rewrap=True):
        """A new width; rewrapped lines keep the bottom row at the bottom."""
        if not rewrap:
            self.lines = [_Row(row[:width] + self._emptyLine(max(0, width - len(row))))
                          for row in self.lines]
            self.width, self.x = width, min(self.x, width - 1)
            return
        lines, current, cursor = [], [], None  # lines as cells, rows joined where they wrap
        for y, row in enumerate(self.lines):
            if y == self.y:
                cursor = (len(lines), len(current) + self.x)
            current.extend(row)
            if not row.wraps:
                lines.append(current)
                current = []
        if current:
            lines.append(current)
        rows = []
        for index, cells in enumerate(lines):
            used = len(cells)
            while used and cells[used - 1][0] is self.void:
                used -= 1
            if index == cursor[0]:
                used = max(used, cursor[1] + 1)
                at = (len(rows) + cursor[1] // width, cursor[1] % width)
            for start in range(0, max(used, 1), width):
                row = _Row(cells[start:start + width])
                row.extend(self._emptyLine(width - len(row)))
                row.wraps = start + width < used
                rows.append(row)
        while len(rows) > self.height and len(rows) - 1 > at[0] and \
                all(ch is self.void for ch, _ in rows[-1]):
            rows.pop()  # blank rows below the cursor go first
        excess = max(0, len(rows) - self.height)
        del rows[:excess]  # then rows off the top (into a history we do not keep)
        rows.extend(self._emptyLine(width) for _ in range(self.height - len(rows)))
        self.lines, self.width = rows, width
        self.y, self.x = at[0] - excess, at[1]


class _Sequences(insults.ClientProtocol.ControlSequenceParser):
    """insults' parser of what a terminal is sent, with private modes (?7l) too."""

    def h(self, proto, handler, buf):
        if buf.startswith(b"?"):
            handler.setPrivateModes([int(mode) for mode in buf[1:].split(b";")])
        else:
            super().h(proto, handler, buf)

    def l(self, proto, handler, buf):  # noqa: E743 (named for the final byte)
        if buf.startswith(b"?"):
            handler.resetPrivateModes([int(mode) for mode in buf[1:].split(b";")])
        else:
            super().l(proto, handler, buf)

    def n(self, proto, handler, buf):
        pass  # cursor position reports: see Screen.feed


class Screen:
    """
    A L{Terminal} fed what a program writes; it answers cursor position
    requests (ESC [ 6 n) as a terminal does, through C{answer}.
    """

    def __init__(self, width, height, answer):
        self.terminal = Terminal()
        self.terminal.width, self.terminal.height = width, height
        self.parser = insults.ClientProtocol(lambda: self.terminal)
        self.parser.controlSequenceParser = _Sequences()
        from twisted.internet.testing import StringTransport
        self.parser.makeConnection(StringTransport())
        self.answer = answer
        self.answers = True  # False: a terminal that never answers
        self._partial = b""

    def feed(self, data):
        data, self._partial = self._partial + data, b""
        split = re.search(rb"\x1b(\[[\d;?]*)?$", data)  # a sequence cut in two: wait for the rest
        if split:
            data, self._partial = data[:split.start()], data[split.start():]
        *before, last = data.split(b"\x1b[6n")
        for part in before:
            self.parser.dataReceived(part)
            if self.answers:
                x, y = self.terminal.reportCursorPosition()
                self.answer(b"\x1b[%d;%dR" % (y + 1, x + 1))
        self.parser.dataReceived(last)

    def cursor(self):
        return self.terminal.reportCursorPosition()  # (column, row)

"""
The line the person is typing in the terminal front end
(L{chatsvc.clientterm}): its characters, the cursor, the editing keys'
actions, history, and the part of it that fits the screen. Knows nothing
of terminals but how many columns a character takes.
"""

import unicodedata


def cellWidth(ch):
    """Columns a character takes on a terminal."""
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in "WF" else 1


def textWidth(text):
    return sum(cellWidth(ch) for ch in text)


class LineEditor:
    """
    The line being typed: its characters, the cursor, history and the part
    of it that fits the screen. Knows nothing of terminals.
    """

    def __init__(self, historySize=500):
        self.chars = []
        self.cursor = 0
        self.history = []
        self.historySize = historySize
        self._browsing = None  # index into history while going through it
        self._draft = ""  # what was typed before going up into history
        self._scroll = 0  # index of the first character shown

    @property
    def text(self):
        return "".join(self.chars)

    def setText(self, text):
        self.chars = list(text)
        self.cursor = len(self.chars)

    def insert(self, text):
        chars = [" " if ch == "\t" else ch for ch in text if ch.isprintable() or ch == "\t"]
        self.chars[self.cursor:self.cursor] = chars
        self.cursor += len(chars)

    def left(self):
        self.cursor = max(0, self.cursor - 1)

    def right(self):
        self.cursor = min(len(self.chars), self.cursor + 1)

    def home(self):
        self.cursor = 0

    def end(self):
        self.cursor = len(self.chars)

    def _wordStart(self):
        i = self.cursor
        while i > 0 and self.chars[i - 1].isspace():
            i -= 1
        while i > 0 and not self.chars[i - 1].isspace():
            i -= 1
        return i

    def _wordEnd(self):
        i, n = self.cursor, len(self.chars)
        while i < n and self.chars[i].isspace():
            i += 1
        while i < n and not self.chars[i].isspace():
            i += 1
        return i

    def wordLeft(self):
        self.cursor = self._wordStart()

    def wordRight(self):
        self.cursor = self._wordEnd()

    def backspace(self):
        if self.cursor:
            self.cursor -= 1
            del self.chars[self.cursor]

    def delete(self):
        del self.chars[self.cursor:self.cursor + 1]

    def killToStart(self):
        del self.chars[:self.cursor]
        self.cursor = 0

    def killToEnd(self):
        del self.chars[self.cursor:]

    def killWordBack(self):
        start = self._wordStart()
        del self.chars[start:self.cursor]
        self.cursor = start

    def killWordForward(self):
        del self.chars[self.cursor:self._wordEnd()]

    def up(self):
        if self._browsing is None:
            if not self.history:
                return
            self._draft, self._browsing = self.text, len(self.history)
        if self._browsing > 0:
            self._browsing -= 1
            self.setText(self.history[self._browsing])

    def down(self):
        if self._browsing is None:
            return
        self._browsing += 1
        if self._browsing < len(self.history):
            self.setText(self.history[self._browsing])
        else:
            self.setText(self._draft)
            self._browsing = None

    def submit(self):
        """The line, now added to history; the editor is empty again."""
        text = self.text
        if text.strip() and (not self.history or self.history[-1] != text):
            self.history.append(text)
            del self.history[:-self.historySize]
        self.chars, self.cursor, self._scroll = [], 0, 0
        self._browsing, self._draft = None, ""
        return text

    def view(self, width):
        """
        What to show of the line in C{width} columns, scrolled sideways so the
        cursor is visible, and the cursor's column in it.
        """
        width = max(2, width)
        self._scroll = min(self._scroll, self.cursor)
        while textWidth(self.chars[self._scroll:self.cursor]) > width - 1:
            self._scroll += 1
        while self._scroll and textWidth(self.chars[self._scroll - 1:]) <= width - 1:
            self._scroll -= 1  # room again on the right: show more on the left
        shown, used = [], 0
        for ch in self.chars[self._scroll:]:
            used += cellWidth(ch)
            if used > width:
                break
            shown.append(ch)
        return "".join(shown), textWidth(self.chars[self._scroll:self.cursor])

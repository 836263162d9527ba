"""
The client's terminal front end: lines from the server scroll up above an
input line that keeps what the person is half-way through typing. The input
line has the usual editing keys and history; lines are coloured by marker.

Keys are read with C{twisted.conch.insults} (which turns escape sequences into
key names) over C{StandardIO}, with the terminal in raw mode. The screen is
an ordinary scrolling terminal: nothing is drawn but the bottom line, so
scrollback, copy and paste keep working.
"""

import codecs
import os
import signal
import termios
import tty
import unicodedata

from twisted.conch.insults import insults
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from chatsvc.clientproto import (
    ERROR, GOT_PRIVATE, NOTICE, REPLAYED, SAID, SENT_PRIVATE, classify, spoken)

STATUS, PROBLEM = "status", "problem"  # the client's own lines
_STYLES = {  # SGR parameters for each kind of line
    NOTICE: "33",  # yellow
    ERROR: "1;31",  # bold red
    SENT_PRIVATE: "35",  # magenta
    GOT_PRIVATE: "1;35",  # bold magenta
    REPLAYED: "2",  # dim: history
    STATUS: "36",  # cyan
    PROBLEM: "1;31",
}
_NAME, _MY_NAME, _PROMPT = "1", "1;32", "1"


def wantColour(environ, flag=False):
    """Colour unless C{--no-color} or a non-empty C{NO_COLOR} (no-color.org)."""
    return not flag and not environ.get("NO_COLOR")


def render(line, kind, me=None, colour=True):
    """C{line} with the escape sequences that colour a line of its C{kind}."""
    if not colour:
        return line
    if kind == SAID:
        sender, _ = spoken(line)
        mine = me is not None and sender.casefold() == me.casefold()
        name = len(sender) + 2  # "<sender>"
        return f"\x1b[{_MY_NAME if mine else _NAME}m{line[:name]}\x1b[0m{line[name:]}"
    style = _STYLES.get(kind)
    return f"\x1b[{style}m{line}\x1b[0m" if style else line


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


class ChatScreen(insults.TerminalProtocol):
    """
    Keys in, lines out. Every line shown is written over the input line,
    which is then drawn again below it, with the cursor where it was.
    """

    log = Logger()

    def __init__(self, client, colour=True, size=None):
        self.client = client
        self.colour = colour
        self._size = size or (lambda: os.get_terminal_size(1))
        self._finished = False
        self.closed = Deferred()

    def connectionMade(self):
        self.editor = e = LineEditor()
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        t = self.terminal
        self._keys = {
            t.LEFT_ARROW: e.left, b"\x02": e.left,  # Ctrl-B
            t.RIGHT_ARROW: e.right, b"\x06": e.right,  # Ctrl-F
            t.HOME: e.home, b"\x01": e.home,  # Ctrl-A
            t.END: e.end, b"\x05": e.end,  # Ctrl-E
            t.UP_ARROW: e.up, b"\x10": e.up,  # Ctrl-P
            t.DOWN_ARROW: e.down, b"\x0e": e.down,  # Ctrl-N
            t.BACKSPACE: e.backspace, b"\x08": e.backspace,
            t.DELETE: e.delete,
            b"\x15": e.killToStart,  # Ctrl-U
            b"\x0b": e.killToEnd,  # Ctrl-K
            b"\x17": e.killWordBack,  # Ctrl-W
            b"\r": self._enter, b"\n": self._enter,
            b"\x03": self.client.leave,  # Ctrl-C
            b"\x04": self._ctrlD,
            b"\x0c": self._clear,  # Ctrl-L
        }
        self._altKeys = {b"b": e.wordLeft, b"f": e.wordRight, b"d": e.killWordForward,
                         b"\x7f": e.killWordBack, b"\x08": e.killWordBack}
        self._sequences = {  # what insults leaves to us: Ctrl-arrows, ESC O keys
            b"\x1b[1;5D": e.wordLeft, b"\x1b[1;5C": e.wordRight,
            b"\x1b[OA": e.up, b"\x1b[OB": e.down, b"\x1b[OC": e.right,
            b"\x1b[OD": e.left, b"\x1b[OH": e.home, b"\x1b[OF": e.end,
        }
        self.drawInput()

    # Keys

    def keystrokeReceived(self, keyID, modifier):
        if modifier == self.terminal.ALT:
            action = self._altKeys.get(keyID)
        else:
            action = self._keys.get(keyID)
            if action is None and len(keyID) == 1 and keyID >= b" ":
                text = self._decoder.decode(keyID)  # UTF-8 arrives a byte at a time
                action = (lambda: self.editor.insert(text)) if text else None
        if action is not None:
            action()
            self.drawInput()

    def unhandledControlSequence(self, seq):
        action = self._sequences.get(seq)
        if action is not None:
            action()
            self.drawInput()

    def _enter(self):
        text = self.editor.text
        if not text.strip() and self.client.named:
            return  # nothing to say
        if self.client.lineTyped(text):
            self.editor.submit()

    def _ctrlD(self):
        if self.editor.chars:
            self.editor.delete()
        else:
            self.client.inputEnded()

    def _clear(self):
        self.terminal.write("\x1b[H\x1b[2J")

    # Output

    def show(self, line):
        self._print(render(line, classify(line), self.client.name, self.colour))

    def status(self, text, problem=False):
        self._print(render(text, PROBLEM if problem else STATUS, None, self.colour))

    def _print(self, text):
        # Over the input line, then a newline (insults writes \r\n for \n).
        self.terminal.write("\r\x1b[K" + text + "\n")
        self.drawInput()

    def _width(self):
        try:
            width = self._size()[0]
        except OSError:
            width = 0
        return width if width > 0 else 80

    def drawInput(self):
        if self.terminal is None or self._finished:
            return
        width = self._width()
        prompt = self.client.prompt()
        if textWidth(prompt) > width // 2:
            prompt = "> "
        shown, column = self.editor.view(width - textWidth(prompt) - 1)
        column += textWidth(prompt)
        if self.colour:
            prompt = f"\x1b[{_PROMPT}m{prompt}\x1b[0m"
        self.terminal.write(
            "\r" + prompt + shown + "\x1b[K\r" + (f"\x1b[{column}C" if column else ""))

    def finish(self):
        """Leave the screen as a shell expects it: the input line erased."""
        self._finished = True
        self.terminal.write("\r\x1b[K")
        self.terminal.loseConnection()

    def connectionLost(self, reason):
        self.terminal = None
        if not self.client.done:
            self.client.leave()  # the terminal went away
        self.closed.callback(None)


class _KeyboardProtocol(insults.ServerProtocol):
    """insults' key parser; its transport is StandardIO."""

    def loseConnection(self):
        self.transport.loseConnection()


class TerminalDisplay:
    """
    The terminal front end for L{chatsvc.clientproto.ChatClient}: puts the
    terminal in raw mode for the session and back as it was afterwards.
    """

    def __init__(self, colour=True, fd=0, stdio=None):
        self.colour = colour
        self.fd = fd
        self._stdio = stdio
        self._saved = None
        self._winch = None
        self.screen = None

    def start(self, client):
        from twisted.internet import reactor
        keyboard = _KeyboardProtocol(ChatScreen, client, self.colour)
        if self._stdio is None:
            from twisted.internet import stdio
            self._saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd)  # keys one at a time, no echo, Ctrl-C and Ctrl-D as keys
            reactor.addSystemEventTrigger("after", "shutdown", self._restore)
            self._winch = signal.signal(signal.SIGWINCH,
                                        lambda *_: reactor.callFromThread(self.changed))
            stdio.StandardIO(keyboard)
        else:
            self._stdio(keyboard)
        self.screen = keyboard.terminalProtocol

    def serverConnected(self):
        pass

    def changed(self):
        if self.screen is not None:
            self.screen.drawInput()

    def show(self, line):
        self.screen.show(line)

    def status(self, text, problem=False):
        self.screen.status(text, problem)

    def stop(self):
        screen = self.screen
        if screen.terminal is not None:
            screen.finish()
        return screen.closed.addCallback(lambda _: self._restore())

    def _restore(self):
        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None
        if self._winch is not None:
            signal.signal(signal.SIGWINCH, self._winch)
            self._winch = None

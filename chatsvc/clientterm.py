"""
The client's terminal front end: lines from the server scroll up above an
input line that keeps what the person is half-way through typing. The input
line has the usual editing keys and history; lines are coloured by marker.

Keys are read with C{twisted.conch.insults} (which turns escape sequences into
key names) over C{StandardIO}, with the terminal in raw mode. The screen is
an ordinary scrolling terminal: nothing is drawn but the bottom line, so
scrollback, copy and paste keep working. The line being typed is
L{chatsvc.clientedit}'s.

When the terminal changes size, some terminals (tmux, screen, VTE, kitty,
iTerm2...) wrap the input line onto several rows and others (xterm, the
Linux console) cut it; which one, only the cursor shows, so the screen asks
the terminal where it is (a cursor position report) before drawing the
input line again over all of the old one. While sizes keep changing, the
cursor waits at the start of the input line, which no rewrap moves it off.
"""

import codecs
import os
import signal
import termios
import tty

from twisted.conch.insults import insults
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from chatsvc.clientedit import LineEditor, cellWidth, textWidth
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
REPORT_WAIT = 2  # seconds to wait for a cursor position report (long enough for ssh)
SETTLE = 0.5  # seconds without a new size before sizes count as settled (tmux: 0.25)


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


def wrappedCursor(before, atWidth, width):
    """
    (row, column) of the cursor in a line wrapped at C{width} columns, the
    cursor after C{before} on a character C{atWidth} columns wide: where a
    terminal that rewraps lines when it narrows puts it.
    """
    row = column = 0
    for w in [cellWidth(ch) for ch in before] + [atWidth]:
        if column + w > width:  # a wide character that does not fit moves down whole
            row, column = row + 1, 0
        column += w
    return row, column - atWidth


class ChatScreen(insults.TerminalProtocol):
    """
    Keys in, lines out. Every line shown is written over the input line,
    which is then drawn again below it, with the cursor where it was.
    """

    log = Logger()

    def __init__(self, client, colour=True, size=None, clock=None):
        self.client = client
        self.colour = colour
        self._size = size or (lambda: os.get_terminal_size(1))
        self._clock = clock
        self._finished = False
        self.closed = Deferred()
        self._drawn = None  # the input line on the screen: (text before the cursor, cell width)
        self._asking = None  # (token, timeout) while waiting for a cursor position report
        self._resizedAgain = False
        self._settling = None  # while sizes change: the cursor waits at column 0
        self._held = []  # lines that arrived while waiting
        self._reports = True  # whether the terminal answers cursor position reports

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
        if self._asking is not None:
            self._held.append(text)  # drawn once the old input line is found and erased
            return
        # Over the input line (and below it: the rest of an input line the
        # terminal rewrapped), then a newline (insults writes \r\n for \n).
        self.terminal.write("\r\x1b[J" + text + "\n")
        self.drawInput()

    def _width(self):
        try:
            width = self._size()[0]
        except OSError:
            width = 0
        return width if width > 0 else 80

    def drawInput(self):
        if self.terminal is None or self._finished or self._asking is not None:
            return
        width = self._width()
        prompt = self.client.prompt()
        if textWidth(prompt) > width // 2:
            prompt = "> "
        shown, column = self.editor.view(width - textWidth(prompt) - 1)
        at = used = 0  # the cursor's index in shown
        while at < len(shown) and used < column:
            used += cellWidth(shown[at])
            at += 1
        self._drawn = (prompt + shown[:at], cellWidth(shown[at]) if at < len(shown) else 1)
        column += textWidth(prompt)
        if self.colour:
            prompt = f"\x1b[{_PROMPT}m{prompt}\x1b[0m"
        # The cursor to its column, unless parked at the start while sizes change.
        cursor = f"\x1b[{column}C" if column and self._settling is None else ""
        # Without autowrap (?7l): a terminal narrower than it has told us yet
        # (tmux tells at most every 250 ms) cuts the line instead of wrapping
        # it onto rows that "\r" would not go back to.
        self.terminal.write(
            "\x1b[?7l\r" + prompt + shown + "\x1b[J\r" + cursor + "\x1b[?7h")

    # A new size

    def resized(self):
        """
        The terminal has a new size. Find the old input line (the cursor
        shows whether the terminal rewrapped it or cut it), erase all of it
        and draw it again; lines arriving meanwhile wait. Then, until sizes
        settle, keep the cursor at the start of the input line, where a
        rewrap cannot move it off the line's first row.
        """
        if self.terminal is None or self._finished:
            return
        if self._settling is not None:  # the cursor is parked: the line is where it is
            self._redraw(0)
        elif self._asking is not None:
            self._resizedAgain = True  # asked again once this answer is in
        elif not self._reports or self._drawn is None:
            self._redraw(0)
        else:
            token = object()
            timeout = self._callLater(REPORT_WAIT, self._unanswered, token)
            self._asking = (token, timeout)
            self.terminal.reportCursorPosition().addCallback(
                self._cursorReported, token, self._width())

    def _callLater(self, delay, f, *args):
        if self._clock is None:
            from twisted.internet import reactor
            self._clock = reactor
        return self._clock.callLater(delay, f, *args)

    def _cursorReported(self, position, token, width):
        if self._asking is None or self._asking[0] is not token:
            self._reports = True  # a late answer: worth asking next time
            return
        self._asking[1].cancel()
        self._asking = None
        if self._width() != width or self._resizedAgain:  # which size did it answer in?
            self._resizedAgain = False
            self.resized()
            return
        column, row = position
        before, atWidth = self._drawn
        wrappedRow, wrappedColumn = wrappedCursor(before, atWidth, width)
        rewrapped = wrappedRow > 0 and column == wrappedColumn
        self._redraw(min(wrappedRow, row) if rewrapped else 0)

    def _unanswered(self, token):
        if self._asking is not None and self._asking[0] is token:
            self._asking = None
            self._reports = False  # draw at once from now on
            self._redraw(0)

    def _redraw(self, rowsUp):
        """Erase from the start of the old input line down; then what waited."""
        if self.terminal is None or self._finished:
            return
        if self._settling is None:
            self._settling = self._callLater(SETTLE, self._settled)
        else:
            self._settling.reset(SETTLE)
        self.terminal.write((f"\x1b[{rowsUp}A" if rowsUp else "") + "\r\x1b[J")
        held, self._held = self._held, []
        for text in held:
            self.terminal.write(text + "\n")  # below, all is erased
        self.drawInput()

    def _settled(self):
        self._settling = None
        self.drawInput()  # the cursor back where the person is typing

    def finish(self):
        """Leave the screen as a shell expects it: the input line erased."""
        self._finished = True
        for pending in [self._asking and self._asking[1], self._settling]:
            if pending:
                pending.cancel()
        self._asking = self._settling = None
        held, self._held = self._held, []
        self.terminal.write("".join("\r\x1b[J" + text + "\n" for text in held) + "\r\x1b[J")
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
                                        lambda *_: reactor.callFromThread(self.resized))
            stdio.StandardIO(keyboard)
        else:
            self._stdio(keyboard)
        self.screen = keyboard.terminalProtocol

    def serverConnected(self):
        pass

    def changed(self):
        if self.screen is not None:
            self.screen.drawInput()

    def resized(self):
        if self.screen is not None:
            self.screen.resized()

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

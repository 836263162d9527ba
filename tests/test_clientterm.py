"""
The client's terminal front end without a terminal: the screen driven by key
bytes through insults, its output read back by insults' own terminal
emulator (TerminalBuffer, in tests.terminal with new sizes).
"""

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase

from chatsvc.clientterm import REPORT_WAIT, SETTLE, ChatScreen, _KeyboardProtocol, wrappedCursor
from tests.terminal import Screen

LEFT, RIGHT, UP, DOWN = b"\x1b[D", b"\x1b[C", b"\x1b[A", b"\x1b[B"
HOME, END, DELETE = b"\x1b[H", b"\x1b[F", b"\x1b[3~"


class FakeClient:
    def __init__(self):
        self.typed = []
        self.accept = True
        self.named = False
        self.name = None
        self.done = False
        self.ended = self.left = 0
        self.room = None

    def prompt(self):
        return f"{self.room}> " if self.room else "> "

    def lineTyped(self, text):
        self.typed.append(text)
        return self.accept

    def inputEnded(self):
        self.ended += 1

    def leave(self):
        self.left += 1


class ScreenTestCase(TestCase):
    """Keys in as bytes, the screen as a terminal would show it."""

    WIDTH, HEIGHT = 40, 10

    def setUp(self, colour=True):
        self.client = FakeClient()
        self.out = StringTransport()
        self.clock = Clock()
        self.replies = []  # what the terminal answers, to be typed in
        self.display = Screen(self.WIDTH, self.HEIGHT, self.replies.append)
        self.terminal = self.display.terminal
        self.told = self.WIDTH  # the width the client is told (tmux tells late)
        self.keyboard = _KeyboardProtocol(ChatScreen, self.client, colour,
                                          lambda: (self.told, self.HEIGHT), self.clock)
        self.keyboard.makeConnection(self.out)
        self.screen = self.keyboard.terminalProtocol

    def type(self, *keys):
        for key in keys:
            self.keyboard.dataReceived(key.encode("utf-8") if isinstance(key, str) else key)

    def pump(self):
        """The terminal shows what was written, and answers what it is asked."""
        while self.out.value() or self.replies:
            data = self.out.value()
            self.out.clear()
            self.display.feed(data)
            while self.replies:
                self.keyboard.dataReceived(self.replies.pop(0))

    def shown(self):
        """The screen's lines (up to the input line) and the cursor's column."""
        self.pump()
        column, row = self.display.cursor()
        return self.terminal.text()[:row + 1], column


class ScreenTests(ScreenTestCase):

    def test_typeAndSend(self):
        self.type("hello", LEFT, LEFT, "p, ", END, "!\r")
        self.assertEqual(self.client.typed, ["help, lo!"])
        self.assertEqual(self.shown(), ([">"], 2))

    def test_incomingLineKeepsTheInput(self):
        self.client.room = "kitchen"
        self.type("half-typed", LEFT, LEFT)
        self.screen.show("<bob> a message arrives")
        self.screen.status("and a status line")
        self.assertEqual(self.shown(), (
            ["<bob> a message arrives", "and a status line", "kitchen> half-typed"],
            len("kitchen> half-typ")))
        self.type("\r")
        self.assertEqual(self.client.typed, ["half-typed"])

    def test_refusedLineStays(self):
        self.client.accept = False
        self.type("not yet\r")
        self.assertEqual(self.shown(), (["> not yet"], 9))

    def test_history(self):
        self.type("first\r", "second\r", UP, UP, "!", DOWN, DOWN, "x", UP)
        self.assertEqual(self.shown(), (["> second"], 8))

    def test_editingKeys(self):
        self.type("one two three", b"\x17")  # Ctrl-W: the last word, not the space
        self.assertEqual(self.shown(), (["> one two"], len("> one two ")))
        self.type(b"\x01", DELETE, b"\x05", b"\x08", b"\x7f")  # Ctrl-A, Delete, Ctrl-E, 2 x BS
        self.assertEqual(self.shown()[0], ["> ne tw"])
        self.type(HOME, RIGHT, b"\x0b")  # Ctrl-K
        self.assertEqual(self.shown(), (["> n"], 3))
        self.type(b"\x15", "ab cd", b"\x1bb", b"\x1b[1;5D", "X")  # Ctrl-U, Alt-B, Ctrl-Left
        self.assertEqual(self.shown(), (["> Xab cd"], 3))

    def test_utf8ArrivesInPieces(self):
        data = "h\u00e9 \u65e5\u672c".encode("utf-8")
        for i in range(len(data)):
            self.type(data[i:i + 1])
        self.type(LEFT, b"\x7f", "\r")
        self.assertEqual(self.client.typed, ["h\u00e9 \u672c"])

    def test_ctrlD(self):
        self.type("ab", HOME, b"\x04")  # with text: delete
        self.assertEqual(self.shown()[0], ["> b"])
        self.assertEqual(self.client.ended, 0)
        self.type(b"\x04", b"\x04")  # on an empty line: the end of input
        self.assertEqual(self.client.ended, 1)

    def test_ctrlC(self):
        self.type("abc", b"\x03")
        self.assertEqual(self.client.left, 1)

    def test_enterOnAnEmptyLine(self):
        self.type("\r")  # no name yet: the server makes a guest
        self.client.named = True
        self.type("\r", "   \r")  # named: nothing to say
        self.assertEqual(self.client.typed, [""])

    def test_longInputScrolls(self):
        """The input line never wraps, and never writes the last column."""
        self.type("x" * 59 + "y")
        lines, column = self.shown()
        self.assertEqual(lines, ["> " + "x" * (self.WIDTH - 5) + "y"])
        self.assertEqual(column, self.WIDTH - 2)
        self.type(HOME)
        self.assertEqual(self.shown(), (["> " + "x" * (self.WIDTH - 3)], 2))
        self.type("\r")
        self.assertEqual(self.client.typed, ["x" * 59 + "y"])

    def test_colours(self):
        self.client.name = "alice"
        self.screen.show("<alice> mine")
        self.screen.show("! no")
        data = self.out.value()
        self.assertIn(b"\x1b[1;32m<alice>\x1b[0m mine", data)
        self.assertIn(b"\x1b[1;31m! no\x1b[0m", data)

    def test_noColour(self):
        self.setUp(colour=False)
        self.screen.show("<alice> mine")
        self.screen.status("status", problem=True)
        self.type("x")
        self.assertNotIn(b"m", self.out.value().replace(b"mine", b""))  # no SGR at all

    def test_nothingDrawnAfterFinishing(self):
        """Leaving at once (Ctrl-D while offline) leaves no prompt behind."""
        self.client.inputEnded = self.screen.finish
        self.out.clear()
        self.type(b"\x04")
        self.assertEqual(self.out.value(), b"\r\x1b[J")

    def test_finish(self):
        self.type("abc")
        self.out.clear()
        self.screen.finish()
        self.assertEqual(self.out.value(), b"\r\x1b[J")  # the input line erased, no reset
        self.assertTrue(self.out.disconnecting)


class ResizeTests(ScreenTestCase):
    """
    A new terminal size leaves the messages above and exactly one input
    line, whether the terminal rewraps its lines (tmux, VTE, kitty) or cuts
    them (xterm), and however many sizes come in a row.
    """

    WIDTH, HEIGHT = 80, 20
    LONG = "this is a long line that I am typing without pressing enter, it goes on and on"
    SAID = ["<bob> one", "<bob> two", "<bob> three"]

    def setUp(self):
        super().setUp()
        self.client.room = "kitchen"
        for line in self.SAID:
            self.screen.show(line)
        self.type(self.LONG)
        self.assertEqual(self.shown(), (self.SAID + ["kitchen> " + self.LONG[-69:]], 78))

    def resize(self, width, rewrap=True, tell=True):
        """The terminal takes a new width, and (unless not yet) tells the client."""
        self.pump()
        self.terminal.resize(width, rewrap)
        if tell:
            self.told = width
            self.screen.resized()
        self.pump()

    def assertScreen(self, said, inputLine, column):
        """C{said} above, then the input line at the cursor, then nothing."""
        rows = self.terminal.text()
        at, row = self.display.cursor()
        self.assertEqual(([r for r in rows[:row] if r], rows[row], at),
                         (said, inputLine, column), "\n".join(rows))
        self.assertEqual([r for r in rows[row + 1:] if r], [], "\n".join(rows))

    def settle(self):
        self.clock.advance(SETTLE)
        self.pump()

    def test_shrinkThatRewraps(self):
        """The issue's case: tmux rewraps the input line onto two rows; both go."""
        self.resize(40)
        tail = "kitchen> " + self.LONG[-29:]
        self.assertScreen(self.SAID, tail, 0)  # the cursor waits at the start ...
        self.settle()
        self.assertScreen(self.SAID, tail, 38)  # ... until sizes settle
        self.resize(80)
        self.settle()
        self.assertScreen(self.SAID, "kitchen> " + self.LONG[-69:], 78)

    def test_shrinkThatCuts(self):
        """xterm cuts the line and keeps the cursor in its last column: nothing above goes."""
        self.resize(40, rewrap=False)
        self.settle()
        self.assertScreen(self.SAID, "kitchen> " + self.LONG[-29:], 38)

    def test_cursorOnTheFirstRow(self):
        """With the cursor near the start, the rows rewrapped below it go."""
        self.type(HOME)
        self.resize(30)
        self.settle()
        self.assertScreen(self.SAID, "kitchen> " + self.LONG[:20].rstrip(), 9)

    def test_longMessagesRewrapToo(self):
        long = "<bob> " + "word " * 20
        self.screen.show(long)
        self.resize(40)
        self.settle()
        said = self.SAID + [long[:40], long[40:80], long[80:].rstrip()]
        self.assertScreen(said, "kitchen> " + self.LONG[-29:], 38)

    def test_linesArrivingMeanwhile(self):
        """Lines that arrive before the terminal answers wait, then show in order."""
        self.terminal.resize(40)
        self.told = 40
        self.screen.resized()
        self.screen.show("<bob> while asking")
        self.assertNotIn(b"while asking", self.out.value())
        self.pump()
        self.settle()
        self.assertScreen(self.SAID + ["<bob> while asking"],
                          "kitchen> " + self.LONG[-29:], 38)

    def test_sizesInARow(self):
        """
        Sizes in a row, lines in between, and sizes the client is told late
        (tmux tells at most every 250 ms): the cursor waits at the start of
        the line, where no rewrap can move it off the first row.
        """
        said = list(self.SAID)
        for width, tell in [(50, True), (25, False), (70, True), (20, False), (35, True),
                            (60, False), (30, True), (80, False), (40, True)]:
            self.resize(width, tell=tell)
            said.append(f"<bob> at {width}")
            self.screen.show(said[-1])
            self.type("!")
            self.pump()
        self.settle()
        self.assertScreen(said, "kitchen> " + (self.LONG + "!" * 9)[-29:], 38)

    def test_typingWhileSettling(self):
        self.resize(40)
        self.type(b"\x7f" * 3, "N")
        self.pump()
        typed = "kitchen> " + self.LONG[-31:-3] + "N"
        self.assertScreen(self.SAID, typed, 0)  # typing shows, the cursor waits
        self.settle()
        self.assertScreen(self.SAID, typed, 38)

    def test_terminalThatNeverAnswers(self):
        """No answer in REPORT_WAIT: draw anyway, and from then on at once."""
        self.display.answers = False
        self.resize(40, rewrap=False)
        self.screen.show("<bob> later")
        self.assertEqual(self.terminal.text()[3], "kitchen>  long line that I am typing wit")
        self.clock.advance(REPORT_WAIT)
        self.pump()
        self.settle()
        self.assertScreen(self.SAID + ["<bob> later"], "kitchen> " + self.LONG[-29:], 38)
        self.resize(30, rewrap=False)
        self.assertNotIn(b"\x1b[6n", self.out.value())
        self.settle()
        self.assertScreen(self.SAID + ["<bob> later"], "kitchen> " + self.LONG[-19:], 28)

    def test_wrappedCursor(self):
        self.assertEqual(wrappedCursor("x" * 78, 1, 40), (1, 38))
        self.assertEqual(wrappedCursor("x" * 39, 1, 40), (0, 39))
        self.assertEqual(wrappedCursor("x" * 40, 1, 40), (1, 0))
        # A wide character that does not fit in the last column moves down whole.
        self.assertEqual(wrappedCursor("x" * 39 + "\u65e5", 1, 40), (1, 2))
        self.assertEqual(wrappedCursor("x" * 39, 2, 40), (1, 0))

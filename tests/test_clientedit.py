"""The line being typed in the client's terminal front end: editing, history, view."""

from twisted.trial.unittest import TestCase

from chatsvc.clientedit import LineEditor, textWidth


class LineEditorTests(TestCase):

    def editor(self, text="", cursor=None):
        e = LineEditor()
        e.insert(text)
        if cursor is not None:
            e.cursor = cursor
        return e

    def test_insertAndMove(self):
        e = self.editor("hllo")
        e.home()
        e.right()
        e.insert("e")
        self.assertEqual((e.text, e.cursor), ("hello", 2))
        e.end()
        e.insert(" w\u00f6rld\x07\tx")  # control characters dropped, tab is a space
        self.assertEqual(e.text, "hello w\u00f6rld x")
        e.left()
        e.left()
        self.assertEqual(e.cursor, len("hello w\u00f6rld"))
        e.right(), e.right(), e.right()
        self.assertEqual(e.cursor, len(e.text))

    def test_words(self):
        e = self.editor("one two  three")
        e.wordLeft()
        self.assertEqual(e.cursor, 9)
        e.wordLeft()
        self.assertEqual(e.cursor, 4)
        e.wordRight()
        self.assertEqual(e.cursor, 7)
        e.killWordForward()
        self.assertEqual(e.text, "one two")
        e.killWordBack()
        self.assertEqual((e.text, e.cursor), ("one ", 4))

    def test_deleting(self):
        e = self.editor("abcdef", cursor=3)
        e.backspace()
        e.delete()
        self.assertEqual((e.text, e.cursor), ("abef", 2))
        e.killToEnd()
        self.assertEqual(e.text, "ab")
        e.killToStart()
        self.assertEqual((e.text, e.cursor), ("", 0))
        e.backspace()
        e.delete()
        self.assertEqual(e.text, "")

    def test_history(self):
        e = LineEditor()
        for line in ["first", "second", "second", "  "]:
            e.insert(line)
            self.assertEqual(e.submit(), line)
        self.assertEqual(e.history, ["first", "second"])  # no repeats, no blanks
        e.insert("draft")
        e.up()
        self.assertEqual(e.text, "second")
        e.up()
        e.up()
        self.assertEqual((e.text, e.cursor), ("first", 5))
        e.down()
        self.assertEqual(e.text, "second")
        e.down()
        self.assertEqual(e.text, "draft")  # back to what was being typed
        e.down()
        self.assertEqual(e.text, "draft")

    def test_viewScrollsSideways(self):
        e = self.editor("abcdefghijklmnopqrstuvwxyz")
        self.assertEqual(e.view(10), ("rstuvwxyz", 9))  # the end, and room for the cursor
        e.home()
        self.assertEqual(e.view(10), ("abcdefghij", 0))
        e.end()
        for _ in range(20):
            e.backspace()
        self.assertEqual(e.view(10), ("abcdef", 6))  # everything fits again

    def test_viewOfWideCharacters(self):
        e = self.editor("\u65e5\u672c\u8a9e\u306e\u6587")  # two columns each
        self.assertEqual(textWidth(e.text), 10)
        shown, column = e.view(8)
        self.assertEqual((shown, column), ("\u8a9e\u306e\u6587", 6))

from twisted.trial.unittest import TestCase

from chatsvc.text import clean


class CleanTests(TestCase):
    def test_plainTextUnchanged(self):
        self.assertEqual(clean("hello, wörld ☕ \tok"), "hello, wörld ☕ \tok")

    def test_controlCharactersStripped(self):
        self.assertEqual(clean("a\x00b\x07c\x08d\x7fe\x85f\rg\n"), "abcdefg")

    def test_ansiSequencesStripped(self):
        self.assertEqual(clean("\x1b[31mred\x1b[0m \x1b[2J\x1b[1;1H"), "red ")
        self.assertEqual(clean("\x1b]0;pwned title\x07after"), "after")
        self.assertEqual(clean("\x9b31mx"), "x")

    def test_lineSeparatorsStripped(self):
        self.assertEqual(clean("one\u2028two\u2029"), "onetwo")

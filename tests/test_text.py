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

    def test_bidiControlsStripped(self):
        """Trojan Source: embeddings, overrides and isolates reorder others' screens."""
        tricky = "".join(chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
        self.assertEqual(clean(f"ab{tricky}cd"), "abcd")
        self.assertEqual(clean("access\u202e\u2066 // admin\u2069\u2066"), "access // admin")

    def test_zeroWidthJoinerKept(self):
        family = "\U0001F468\u200d\U0001F469\u200d\U0001F467"
        self.assertEqual(clean(f"hi {family}"), f"hi {family}")

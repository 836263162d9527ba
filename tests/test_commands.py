from twisted.trial.unittest import TestCase

from chatsvc.doors.line.commands import COMMANDS, Chat, Invocation, helpLines, parse
from chatsvc.errors import BadArguments, UnknownCommand


class ParseTests(TestCase):
    def test_bareCommandWords(self):
        self.assertEqual(parse("list"), Invocation("list", (None,)))
        self.assertEqual(parse("LIST"), Invocation("list", (None,)))
        self.assertEqual(parse("list kit"), Invocation("list", ("kit",)))
        self.assertEqual(parse("online"), Invocation("online", ()))
        self.assertEqual(parse("  leave "), Invocation("leave", ()))
        self.assertEqual(parse("help"), Invocation("commands", ()))
        self.assertEqual(parse("join kitchen"), Invocation("join", ("kitchen",)))
        self.assertEqual(parse("history"), Invocation("history", (None,)))
        self.assertEqual(parse("history 20"), Invocation("history", (20,)))
        self.assertEqual(parse("msg bob hi there"), Invocation("msg", ("bob", "hi there")))
        self.assertEqual(parse("say list"), Invocation("say", ("list",)))

    def test_wrongShapeIsChat(self):
        """A command word with the wrong arguments is something said."""
        for line in ["leave me alone", "join the party", "quit now", "list of things",
                     "history lesson", "msg bob", "hello", ""]:
            self.assertEqual(parse(line), Chat(line), line)

    def test_bareWordNeedingArgumentsGetsUsage(self):
        """A command word alone, missing what it needs, is a mistake, not chat."""
        for line, usage in [("join", "join ROOM"), ("create", "create ROOM"),
                            ("  MSG ", "msg NAME TEXT"), ("say", "say TEXT")]:
            e = self.assertRaises(BadArguments, parse, line)
            self.assertTrue(str(e).startswith(f"Usage: {usage} ("), str(e))

    def test_slashAlwaysCommand(self):
        self.assertEqual(parse("/join kitchen"), Invocation("join", ("kitchen",)))
        self.assertEqual(parse("/join vault sesame"), Invocation("join", ("vault", "sesame")))
        self.assertEqual(parse("/QUIT"), Invocation("quit", ()))
        self.assertEqual(parse("/say /join x"), Invocation("say", ("/join x",)))

    def test_slashBadArguments(self):
        for line in ["/join", "/join the party now", "/leave now", "/history lots", "/msg bob"]:
            e = self.assertRaises(BadArguments, parse, line)
            self.assertIn("Usage:", str(e))

    def test_slashUnknown(self):
        e = self.assertRaises(UnknownCommand, parse, "/dance wildly")
        self.assertIn("/dance", str(e))
        self.assertIn("help", str(e))
        self.assertRaises(UnknownCommand, parse, "/")

    def test_helpNamesEveryCommand(self):
        text = "\n".join(helpLines(operator=True))
        for command in COMMANDS:
            self.assertIn(command.usage, text)

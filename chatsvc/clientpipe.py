"""
The client's plain front end, used when stdin or stdout is not a terminal:
lines in, lines out (L{chatsvc.clientterm} is the terminal's).
"""

import os

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer


@implementer(IHalfCloseableProtocol)
class PipeDisplay(LineReceiver):
    """
    Plain lines in and out, for pipes and scripts: stdout gets the server's
    lines and the client's own status lines, stderr gets the one line that
    says why the client failed. End of input says C{quit}.
    """

    delimiter = b"\n"
    MAX_LENGTH = 1 << 20

    def __init__(self, stdio=None, errors=None):
        self._stdio = stdio  # makes the stdio transport; tests pass their own
        self._errors = errors or (lambda data: os.write(2, data))
        self._closed = Deferred()
        self._outputGone = False
        self.client = None

    def start(self, client):
        self.client = client
        if self._stdio is None:
            from twisted.internet import stdio
            stdio.StandardIO(self)
        else:
            self._stdio(self)

    def connectionMade(self):
        self.transport.pauseProducing()  # read nothing before the connection is up

    def serverConnected(self):
        self.transport.resumeProducing()

    def changed(self):
        pass

    def show(self, line):
        self.transport.write(line.encode("utf-8") + b"\n")

    def status(self, text, problem=False):
        if problem:
            self._errors(text.encode("utf-8") + b"\n")
        else:
            self.show(text)

    def lineReceived(self, raw):
        self.client.lineTyped(raw.rstrip(b"\r").decode("utf-8", "replace"))

    def readConnectionLost(self):
        if self._buffer:  # a last line without a newline
            last, self._buffer = self._buffer, b""
            self.lineReceived(last)
        self.client.inputEnded()

    def writeConnectionLost(self):
        self._outputGone = True
        self.client.leave()  # no one reads what we would show

    def connectionLost(self, reason):
        if not self._closed.called:
            self._closed.callback(None)
        if self.client is not None and not self.client.done:
            self.client.leave()

    def stop(self):
        self.transport.loseConnection()  # after what is written reaches stdout
        if self._outputGone and not self._closed.called:
            # StandardIO reports no connectionLost once only stdin is left.
            self._closed.callback(None)
        return self._closed

"""
The bus inside one process. Alone (no hub), a L{LocalBus} tells no one: a
single node has no one else to tell. Several buses on one L{Hub} deliver to
each other at the end of the reactor turn, which lets the tests run several
Lobbys in one process; L{LocalBus.cut} and L{LocalBus.restore} stand for a
lost and a regained link.
"""

from collections import deque

from twisted.application.service import Service
from twisted.internet.defer import succeed
from twisted.logger import Logger
from zope.interface import implementer

from chatsvc.bus import IBus


def _nothing(*args):
    pass


class Hub:
    """
    Where the L{LocalBus}es of one process meet: what one publishes reaches
    the others subscribed to its channel at the end of the reactor turn, in
    the order published (one queue for the hub, one C{callLater(0)} per turn).
    """

    log = Logger()

    def __init__(self, reactor=None):
        if reactor is None:
            from twisted.internet import reactor
        self._reactor = reactor
        self._buses = []
        self._queue = deque()
        self._flushing = None

    def _attach(self, bus):
        if bus not in self._buses:
            self._buses.append(bus)

    def _detach(self, bus):
        if bus in self._buses:
            self._buses.remove(bus)

    def _send(self, sender, channel, payload):
        for bus in self._buses:
            # a bus cut now misses it, even if restored before the end of the turn
            if bus is not sender and bus._up and channel in bus._channels:
                self._queue.append((bus, channel, payload))
        if self._queue and self._flushing is None:
            self._flushing = self._reactor.callLater(0, self._flush)

    def _flush(self):
        self._flushing = None
        queue, self._queue = self._queue, deque()
        for bus, channel, payload in queue:
            # checked again now: the receiver may have left, been cut or
            # unsubscribed since
            if bus.running and bus._up and channel in bus._channels:
                try:
                    bus.received(channel, payload)
                except Exception:
                    self.log.failure("A bus's received failed on {channel}", channel=channel)


@implementer(IBus)
class LocalBus(Service):
    """
    An L{IBus} within one process: see the module docstring. C{connected}
    is called at the end of the reactor turn in which the service starts
    (and after L{restore}).
    """

    def __init__(self, hub: Hub | None = None, reactor=None):
        if reactor is None:
            reactor = hub._reactor if hub is not None else None
        if reactor is None:
            from twisted.internet import reactor
        self.hub = hub
        self._reactor = reactor
        self._channels = set()
        self._up = False
        self._announce = None
        self.received = _nothing
        self.connected = _nothing
        self.lost = _nothing
        self.published = 0  # payloads handed to the hub (or to no one, without one)
        self.dropped = 0  # payloads dropped because the link was cut

    @property
    def isConnected(self) -> bool:
        return self.running and self._up and self._announce is None

    def startService(self):
        super().startService()
        if self.hub is not None:
            self.hub._attach(self)
        self._up = True
        self._scheduleConnected()

    def stopService(self):
        super().stopService()
        if self.hub is not None:
            self.hub._detach(self)
        self._up = False
        if self._announce is not None:
            self._announce.cancel()
            self._announce = None
        return succeed(None)

    def publish(self, channel: str, payload: bytes) -> None:
        if not (self.running and self._up):
            self.dropped += 1
            return
        self.published += 1
        if self.hub is not None:
            self.hub._send(self, channel, bytes(payload))

    def subscribe(self, channel: str):
        self._channels.add(channel)
        return succeed(None)

    def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    # For the tests: a lost and a regained link.

    def cut(self):
        """
        Lose the link: C{lost} is called at once; what this bus publishes
        and what is published to it are dropped until L{restore}.
        """
        if not self._up:
            return
        self._up = False
        if self._announce is not None:
            # it never was announced as up: nothing to announce as lost
            self._announce.cancel()
            self._announce = None
            return
        if self.running:
            self.lost()

    def restore(self):
        """
        Regain the link: deliveries resume at once; C{connected} is called at
        the end of the reactor turn, as after a real reconnect.
        """
        if self._up:
            return
        self._up = True
        if self.running:
            self._scheduleConnected()

    def _scheduleConnected(self):
        if self._announce is None:
            self._announce = self._reactor.callLater(0, self._connected)

    def _connected(self):
        self._announce = None
        if self.running and self._up:
            self.connected()

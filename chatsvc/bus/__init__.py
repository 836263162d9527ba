"""
How nodes tell each other what happened. A bus is dumb transport: the Lobby
encodes what it sends (bytes) on a channel it names (one per room), and the
bus carries it to the other nodes subscribed to that channel. It promises
little, and the Lobby relies on no more:

- Best effort. While the link is down, L{IBus.publish} drops the payload
  (nothing is queued without bound); the Lobby fills gaps from the database,
  which is the only truth (docs: design/cluster.md, points 4-8).
- A node never receives its own publications, even on a channel it is
  subscribed to: a payload goes to the I{other} buses subscribed to its
  channel.
- Order: what one bus publishes arrives at another in the order it was
  published (per channel, and in practice across channels too); there is no
  order between different publishers.
- The bus remembers what it is subscribed to and subscribes to all of it
  again whenever its link comes back; then it calls C{connected}, and the
  Lobby checks its positions.

L{chatsvc.bus.local.LocalBus} serves one process (alone, or several Lobbys
on one L{chatsvc.bus.local.Hub} in the tests); L{chatsvc.bus.redis.RedisBus}
uses Redis pub/sub between nodes.
"""

from zope.interface import Attribute, Interface


class IBus(Interface):
    """
    Carries payloads between the nodes of one chat. Implementations are also
    L{twisted.application.service.IService}s: the link is opened by
    C{startService} and closed by C{stopService} (whose Deferred fires once
    it is closed).
    """

    received = Attribute(
        "callable(channel: str, payload: bytes), set by the Lobby: another node"
        " published payload on a channel this bus is subscribed to. Called from"
        " the reactor, never from inside one of the bus's own methods; it may be"
        " called after a reconnect before C{connected} is.")
    connected = Attribute(
        "callable(), set by the Lobby: the link is up both ways (this bus can"
        " publish and receive) and every channel"
        " subscribed to is subscribed to again (the first time after"
        " C{startService}, and again after every reconnect). The Lobby runs its"
        " position check. Called from the reactor.")
    lost = Attribute(
        "callable(), set by the Lobby: the link went down; payloads published"
        " from now on, and by others, are not delivered until C{connected} is"
        " called again. C{connected} and C{lost} alternate; neither is called"
        " once C{stopService} has been.")
    isConnected = Attribute(
        "bool: the link is up and re-subscribed (between C{connected} and C{lost}).")

    def publish(channel: str, payload: bytes) -> None:
        """
        Send C{payload} to the other buses subscribed to C{channel}: fire and
        forget. Dropped while the link is down; never raises for that.
        """

    def subscribe(channel: str):
        """
        Receive what others publish on C{channel} from now on, including
        after every reconnect. Idempotent. Returns a Deferred that fires (with
        None) once the subscription is in effect at the far end, or at once
        while the link is down (C{connected} then follows once it is).
        """

    def unsubscribe(channel: str) -> None:
        """
        Stop receiving C{channel}: nothing more of it is passed to
        C{received}, from this call on. Idempotent.
        """

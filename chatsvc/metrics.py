"""
``--metrics``: what the server is doing, for Prometheus. Everything but the
commit latency is read off the Lobby, the store and the doors when scraped,
so the chat itself pays nothing for being watched.
"""

from collections import Counter

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.twisted import MetricsResource
from twisted.web.resource import Resource
from twisted.web.server import Site

DOORS = ("native", "irc", "web")
COMMIT_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class _Chat:
    """A collector reading the chat's state at each scrape."""

    def __init__(self, lobby, addresses):
        self.lobby = lobby
        self.addresses = addresses

    def collect(self):
        lobby = self.lobby
        online = GaugeMetricFamily("chatsvc_users_online",
                                   "Users online (with a name), by front door", labels=["door"])
        doors = Counter(user.door for user in lobby.names.values())
        for door in sorted(set(DOORS) | set(doors)):
            online.add_metric([door], doors.get(door, 0))
        yield online
        yield GaugeMetricFamily("chatsvc_connections",
                                "Connections, named or still choosing a name",
                                value=len(lobby.users))
        yield GaugeMetricFamily("chatsvc_rooms", "Rooms the server keeps", value=len(lobby.rooms))
        yield GaugeMetricFamily("chatsvc_rooms_occupied", "Rooms with someone in them",
                                value=len(lobby._occupied))
        yield CounterMetricFamily("chatsvc_messages_stored",
                                  "Messages stored (and so sent) since the start",
                                  value=lobby.stored)
        waiting = sum(getattr(getattr(user.mind, "guard", None), "queued", 0)
                      for user in lobby.users)
        yield GaugeMetricFamily("chatsvc_output_waiting_bytes",
                                "Bytes waiting for clients that do not read fast enough",
                                value=waiting)
        refused = CounterMetricFamily("chatsvc_connections_refused",
                                      "Connections refused at the door, by reason",
                                      labels=["reason"])
        for reason, count in sorted(self.addresses.refusals.items()):
            refused.add_metric([reason], count)
        yield refused


def makeSite(lobby, addresses) -> Site:
    """The metrics page (at /metrics, and /), for one server's Lobby, store and doors."""
    registry = CollectorRegistry()
    registry.register(_Chat(lobby, addresses))
    commits = Histogram("chatsvc_store_commit_seconds",
                        "How long each commit of the history store took",
                        buckets=COMMIT_BUCKETS, registry=registry)
    if hasattr(lobby.store, "observeCommit"):
        lobby.store.observeCommit = commits.observe
    page = MetricsResource(registry=registry)
    root = Resource()
    root.putChild(b"", page)
    root.putChild(b"metrics", page)
    site = Site(root)
    site.noisy = False
    site.log = lambda request: None  # scrapes every few seconds: not worth a log line each
    return site

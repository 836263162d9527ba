"""
Limits per client address, shared by every front door and every connection
from that address: one person with a script gets no more by opening more
connections or reconnecting than by staying on one.

An address is an IPv4 address or an IPv6 /64 (what one household or host is
usually given); every UNIX-socket peer is the one address ``unix``. Exempt
addresses (a bouncer, a web proxy, an office NAT), named by the operator,
get the per-connection limits only. Nothing is exempt by default.
"""

import ipaddress

from twisted.application.service import Service
from twisted.internet import task
from twisted.logger import Logger

from chatsvc import errors
from chatsvc.doors.flow import TokenBucket

SUMMARY_INTERVAL = 60.0  # seconds between summaries of refusals from one address


def _ipOf(peer):
    """A transport's peer as an IP address (IPv4-mapped ones as IPv4), or None."""
    host = getattr(peer, "host", None)
    if host is None:
        return None
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    return ip.ipv4_mapped or ip if ip.version == 6 else ip


def addressOf(peer) -> str:
    """The address that limits are counted against, for a transport's peer."""
    ip = _ipOf(peer)
    if ip is None:
        return getattr(peer, "host", None) or "unix"
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def parseExempt(description: str):
    """
    An C{--exempt} value: an address, a network (C{10.0.0.0/8}, C{2001:db8::/48})
    or C{unix}. Raise ValueError with the reason if it is none of those.
    """
    if description == "unix":
        return description
    return ipaddress.ip_network(description, strict=False)


class Visitor:
    """What one address may still do: shared by all its connections."""

    __slots__ = ("address", "connections", "lines", "rooms", "arrivals", "exempt")

    def __init__(self, address, settings, clock, exempt):
        self.address = address
        self.exempt = exempt
        self.connections = 0
        self.lines = TokenBucket(settings.flood_rate, settings.flood_burst, clock)
        self.rooms = TokenBucket(settings.create_rate / 3600.0, settings.create_burst, clock)
        self.arrivals = TokenBucket(settings.connect_rate, settings.connect_burst, clock)

    def idle(self) -> bool:
        """Nothing would change if it were forgotten now."""
        return (not self.connections and self.lines.full() and self.rooms.full()
                and self.arrivals.full())


class Addresses(Service):
    """
    Every address seen recently and what it may still do. A front door asks
    L{arrive} for each new connection and calls L{depart} when it closes.
    Running, it summarises refusals and forgets addresses that are quiet.
    """

    log = Logger()

    def __init__(self, settings, clock, exempt=()):
        self.settings = settings
        self.clock = clock
        self.exempt = tuple(exempt)
        self.visitors = {}  # address -> Visitor
        self._refused = {}  # address -> {reason: count} since its last summary
        self._sweep = task.LoopingCall(self._summarise)
        self._sweep.clock = clock
        self.refusals = {}  # reason -> connections refused for it since the start

    def startService(self):
        super().startService()
        self._sweep.start(SUMMARY_INTERVAL, now=False)

    def stopService(self):
        super().stopService()
        if self._sweep.running:
            self._sweep.stop()
        self._summarise()

    def isExempt(self, peer) -> bool:
        """Whether C{peer} (its full address, not its /64) was named by --exempt."""
        if getattr(peer, "host", None) is None:
            return "unix" in self.exempt
        ip = _ipOf(peer)
        return ip is not None and any(
            net != "unix" and ip.version == net.version and ip in net for net in self.exempt)

    def arrive(self, peer) -> Visitor:
        """
        Admit a new connection from C{peer}, or raise L{errors.TooManyConnections}
        or L{errors.ConnectingTooOften}. An exempt address gets a Visitor of
        its own for each connection, so that only per-connection limits apply.
        """
        address = addressOf(peer)
        if self.isExempt(peer):
            visitor = Visitor(address, self.settings, self.clock, exempt=True)
            visitor.connections = 1
            return visitor
        visitor = self.visitors.get(address)
        if visitor is None:
            visitor = self.visitors[address] = Visitor(
                address, self.settings, self.clock, exempt=False)
        limit = self.settings.max_per_address
        if limit and visitor.connections >= limit:
            raise errors.TooManyConnections(limit)
        if self.settings.connect_rate > 0:
            wait = visitor.arrivals.allow()
            if wait:
                raise errors.ConnectingTooOften(wait)
        visitor.connections += 1
        return visitor

    def depart(self, visitor: Visitor):
        visitor.connections -= 1

    # Refusals are logged once, then summarised: a flood of connections must
    # not become a flood of log lines.

    def refused(self, peer, refusal):
        address = addressOf(peer)
        reason = refusal.reason
        self.refusals[reason] = self.refusals.get(reason, 0) + 1  # for --metrics
        counts = self._refused.get(address)
        if counts is None:
            self._refused[address] = {}
            self.log.info(
                "Refusing {address}: {reason}. Further refusals of this address are"
                " summarised every {interval:g} s.",
                address=address, reason=reason, interval=SUMMARY_INTERVAL)
        else:
            counts[reason] = counts.get(reason, 0) + 1

    def _summarise(self):
        for address, counts in list(self._refused.items()):
            if counts:
                total = sum(counts.values())
                reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))
                self.log.info(
                    "Refused {total} more connections from {address} in the last"
                    " {interval:g} s ({reasons})", total=total, address=address,
                    interval=SUMMARY_INTERVAL, reasons=reasons)
                self._refused[address] = {}
            else:
                del self._refused[address]  # quiet for a whole interval: log anew next time
        for address in [a for a, v in self.visitors.items() if v.idle()]:
            del self.visitors[address]

"""
Socket options every front door sets on a new connection: small chat lines
go out at once, a reader that never reads holds little in the kernel, and a
peer that vanished (a closed laptop lid, a NAT mapping that expired: no FIN,
no RST) is found out within a bounded time, whichever client it runs.
"""

import socket

from twisted.internet import tcp
from twisted.internet.interfaces import ITCPTransport

KERNEL_SEND_BUFFER = 64 * 1024  # Linux doubles it for its own bookkeeping
KEEPALIVE_PROBES = 4


def socketOf(transport):
    """The socket under a TCP or UNIX transport, TLS or not; None for others."""
    while not isinstance(transport, tcp.Connection):
        transport = getattr(transport, "transport", None)  # TLS wraps the TCP transport
        if transport is None:
            return None
    return transport.getHandle()


def deadAfter(keepalive: float) -> int:
    """
    Seconds after which a peer that stopped answering is dropped: C{keepalive}
    seconds of silence, then L{KEEPALIVE_PROBES} probes a quarter of that apart.
    """
    idle = max(1, round(keepalive))
    return idle + KEEPALIVE_PROBES * max(1, round(keepalive / 4))


def tune(transport, keepalive: float):
    """Set the options on a new connection's socket (C{keepalive} 0: no probes)."""
    if ITCPTransport.providedBy(transport):
        transport.setTcpNoDelay(True)  # chat lines are small: no Nagle delay
    handle = socketOf(transport)
    if handle is None:
        return
    # A fixed kernel send buffer: left to autotuning it grows to megabytes,
    # which a client that never reads would hold on top of --max-output-buffer.
    handle.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_SEND_BUFFER)
    if keepalive <= 0 or handle.family not in (socket.AF_INET, socket.AF_INET6):
        return
    idle = max(1, round(keepalive))
    interval = max(1, round(keepalive / 4))
    # Probes find a silent peer gone; the user timeout finds one gone while
    # what was sent to it waits unacknowledged (when probes are not sent).
    handle.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    handle.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
    handle.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
    handle.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_PROBES)
    handle.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT,
                      deadAfter(keepalive) * 1000)

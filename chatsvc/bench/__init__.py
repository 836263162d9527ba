"""
chatsvc-bench: drives a real chatsvc server (or ngircd) over TCP and measures
it (workloads fanout, join, store, connections and abuse).

Modules: L{cli} (the command line), L{run} (one run's clients and deadline),
L{workloads}, L{client} (the cheap client and the wire dialect), L{server}
(the server subprocess, /proc readings, preloading), L{report}, L{irc} (the
IRC dialect, chatsvc's IRC door and ngircd, for ``--protocol irc``,
``--irc-ack`` and ``--servers``), L{sink}
(the process that counts most fanout receivers, ``--sinks``), L{plot}
(``chatsvc-bench plot``) and ``chatsvc-bench abuse``: L{abuse} (the
workload and its runs), L{abuseargs}, L{abuseserver}, L{abusetable},
L{people} (the normal users), L{visits} (connecting from a chosen loopback
address), L{abusers} (the attackers in the room) and L{attackers} (those
that come and go).
"""

from chatsvc.bench.cli import main

__all__ = ["main"]

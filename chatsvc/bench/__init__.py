"""
chatsvc-bench: drives a real chatsvc server over TCP from one process and
measures it (workloads fanout, join, store and connections).

Modules: L{cli} (the command line), L{run} (one run's clients and deadline),
L{workloads}, L{client} (the cheap client and the wire dialect), L{server}
(the server subprocess, /proc readings, preloading), L{report}, L{irc} (the
IRC dialect and ngircd, for ``--protocol irc`` and ``--servers``), L{sink}
(helper processes for ``--sinks``) and L{plot} (``chatsvc-bench plot``).
"""

from chatsvc.bench.cli import main

__all__ = ["main"]

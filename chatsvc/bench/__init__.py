"""
chatsvc-bench: drives a real chatsvc server over TCP from one process and
measures it (workloads fanout, join, store and connections).

Modules: L{cli} (the command line), L{run} (one run's clients and deadline),
L{workloads}, L{client} (the cheap client and the wire dialect), L{server}
(the server subprocess, /proc readings, preloading) and L{report}.
"""

from chatsvc.bench.cli import main

__all__ = ["main"]

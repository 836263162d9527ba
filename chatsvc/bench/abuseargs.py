"""
The command line of ``chatsvc-bench abuse`` (L{chatsvc.bench.abuse}): its
options, added to the bench's subcommands.
"""

import argparse

from chatsvc.bench.visits import ATTACKERS_ADDRESS, loopbackAddress

ATTACKERS = ("flooder", "nonreader", "unnamed", "reconnector", "squatter", "roomspam", "lister")


def addParser(sub, common, whole):
    """Add the ``abuse`` subcommand to the bench's subparsers."""
    p = sub.add_parser(
        "abuse", parents=[common], help="normal users with and without attackers",
        description="Runs N normal users (each from a loopback address of its own, taking"
        " --typing seconds to type a name, then in one room, M messages each at RATE a"
        " second) twice, each against a fresh server with its default abuse limits: alone,"
        " then with the attackers, all from one address (the listers each from their own)."
        " Reports who was let in, what the normal users saw and what became of each"
        " attacker. Pass --server-arg to change the server's limits, e.g."
        " --server-arg=--login-timeout=5.")
    p.add_argument("-N", "--users", type=whole(1, 10_000), default=20,
                   help="normal users (default 20)")
    p.add_argument("-M", "--messages", type=whole(1, 1_000_000), default=100,
                   help="messages per normal user (default 100)")
    p.add_argument("--rate", type=_rate, default=4.0,
                   help="messages a second per normal user (default 4; the server's flood"
                   " limit is 5)")
    p.add_argument("-P", "--payload", type=whole(32, 2048), default=1024,
                   help="normal message size in bytes (default 1024)")
    p.add_argument("--typing", type=_seconds, default=2.0, metavar="SECONDS",
                   help="how long a normal user takes to type its name after the prompt"
                   " (default 2; 0: at once)")
    p.add_argument("--attackers", type=_attackerList, default=ATTACKERS, metavar="LIST",
                   help="the attackers of the second phase, comma-separated, from "
                   + ", ".join(ATTACKERS) + " (default: all)")
    p.add_argument("--attackers-address", type=_attackersAddress, default=ATTACKERS_ADDRESS,
                   metavar="ADDRESS", help="the one loopback address every attacker connects"
                   " from (default 127.0.0.1; the normal users come from 127.1.0.1 up, the"
                   " listers from 127.0.5.1 up)")
    p.add_argument("--rooms", type=whole(0, 10_000_000), default=0, metavar="N",
                   help="rooms written straight into each phase's fresh database before"
                   " its server starts, as a server up for a long while holds them; the"
                   " servers get --max-rooms N more than their default (default 0)")
    p.add_argument("--listers", type=whole(1, 1000), default=1, metavar="K",
                   help="how many listers (--attackers lister) list every room again and"
                   " again, each from an address of its own, 127.0.5.1, 127.0.5.2, ...,"
                   " since the server lets one address hold 3 connections (default 1)")
    p.add_argument("--warmup", type=_seconds, default=2.0, metavar="SECONDS",
                   help="how long the attackers that come and go run before the normal"
                   " users come (default 2)")
    p.add_argument("--flood-lines", type=whole(1, 10_000_000), default=5000,
                   help="lines the flooder writes (default 5000)")
    p.add_argument("--abuser-payload", type=whole(32, 65536), default=2000,
                   help="size of the flooder's and the reconnector's lines in bytes"
                   " (default 2000)")
    p.add_argument("--burst", type=whole(1, 100_000), default=None, metavar="LINES",
                   help="lines the reconnector says, and rooms the room spammer asks for,"
                   " on each connection (default: what fits in the server's --flood-burst"
                   " with the name and the join: 8 and 9 of 10)")
    p.add_argument("--squat-rate", type=_rate, default=10.0, metavar="PER_SECOND",
                   help="silent connections the squatter opens a second (default 10)")
    p.add_argument("--retry-delay", type=_seconds, default=0.01, metavar="SECONDS",
                   help="after a refusal, the reconnector, the room spammer and the lister"
                   " wait this long before connecting again (default 0.01; 0: at once, and"
                   " the bench spends its core on refusals, not on timing the users)")
    p.add_argument("--grace", type=_rate, default=15.0, metavar="SECONDS",
                   help="after the normal load, wait at most this long for the non-reader's"
                   " disconnection and the unnamed client's closure (default 15)")
    p.add_argument("--nonreader-rcvbuf", type=whole(256, 1 << 24), default=4096,
                   help="the non-reader's SO_RCVBUF, set before connecting (default 4096)")
    p.add_argument("--nonreader-mss", type=whole(0, 65495), default=1460,
                   help="the MSS the non-reader announces (default 1460, Ethernet's;"
                   " 0 keeps loopback's 65483, and the server's kernel then holds up to"
                   " tcp_wmem's maximum for it)")
    return p


def _rate(text):
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 < value <= 100_000:
        raise argparse.ArgumentTypeError(
            f"takes a number above 0 (at most 100,000), not {text!r}")
    return value


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"takes seconds from 0 to 3600, not {text!r}")
    return value


def _attackerList(text):
    names = [n.strip() for n in text.split(",") if n.strip()]
    wrong = [n for n in names if n not in ATTACKERS]
    if not names or wrong or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"takes a comma-separated list of {', '.join(ATTACKERS)} (each once), not {text!r}")
    return tuple(names)


def _attackersAddress(text):
    try:
        return loopbackAddress(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes an address in 127.0.0.0/8, not {text!r}")

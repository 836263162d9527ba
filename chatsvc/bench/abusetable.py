"""
The table of ``chatsvc-bench abuse`` (L{chatsvc.bench.abuse}): what the
normal users saw without and with the attackers (medians over the repeats),
then what became of each attacker, run by run, and what the server told
those it refused.
"""

import collections
import statistics
import sys

from chatsvc.bench import report

PHASES = (("alone", "without attackers"), ("abused", "with attackers"))

# A measure's label ends with ", UNIT"; a count says what it counts.
NORMAL_ROWS = [
    ("admitted", "normal users let in (welcomed)"),
    ("not_admitted", "  not let in"),
    ("disconnected", "  disconnected during the load"),
    ("delivered", "normal messages delivered"),
    ("expected", "  expected (let in x let in x M)"),
    ("lost", "  lost"),
    ("lines_per_s", "delivery rate, lines/s"),
    ("offered_lines_per_s", "  offered (let in x let in x rate), lines/s"),
    ("delivery_p50_ms", "delivery latency p50, ms"),
    ("delivery_p99_ms", "delivery latency p99, ms"),
    ("delivery_max_ms", "delivery latency max, ms"),
    ("delivery_max_sent_at_s", "  its message was sent at, s into the load"),
    ("echo_p99_ms", "echo latency p99, ms"),
    ("rows_stored", "normal messages stored"),
    ("server_cpu_pct", "server CPU, % of one core"),
    ("bench_cpu_pct", "bench CPU (users and attackers), % of one core"),
    ("other_cpu_pct", "other processes' CPU, % of one core (want ~0)"),
    ("rss_start_kib", "server RSS at start, KiB"),
    ("rss_end_kib", "server RSS at end, KiB"),
    ("rss_peak_kib", "server RSS peak (VmHWM), KiB"),
]

ATTACKER_ROWS = [
    ("flood_admitted", "flooder: let in"),
    ("flood_sent", "  lines sent"),
    ("flood_echoed", "  echoed back to it"),
    ("flood_stored", "  stored (rows after the run)"),
    ("flood_unread", "  not read yet when the run ended"),
    ("flood_lost", "  lost (gaps in what was stored)"),
    ("flood_rate_per_s", "  echo rate after the burst, lines/s"),
    ("flood_seen_min", "  its lines seen by each normal user (min)"),
    ("nonreader_admitted", "non-reader: let in"),
    ("nonreader_disconnected", "  disconnected"),
    ("nonreader_after_s", "  after it stopped reading, s"),
    ("nonreader_at_s", "  at, s into the load"),
    ("nonreader_bytes_its_way", "  sent its way by then, bytes"),
    ("nonreader_server_queued", "  queued for it, as the server said, bytes"),
    ("unnamed_admitted", "never-named: given the name prompt"),
    ("unnamed_closed", "  closed by the server"),
    ("unnamed_after_s", "  after connecting, s"),
    ("unnamed_connected_s", "  still connected after, s"),
    ("reconnector_tried", "reconnector: connections tried"),
    ("reconnector_admitted", "  let in (welcomed)"),
    ("reconnector_refused", "  refused"),
    ("reconnector_per_s", "  let in, connections/s"),
    ("reconnector_lines_sent", "  lines it said when let in"),
    ("reconnector_stored", "  of them stored"),
    ("reconnector_seen_min", "  seen by each normal user (min)"),
    ("squatter_tried", "squatter: silent connections tried"),
    ("squatter_admitted", "  given the name prompt"),
    ("squatter_refused", "  refused"),
    ("squatter_closed_by_server", "  closed by the server later"),
    ("squatter_open_at_end", "  still open at the end"),
    ("roomspam_tried", "room spammer: connections tried"),
    ("roomspam_admitted", "  let in (welcomed)"),
    ("roomspam_refused", "  refused"),
    ("roomspam_asked", "  rooms asked for"),
    ("roomspam_created", "  rooms created"),
    ("roomspam_rooms_stored", "  rooms in the database after the run"),
    ("roomspam_create_refused", "  creates refused"),
    ("lister_listers", "listers: each from an address of its own"),
    ("lister_tried", "  connections tried"),
    ("lister_admitted", "  let in (welcomed)"),
    ("lister_refused", "  refused"),
    ("lister_lists", "  lists answered"),
    ("lister_lists_per_s", "  lists answered a second"),
    ("lister_rooms_listed", "  rooms in its last list"),
    ("lister_bytes", "  read, bytes"),
    ("lister_p50_ms", "  answer time p50, ms"),
    ("lister_p99_ms", "  answer time p99, ms"),
    ("lister_max_ms", "  answer time max, ms"),
]

# What the server said, per attacker: [[times, line], ...] in the metrics.
TOLD = [
    ("alone_not_admitted_told", "normal users not let in without attackers were told"),
    ("abused_not_admitted_told", "normal users not let in with attackers were told"),
    ("flood_told", "the flooder was refused"),
    ("nonreader_told", "the non-reader was refused"),
    ("unnamed_told", "the never-named client was told"),
    ("reconnector_told", "the reconnector was refused"),
    ("squatter_told", "the squatter was refused"),
    ("squatter_closed_told", "the squatter's connections were closed"),
    ("roomspam_told", "the room spammer was refused"),
    ("roomspam_create_told", "the room spammer's creates were refused"),
    ("lister_told", "the listers were refused"),
]


def _fmt(value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    return report._fmt(value)


def _cell(results, key):
    values = [r.metrics.get(key) for r in results]
    if len(values) == 1:
        return _fmt(values[0])
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if numbers and len(numbers) == len(values):
        return (f"{report._fmt(report._round(statistics.median(numbers)))}"
                f" ({report._fmt(min(numbers))}-{report._fmt(max(numbers))})")
    return " / ".join(_fmt(v) for v in values)


def _rows(rows, out):
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [str(row[0]).ljust(widths[0])] + [str(c).rjust(w) for c, w in
                                                  zip(row[1:], widths[1:])]
        print("  ".join(cells).rstrip(), file=out)


def limitsLine(limits, width=100):
    """The servers' settings as options, folded to C{width} characters."""
    words = [f"--{k.replace('_', '-')} {report._fmt(v)}" for k, v in limits.items()]
    lines, line = [], "servers' settings:"
    for word in words:
        if len(line) + len(word) + 2 > width:
            lines.append(line + ",")
            line = " "
        line += (" " if line.endswith(":") or line == " " else ", ") + word
    return lines + [line]


def told(results, key):
    """What the server said under C{key}, summed over the runs: [(times, line)], most first."""
    counts = collections.Counter()
    for r in results:
        value = r.metrics.get(key)
        if isinstance(value, str):
            counts[value] += 1
        for n, line in value if isinstance(value, list) else ():
            counts[line] += n
    return [(n, line) for line, n in counts.most_common(2)]


def table(results, out=None):
    out = out or sys.stdout
    first = results[0]
    params = " ".join(f"{k}={v}" for k, v in first.params.items())
    print(f"chatsvc-bench abuse  {params}", file=out)
    print("servers started by the bench, one per phase, with their own limits (nothing"
          " exempt); every attacker from"
          f" {first.params.get('attackers_address')} (the listers each from their own),"
          " each normal user from an address of its own", file=out)
    if first.params.get("rooms"):
        print(f"each phase's database held {first.params['rooms']:,} rooms before its server"
              " started", file=out)
    for line in limitsLine(first.server.get("limits", {})):
        print(line, file=out)
    many = len(results) > 1
    print(file=out)
    head = ["normal users" + (f"  (median (min-max) of {len(results)} runs)" if many else "")]
    rows = [head + [label for _, label in PHASES]]
    for key, label in NORMAL_ROWS:
        rows.append([label] + [_cell(results, f"{phase}_{key}") for phase, _ in PHASES])
    _rows(rows, out)
    print(file=out)
    rows = [["attackers (with attackers)"] + [f"run {r.run}" for r in results]
            + (["median"] if many else [])]
    summary = report.summarize(results) if many else {}
    for key, label in ATTACKER_ROWS:
        if all(r.metrics.get(key) is None for r in results):
            continue
        row = [label] + [_fmt(r.metrics.get(key)) for r in results]
        if many:
            row.append(report._fmt(summary[key]["median"]) if key in summary else "")
        rows.append(row)
    if len(rows) > 1:
        _rows(rows, out)
    for key, label in TOLD:
        for n, line in told(results, key):
            print(f"{label} ({n:,}x): {line}", file=out)
    for r in results:
        status = "complete" if r.complete else "INCOMPLETE"
        if r.errors or not r.complete:
            print(f"run {r.run}: {status}: " + "; ".join(r.errors), file=out)
        for phase, label in PHASES:
            other = r.metrics.get(f"{phase}_other_cpu_pct")
            if other is not None and other > report.BUSY:
                print(f"run {r.run} {label}: other processes used {other:.0f}% of a core"
                      " meanwhile: its latencies are disturbed", file=out)
            bench = r.metrics.get(f"{phase}_bench_cpu_pct")
            if bench is not None and bench > report.SATURATED:
                print(f"run {r.run} {label}: the bench used {bench:.0f}% of its core: the"
                      " normal users' latencies include its own delays", file=out)
        if r.metrics.get("nonreader_disconnected") is False and \
                r.metrics.get("nonreader_bytes_its_way") is not None:
            print(f"run {r.run}: the non-reader was not disconnected within the run"
                  f" ({r.metrics.get('nonreader_bytes_its_way') or 0:,} bytes were sent its"
                  " way); a longer or heavier load (-M, -P, -N) would get there", file=out)
    out.flush()

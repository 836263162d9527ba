"""
Results of a benchmark run: the numbers (percentiles, medians over repeats),
the human table printed to stdout and the JSON lines appended to ``--json``.
"""

import json
import math
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field

# What each metric is called in the table, with its unit: a measure ends
# with ", UNIT"; a count says what it counts.
LABELS = {
    "messages": "messages said and echoed",
    "messages_expected": "  expected",
    "lines": "lines delivered (all clients)",
    "lines_expected": "  expected",
    "elapsed_s": "measured for (first send to last line), s",
    "msgs_per_s": "message rate (stored and echoed), messages/s",
    "lines_per_s": "delivery rate (all clients), lines/s",
    "delivery_p50_ms": "delivery latency p50 (timed copies), ms",
    "delivery_p99_ms": "delivery latency p99, ms",
    "delivery_max_ms": "delivery latency max, ms",
    "delivery_timed": "copies timed (probes' and senders')",
    "echo_p50_ms": "echo latency p50 (sender's own), ms",
    "echo_p99_ms": "echo latency p99, ms",
    "echo_max_ms": "echo latency max, ms",
    "echo_max_sent_at_s": "  its message was sent at, s into the run",
    "server_cpu_pct": "server CPU, % of one core",
    "server_sys_pct": "  of which in the kernel, % of one core",
    "bench_cpu_pct": "bench CPU, % of one core",
    "other_cpu_pct": "other processes' CPU, % of one core (want ~0)",
    "server_us_per_line": "server CPU per delivered line, µs",
    "joins": "joins timed",
    "join_p50_ms": "join time p50 (join to the replay's last line), ms",
    "join_p99_ms": "join time p99, ms",
    "join_max_ms": "join time max, ms",
    "bytes_p50": "join answer size p50, bytes",
    "bytes_p99": "join answer size p99, bytes",
    "lines_per_join": "lines per join (median)",
    "replay_lines": "messages replayed per join (median)",
    "older_reported": "older messages announced per join (median)",
    "preload_s": "history preload (before the server starts), s",
    "server_start_s": "server start-up (spawn to listening), s",
    "rows_stored": "messages in the database after the run",
    "connections": "connections opened and named",
    "connect_s": "time to open them, s",
    "conns_per_s": "connection rate, connections/s",
    "rss_before_kib": "server RSS before, KiB",
    "rss_after_kib": "server RSS after, KiB",
    "rss_per_conn_bytes": "server RSS per connection, bytes",
    "copies_duplicated": "copies received twice (bench-read clients)",
    "copies_skipped": "copies that skipped ahead of their sender's order",
    "rows_duplicate_uids": "duplicate messages in the database",
    "rows_seq_holes": "holes in the rooms' seqs in the database",
    "redis_cpu_pct": "Redis CPU, % of one core",
    "db_cpu_pct": "PostgreSQL backends' CPU, % of one core",
    "redis_killed_at_s": "Redis killed at, s into the run",
    "redis_down_s": "Redis down (killed to accepting again), s",
    "outage_delivery_p50_ms": "delivery latency p50, sent around the outage, ms",
    "outage_delivery_p99_ms": "delivery latency p99, around the outage, ms",
    "outage_delivery_max_ms": "delivery latency max, around the outage, ms",
    "outage_timed": "copies timed around the outage (0.1 s before to 1 s after)",
    "steady_delivery_p50_ms": "delivery latency p50, the rest of the run, ms",
    "steady_delivery_p99_ms": "delivery latency p99, the rest of the run, ms",
    "steady_delivery_max_ms": "delivery latency max, the rest of the run, ms",
    "steady_timed": "copies timed in the rest of the run",
    "pings_answered": "server PINGs answered (IRC)",
    "ws_pings_answered": "server WebSocket pings answered (web)",
}

# Labels that differ for another wire protocol and way of acknowledging a
# message: keyed by (params["protocol"], params["ack"]), e.g. ("irc", "witness").
PROTOCOL_LABELS = {}

BUSY = 20  # other processes' CPU % above which a run's numbers are called disturbed
SATURATED = 90  # the bench's CPU % of its one core above which it may be the limit


@dataclass
class Result:
    """One run of one workload."""

    bench: str
    params: dict
    metrics: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    server: dict = field(default_factory=dict)
    complete: bool = True
    run: int = 1
    runs: int = 1
    run_id: str = ""  # in the names of the rooms it made: bench-RUN_ID...

    def record(self) -> dict:
        return {
            "bench": self.bench,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "run": self.run,
            "runs": self.runs,
            "run_id": self.run_id,
            "params": self.params,
            "metrics": self.metrics,
            "complete": self.complete,
            "errors": self.errors,
            "server": self.server,
            "host": {"cpus": _cpus(), "python": platform.python_version()},
        }


def _cpus():
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def percentile(ordered, p):
    """The nearest-rank percentile C{p} (0-100) of an ascending sequence, or None."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def latencies(prefix, samples_us) -> dict:
    """p50, p99 and max of microsecond samples, in milliseconds, as C{prefix}_p50_ms etc."""
    ordered = sorted(samples_us)
    out = {}
    for name, p in (("p50", 50), ("p99", 99), ("max", 100)):
        value = percentile(ordered, p)
        out[f"{prefix}_{name}_ms"] = None if value is None else round(value / 1000, 3)
    return out


def summarize(results) -> dict:
    """Per metric over repeated runs: median, min and max (numbers only)."""
    summary = {}
    for key in results[0].metrics:
        values = [r.metrics.get(key) for r in results]
        values = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if values:
            summary[key] = {"median": _round(statistics.median(values)),
                            "min": min(values), "max": max(values)}
    return summary


def _round(value):
    if isinstance(value, float):
        return round(value, 3)
    return value


def _fmt(value):
    if value is None:
        return "-"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    if isinstance(value, float):
        if value >= 1000:
            return f"{value:,.0f}"
        if value >= 100:
            return f"{value:.1f}"
        return f"{value:.3g}" if value < 1 else f"{value:.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def table(results, out=None):
    """Print the results of one invocation (one or more runs) as a table."""
    out = out or sys.stdout
    first = results[0]
    params = " ".join(f"{k}={v}" for k, v in first.params.items())
    where = " ".join(filter(None, (first.server.get("kind"), first.server.get("address", "?"))))
    owner = "started by the bench" if first.server.get("started") else "already running"
    print(f"chatsvc-bench {first.bench}  {params}  (server {where}, {owner})", file=out)
    headers = ["metric"] + [f"run {r.run}" for r in results]
    if len(results) > 1:
        headers += ["median", "min-max"]
    summary = summarize(results) if len(results) > 1 else {}
    rows = []
    labels = {**LABELS, **PROTOCOL_LABELS.get(
        (first.params.get("protocol"), first.params.get("ack")), {})}
    for key in first.metrics:
        row = [labels.get(key, key)] + [_fmt(r.metrics.get(key)) for r in results]
        if len(results) > 1:
            s = summary.get(key)
            row += [_fmt(s["median"]), f"{_fmt(s['min'])}-{_fmt(s['max'])}"] if s else ["-", "-"]
        rows.append(row)
    widths = [max(len(str(row[i])) for row in [headers] + rows) for i in range(len(headers))]
    for row in [headers] + rows:
        cells = [str(row[0]).ljust(widths[0])]
        cells += [str(c).rjust(w) for c, w in zip(row[1:], widths[1:])]
        print("  ".join(cells).rstrip(), file=out)
    for r in results:
        status = "complete" if r.complete else "INCOMPLETE"
        if r.errors or not r.complete:
            print(f"run {r.run}: {status}: " + "; ".join(r.errors), file=out)
        other = r.metrics.get("other_cpu_pct")
        if other is not None and other > BUSY:
            print(f"run {r.run}: other processes used {other:.0f}% of a core meanwhile:"
                  " its numbers are disturbed", file=out)
        bench = r.metrics.get("bench_cpu_pct")
        if bench is not None and bench > SATURATED and "lines_per_s" in r.metrics:
            print(f"run {r.run}: the bench itself used {bench:.0f}% of a core: the load"
                  " generator, not only the server, may be what limits it", file=out)
    out.flush()


def append_json(path, results):
    """Append one JSON line per run, and a summary line when there were several."""
    with open(path, "a", encoding="utf-8") as f:
        f.writelines(json.dumps(r.record()) + "\n" for r in results)
        if len(results) > 1:
            first = results[0]
            f.write(json.dumps({
                "bench": first.bench, "summary": summarize(results), "runs": len(results),
                "params": first.params, "server": first.server.get("kind"),
                "complete": all(r.complete for r in results),
            }) + "\n")

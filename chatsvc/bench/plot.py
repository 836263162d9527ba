"""
``chatsvc-bench plot RESULTS.jsonl... -o PNG``: delivered lines/s, p99
delivery latency and the server's CPU time per delivered line of the
``fanout`` runs against R (receivers), one line per
server (and per senders/window/payload when the files hold several), each
point the median of the runs at that R with their min-max as an error bar.

matplotlib is an optional extra (``pip install 'chatsvc[plot]'``); it is only
imported when drawing.
"""

import json
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass, field

METRICS = (("lines_per_s", "delivered lines/s (all clients)"),
           ("delivery_p99_ms", "delivery latency p99, ms"),
           ("server_us_per_line", "server CPU µs per delivered line"))


class PlotError(Exception):
    """The plot cannot be drawn; the message says why, in one line."""


def addParser(sub):
    p = sub.add_parser("plot", help="draw lines/s and p99 latency against R into a PNG",
                       description="Draw the fanout runs' delivered lines/s, p99 delivery"
                       " latency and server CPU per line against R, one line per server,"
                       " from --json files (needs matplotlib: pip install 'chatsvc[plot]').")
    p.add_argument("files", nargs="+", metavar="RESULTS.jsonl",
                   help="JSON lines written by --json (other workloads are skipped)")
    p.add_argument("-o", "--output", required=True, metavar="PNG", help="the image to write")
    p.add_argument("--title", default=None, help="a title over the panels")
    p.add_argument("--sinks", type=int, default=None, metavar="N",
                   help="only the runs made with --sinks N (default: all, as separate lines)")
    return p


def serverOf(record):
    """
    Which server a run measured: the bench's label, else the protocol; with
    the --server-arg values it was started with, e.g. "chatsvc --durability=crash".
    """
    server = record.get("server") or {}
    kind = server.get("kind") or record.get("params", {}).get("protocol", "chatsvc")
    return " ".join([kind, *server.get("extra", ())])


def load(paths):
    """The per-run records (not the summary lines) of the files, in order."""
    records = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except ValueError:
                        raise PlotError(f"{path}:{number} is not a JSON line") from None
                    if isinstance(record, dict) and "metrics" in record:
                        records.append(record)
        except OSError as e:
            raise PlotError(f"cannot read {path}: {e.strerror}") from None
    return records


@dataclass
class Series:
    server: str
    senders: int
    window: int
    payload: int
    sinks: int = 0
    points: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))

    def label(self, all_same):
        if all_same:
            return self.server
        return (f"{self.server} (S={self.senders}, W={self.window}, {self.payload} B,"
                f" {self.sinks} sinks)")

    def rows(self, metric):
        """(R, median, min, max, runs) for each R with values, in order of R."""
        out = []
        for receivers in sorted(self.points):
            values = self.points[receivers][metric]
            if values:
                out.append((receivers, statistics.median(values), min(values), max(values),
                            len(values)))
        return out


def series(records, sinks=None):
    """The fanout runs that completed, grouped by server, S, W, payload and sinks."""
    found = {}
    for record in records:
        if record.get("bench") != "fanout" or not record.get("complete", True):
            continue
        params = record.get("params", {})
        if sinks is not None and params.get("sinks", 0) != sinks:
            continue
        key = (serverOf(record), params.get("senders"), params.get("window"),
               params.get("payload"), params.get("sinks", 0))
        one = found.setdefault(key, Series(*key))
        for metric, _ in METRICS:
            value = record["metrics"].get(metric)
            if isinstance(value, (int, float)):
                one.points[params.get("receivers")][metric].append(value)
    return [found[key] for key in sorted(found, key=lambda k: tuple(map(str, k)))]


def draw(all_series, output, title=None):
    """Write the PNG. Raises L{PlotError} when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        raise PlotError("matplotlib is not installed: pip install 'chatsvc[plot]'"
                        " (or pip install matplotlib)") from None
    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.ticker import FuncFormatter

    same = len({(s.senders, s.window, s.payload, s.sinks) for s in all_series}) == 1
    figure, axes = pyplot.subplots(1, len(METRICS), figsize=(15, 4.4))
    for ax, (metric, name) in zip(axes, METRICS):
        drawn = 0
        for one in all_series:
            rows = one.rows(metric)
            if not rows:
                continue
            xs = [r[0] for r in rows]
            ys = [r[1] for r in rows]
            spread = [[r[1] - r[2] for r in rows], [r[3] - r[1] for r in rows]]
            ax.errorbar(xs, ys, yerr=spread, marker="o", capsize=3, label=one.label(same))
            drawn += 1
        ax.set_xlabel("R (receivers in the room)")
        ax.set_ylabel(name)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        if drawn:
            ax.legend()
        else:
            ax.text(0.5, 0.5, "not in these results", ha="center", transform=ax.transAxes)
    axes[0].yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:,.0f}k"))
    if same and all_series:
        first = all_series[0]
        reader = f", bench + {first.sinks} sink process(es)" if first.sinks else ""
        note = (f"fanout, S={first.senders} senders, window {first.window}, {first.payload}-byte"
                f" messages{reader}; median of the runs, bars: min-max")
        figure.suptitle(f"{title}\n{note}" if title else note, fontsize=10)
    elif title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(output, dpi=110)
    pyplot.close(figure)


def run(args, err=None):
    """The ``plot`` subcommand: 0 when the PNG is written, else 1 with one line."""
    err = err or sys.stderr
    try:
        found = series(load(args.files), args.sinks)
        if not found:
            raise PlotError("no completed fanout runs in " + ", ".join(args.files))
        draw(found, args.output, args.title)
    except PlotError as e:
        print(f"chatsvc-bench plot: {e}", file=err)
        return 1
    print(f"chatsvc-bench plot: wrote {args.output}", file=err)
    return 0

"""Per-file table of irctest results, from pytest's --junitxml files.

    python junit_table.py RESULTS.xml [MORE.xml ...]

Prints, for each irctest server_tests file, how many tests passed, failed,
errored, were skipped or xfailed; then each failure and error with the first
line of its message, and the commonest skip reasons. Standard library only.
"""

from __future__ import annotations

import collections
import sys
import xml.etree.ElementTree as ET
from typing import Dict, List, Tuple

KINDS = ("passed", "failed", "error", "skipped", "xfailed")


def first_line(text: str | None, width: int = 150) -> str:
    for line in (text or "").splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= width else line[: width - 1] + "…"
    return ""


def file_of(classname: str) -> str:
    """irctest.server_tests.cap.CapTestCase -> cap; ...chmodes.key.X -> chmodes/key."""
    parts = classname.split(".")
    if "server_tests" in parts:
        parts = parts[parts.index("server_tests") + 1 :]
    return "/".join(parts[:-1]) or classname


def outcome(case: ET.Element) -> Tuple[str, str]:
    for child in case:
        if child.tag == "failure":
            return "failed", child.get("message") or child.text or ""
        if child.tag == "error":
            return "error", child.get("message") or child.text or ""
        if child.tag == "skipped":
            kind = "xfailed" if child.get("type") == "pytest.xfail" else "skipped"
            return kind, child.get("message") or child.text or ""
    return "passed", ""


def main(paths: List[str]) -> int:
    counts: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    problems: List[Tuple[str, str, str]] = []
    skips: collections.Counter = collections.Counter()
    for path in paths:
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as e:
            print(f"junit_table: cannot read {path}: {e}", file=sys.stderr)
            continue
        for case in root.iter("testcase"):
            name = file_of(case.get("classname", ""))
            kind, message = outcome(case)
            counts[name][kind] += 1
            test = f"{name}::{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
            if kind in ("failed", "error"):
                problems.append((kind, test, first_line(message)))
            elif kind == "skipped":
                skips[first_line(message, 100)] += 1

    if not counts:
        print("junit_table: no test results")
        return 1
    width = max(len("file"), *(len(name) for name in counts))
    header = f"{'file':<{width}} " + " ".join(f"{k:>7}" for k in KINDS)
    print(header)
    print("-" * len(header))
    total: collections.Counter = collections.Counter()
    for name in sorted(counts):
        total.update(counts[name])
        print(f"{name:<{width}} " + " ".join(f"{counts[name][k]:>7}" for k in KINDS))
    print("-" * len(header))
    print(f"{'total':<{width}} " + " ".join(f"{total[k]:>7}" for k in KINDS))

    if problems:
        print("\nfailures and errors:")
        for kind, test, message in problems:
            print(f"  {kind.upper():5} {test}\n        {message}")
    if skips:
        print("\ncommonest skip reasons:")
        for reason, n in skips.most_common(10):
            print(f"  {n:4}  {reason}")
    print(
        "\nirctest: "
        + ", ".join(f"{total[k]} {k}" for k in ("passed", "failed", "error", "skipped", "xfailed"))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

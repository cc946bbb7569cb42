"""Write the figures of the results files into the benchmarks page of the documentation,
``docs/explanation/benchmarks.md`` (never by hand).

``python -m benchmarks.readme [RESULTS]`` replaces the block between ``<!-- bench:start -->``
and ``<!-- bench:end -->`` with the table and target verdicts that ``report`` prints for
``benchmarks/results/latest.json`` (``make bench``), and, when ``benchmarks/results/w5.json``
exists (a full-size W5 run: ``python -m benchmarks --only W5 --events 1000000``), the block
between ``<!-- bench-w5:start -->`` and ``<!-- bench-w5:end -->`` with its figures.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import report

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAGE = ROOT / "docs" / "explanation" / "benchmarks.md"
"""Where the blocks are (the module keeps its name: ``python -m benchmarks.readme``)."""
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
W5_START, W5_END = "<!-- bench-w5:start -->", "<!-- bench-w5:end -->"


def _rounds(records: list[dict[str, Any]], default: int = 3) -> int:
    """The rounds W5 recorded (W5-rounds), else ``make bench``'s three."""
    counts = {int(r["value"]) for r in records if r["workload"] == "W5-rounds"}
    return min(counts) if counts else default


def render(records: list[dict[str, Any]], when: datetime, command: str,
           start: str = START, end: str = END) -> str:
    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}"
    rounds = _rounds(records) if start == W5_START else 3
    what = "one round" if rounds == 1 else f"medians of {rounds} rounds"
    tables = []
    if any(not r["workload"].startswith("W5") for r in records):
        tables += [report.table(records), ""]
    if report.w5_records(records):
        tables += [report.w5_table(records), ""]
    return "\n".join([
        start,
        f"Last run: {when:%Y-%m-%d %H:%M} UTC, {machine}, `{command}` ({what}).",
        "",
        "```text",
        *tables,
        report.targets(records, rounds),
        "```",
        end,
    ])


def replace_block(text: str, block: str, start: str, end: str) -> str | None:
    """``text`` with the block between ``start`` and ``end`` replaced (None: no markers)."""
    if start not in text or end not in text:
        return None
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return head + block + tail


def current_block(text: str, start: str, end: str) -> str:
    """The block between ``start`` and ``end`` in ``text``, markers included ("" if none)."""
    if start not in text or end not in text:
        return ""
    _, rest = text.split(start, 1)
    return start + rest.split(end, 1)[0] + end


def _figures(block: str) -> list[str]:
    """``block`` without its "Last run" line."""
    return [line for line in block.splitlines() if not line.startswith("Last run:")]


def main(argv: list[str]) -> int:
    results = Path(argv[0]) if argv else RESULTS / "latest.json"
    text = PAGE.read_text()
    blocks = [(results, "make bench", START, END)]
    w5 = RESULTS / "w5.json"
    if not argv and w5.exists():
        events = max((int(r["value"]) for r in json.loads(w5.read_text())
                      if r["workload"] == "W5-events"), default=0)
        blocks.append((w5, f"python -m benchmarks --only W5 --events {events}", W5_START,
                       W5_END))
    for path, command, start, end in blocks:
        records = json.loads(path.read_text())
        # The file's time is the run's only until a checkout rewrites the file: a block
        # whose figures are unchanged keeps its own "Last run" line.
        when = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        block = render(records, when, command, start, end)
        if _figures(block) == _figures(current_block(text, start, end)):
            print(f"{PAGE.relative_to(ROOT)} benchmark block {start}: {path} unchanged")
            continue
        updated = replace_block(text, block, start, end)
        if updated is None:
            print(f"{PAGE.relative_to(ROOT)} has no {start} ... {end} block", file=sys.stderr)
            return 1
        text = updated
        print(f"{PAGE.relative_to(ROOT)} benchmark block {start} updated from {path}")
    PAGE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

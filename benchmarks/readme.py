"""Write the figures of benchmarks/results/latest.json into README.md (never by hand).

``python -m benchmarks.readme`` replaces the block between ``<!-- bench:start -->`` and
``<!-- bench:end -->`` with the table and target verdicts that ``report`` prints.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import report

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def render(records: list[dict[str, object]], when: datetime, rounds: str) -> str:
    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}"
    return "\n".join([
        START,
        f"Last run: {when:%Y-%m-%d %H:%M} UTC, {machine}, `make bench` ({rounds}).",
        "",
        "```text",
        report.table(records),  # type: ignore[arg-type]
        "",
        report.targets(records, 3),  # type: ignore[arg-type]
        "```",
        END,
    ])


def main(argv: list[str]) -> int:
    results = Path(argv[0]) if argv else ROOT / "benchmarks" / "results" / "latest.json"
    readme = ROOT / "README.md"
    records = json.loads(results.read_text())
    text = readme.read_text()
    if START not in text or END not in text:
        print(f"README.md has no {START} ... {END} block", file=sys.stderr)
        return 1
    when = datetime.fromtimestamp(results.stat().st_mtime, UTC)
    block = render(records, when, "medians of 3 rounds")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + block + tail)
    print(f"README.md benchmark block updated from {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

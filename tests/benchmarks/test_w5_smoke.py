"""Smoke test of W5 (scale) at a tiny size, and of how its targets are judged and rendered.

No timing assertions: every step runs, every record comes out in the schema, and the
verdicts follow the figures they are given.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import readme, report

ROOT = Path(__file__).resolve().parents[2]
# eventsourcing comes with the bench extra only (make bench), so the smoke test drives the
# other two systems.
SYSTEMS = ("invariant", "raw")
MEASURES = {
    "W5-events": "events", "W5-fill": "events/s", "W5-fill-s": "s",
    "W5-bytes": "bytes/event", "W5-bytes-events": "bytes/event",
    "W5-W1-empty": "commands/s", "W5-W1-full": "commands/s", "W5-W1-ratio": "x",
    "W5-W2": "ms", "W5-W2-snapshot": "ms",
    "W5-catchup": "events/s", "W5-catchup-start": "events/s", "W5-catchup-ratio": "x",
    "W5-catchup-rss": "MiB", "W5-rebuild-s": "s", "W5-rebuild-W1c": "commands/s",
    "W5-rebuild-W1c-ratio": "x", "W5-rounds": "rounds", "W5-runs": "runs",
}
W1C = {"W5-W1c-empty": "commands/s", "W5-W1c-full": "commands/s", "W5-W1c-ratio": "x"}


def test_w5_runs_every_step_once_and_writes_its_records(tmp_path: Path) -> None:
    out = tmp_path / "w5.json"
    proc = subprocess.run(  # --repeat 3 as make bench: W5 still fills its stores once
        [sys.executable, "-m", "benchmarks", "--only", "W5", "--events", "300",
         "--backend", "sqlite", "--system", ",".join(SYSTEMS), "--scale", "0.01",
         "--repeat", "3", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=280, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = json.loads(out.read_text())
    events = [r["value"] for r in records if r["workload"] == "W5-events"]
    got = {(r["workload"], r["system"]): r for r in records}
    for system in SYSTEMS:
        # raw SQLite has no W1c, as in the main suite (one connection, commits in turn)
        expected = {**MEASURES, **(W1C if system == "invariant" else {})}
        for workload, unit in expected.items():
            r = got.pop((workload, system))
            assert r["backend"] == "sqlite"
            assert r["unit"] == unit, r
            assert set(r) == {"workload", "backend", "system", "value", "unit"}
            assert r["value"] >= 0, r
    assert not got, f"unexpected records: {sorted(got)}"
    assert events == [300, 300]  # 30 streams of ten events
    assert proc.stdout.count("filled 300 events") == 2, proc.stdout  # one fill per system
    assert {r["value"] for r in records if r["workload"] == "W5-rounds"} == {1}
    assert {r["value"] for r in records if r["workload"] == "W5-runs"} == {3}
    assert "(one round: each catch-up and W1/W1c figure the median of 3 runs in it" \
        in proc.stdout
    assert "W5 W1 on the full store >= 0.85x on an empty one" in proc.stdout
    assert "W5, a full store: sqlite 300 events" in proc.stdout
    # one round: each catch-up figure a median of three catch-ups, each a fresh projection
    assert proc.stdout.count("median of 3: ") == 2, proc.stdout
    # and each W1/W1c ratio the median of three pairs of runs, empty store then full
    assert proc.stdout.count("(medians of 3 pairs)") == 2, proc.stdout


def test_repeated_catch_ups_give_medians_and_the_largest_memory_growth() -> None:
    from benchmarks.w5 import catchup_medians

    def run(rate: float, ratio: float, rss: float) -> list[list[Any]]:
        return [["W5-catchup", rate, "events/s"], ["W5-catchup-start", rate / ratio,
                                                    "events/s"],
                ["W5-catchup-ratio", ratio, "x"], ["W5-catchup-rss", rss, "MiB"]]

    got = catchup_medians([run(100.0, 0.8, 3.0), run(300.0, 1.0, 9.0), run(200.0, 0.9, 1.0)])
    # each figure its own median (starts 125, 300, 222.2); memory: the worst run
    assert got == [("W5-catchup", 200.0, "events/s"),
                   ("W5-catchup-start", 200.0 / 0.9, "events/s"),
                   ("W5-catchup-ratio", 0.9, "x"), ("W5-catchup-rss", 9.0, "MiB")]


def test_repeated_w1_pairs_give_median_rates_and_the_median_of_their_ratios() -> None:
    from benchmarks.w5_write import paired_medians

    # the second pair ran in a slow moment for both stores: its ratio is as good as the
    # others', while the ratio of the median rates (200 / 300) would not be
    empty, full, ratio = paired_medians([300.0, 100.0, 320.0], [270.0, 95.0, 200.0])
    assert (empty, full) == (300.0, 200.0)
    assert ratio == 0.9  # of 0.9, 0.95, 0.625


def record(workload: str, value: float, unit: str, system: str = "invariant"
           ) -> dict[str, Any]:
    return {"workload": workload, "backend": "postgres", "system": system, "value": value,
            "unit": unit}


FIGURES = [
    record("W5-events", 1_000_000, "events"), record("W5-rounds", 1, "rounds"),
    record("W5-runs", 3, "runs"),
    record("W5-W1-ratio", 0.91, "x"), record("W5-W1c-ratio", 0.80, "x"),
    record("W5-W2-snapshot", 0.4, "ms"), record("W5-catchup-ratio", 0.95, "x"),
    record("W5-catchup-rss", 50.0, "MiB"), record("W5-rebuild-s", 12.5, "s"),
    record("W5-rebuild-W1c-ratio", 0.7, "x"), record("W5-fill", 20_000, "events/s"),
    record("W5-fill", 10_000, "events/s", "raw"),
    record("W5-fill", 2_000, "events/s", "eventsourcing"),
]


def test_each_w5_target_is_judged_on_invariants_figure() -> None:
    text = report.targets(FIGURES, 3)

    lines = {line.split("  ")[2].strip(): line for line in text.splitlines() if "W5 " in line}
    assert "PASS  0.910 >= 0.850" in lines["W5 W1 on the full store >= 0.85x on an empty one"]
    assert "FAIL  0.800 >= 0.850" in lines["W5 W1c on the full store >= 0.85x on an empty one"]
    assert "PASS  0.400 <= 1.00" in lines["W5 W2-snapshot in the full store <= 1 ms"]
    assert "PASS  0.950 >= 0.900" in lines["W5 catch-up >= 0.9x its first-100k rate"]
    # growth must stay under 50 MiB: exactly 50 fails
    assert "FAIL  50.00 < 50.00" in lines["W5 catch-up memory growth < 50 MiB"]
    assert "12.50 s; writers meanwhile at 0.70x their rate" in text
    assert "W1 >= 0.7x raw W1" not in text  # a W5-only run judges W5 alone


def test_a_w5_run_renders_its_own_readme_block() -> None:
    block = readme.render(FIGURES, datetime(2026, 12, 7, 9, 30, tzinfo=UTC),
                          "python -m benchmarks --only W5 --events 1000000",
                          readme.W5_START, readme.W5_END)

    assert block.startswith(readme.W5_START)
    assert block.endswith(readme.W5_END)
    assert "(one round)" in block
    assert ("W5, a full store: postgres 1,000,000 events (one round: each catch-up and W1/W1c"
            " figure the median of 3 runs in it; the fill and the rebuild once)") in block
    fill = next(line for line in block.splitlines() if line.startswith("W5-fill "))
    assert fill.split()[2:5] == ["20,000", "10,000", "2,000"]  # invariant, raw, eventsourcing
    assert fill.split()[-2:] == ["2.00x", "10.00x"]  # invariant ÷ raw, ÷ eventsourcing
    assert "FAIL  0.800 >= 0.850" in block

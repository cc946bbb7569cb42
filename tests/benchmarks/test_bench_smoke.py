"""Smoke test of the benchmark suite: the SQLite part at a tiny scale.

No timing assertions: only that every run succeeds and the records come out in the schema
other tools read (see benchmarks/report.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UNITS = {"commands/s", "events/s", "ms", "MiB", "retries"}
# eventsourcing is installed only with the bench extra (make bench), so the smoke test,
# which runs in every `make test`, drives the other systems. W3 adds raw-typed: raw driver
# code that folds typed events, the floor of any framework that hands out typed events.
SYSTEMS = {"invariant", "invariant-nocache", "raw", "raw-typed"}


def test_sqlite_suite_writes_records_in_the_schema(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--backend", "sqlite", "--scale", "0.01",
         "--system", "raw,invariant,invariant-nocache", "--no-r1", "--no-w5", "--no-w6",
         "--out", str(out), "--workdir", str(tmp_path / "db")],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = json.loads(out.read_text())
    assert isinstance(records, list)
    assert records
    for r in records:
        assert set(r) == {"workload", "backend", "system", "value", "unit"}, r
        assert r["backend"] == "sqlite"
        assert r["system"] in SYSTEMS
        assert r["unit"] in UNITS
        assert isinstance(r["value"], int | float)
        assert r["value"] >= 0
    keys = {(r["workload"], r["system"]) for r in records}
    for system in ("invariant", "raw"):
        for workload in ("W1", "W1-rss", "W2", "W2-snapshot"):
            assert (workload, system) in keys, (workload, system)
    for system in ("invariant", "invariant-nocache"):
        assert ("W1c", system) in keys
    assert ("W1", "invariant-nocache") in keys
    assert {("W3", "invariant"), ("W3", "raw"), ("W3", "raw-typed")} <= keys
    assert "invariant/raw" not in proc.stdout  # ratios are printed as columns, not records
    assert "inv/raw" in proc.stdout


def test_r1_writes_relay_records_per_broker(tmp_path: Path) -> None:
    out = tmp_path / "r1.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.r1", "--events", "200", "--latency-events", "40",
         "--brokers", "inprocess", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = json.loads(out.read_text())
    got = {(r["workload"], r["backend"], r["unit"]) for r in records}
    assert got == {("R1", "inprocess", "messages/s"), ("R1-p50", "inprocess", "ms"),
                   ("R1-p99", "inprocess", "ms")}
    assert all(r["system"] == "invariant" and r["value"] > 0 for r in records)


def test_the_telemetry_option_puts_w1_without_hooks_beside_tracing_off_and_on(
        tmp_path: Path) -> None:
    out = tmp_path / "telemetry.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--telemetry", "--backend", "sqlite",
         "--scale", "0.01", "--out", str(out), "--workdir", str(tmp_path / "db")],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = json.loads(out.read_text())
    assert {(r["workload"], r["system"]) for r in records if r["workload"] == "W1"} == {
        ("W1", "invariant-notelemetry"), ("W1", "invariant"), ("W1", "invariant-traced")}
    table = proc.stdout[proc.stdout.index("W1, the cost of telemetry"):]
    assert "no telemetry  tracing off  tracing on  off/base  on/base" in table
    assert "\nsqlite " in table

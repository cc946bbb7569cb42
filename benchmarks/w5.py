"""W5: how cost grows with the work. invariant, eventsourcing and raw side by side.

``python -m benchmarks.w5 [--events 200000] [--backends sqlite,postgres]
[--systems invariant,raw,eventsourcing] [--w1-scale 0.25] [--json PATH]``
(``python -m benchmarks --only W5 --events 1000000`` runs it as part of the suite).

For each backend and system, in a store of its own and each step in a fresh process:

1. fill the store with ``--events`` events over ``--events / 10`` streams (batched
   commands from concurrent senders; fill time and events/s); then settle it (SQLite's WAL
   checkpointed, PostgreSQL's tables vacuumed and analyzed) and measure its bytes on disk
   per event (the whole store, and the events table with its indexes);
2. a fresh projection catches up with the whole log (events/s; the same over the first
   100,000 events; peak memory growth); ``--catchup-runs N``: N catch-ups, each a fresh
   projection, and the median of each figure;
3. W1 and W1c on an empty store and on the full one (ratio full/empty), W2 in the full
   store with and without a snapshot; ``--workload-runs N``: N pairs of W1/W1c runs (empty,
   then full, other accounts each time), the median of the rates and of the pairs' ratios;
4. version 2 of the projection is built beside version 1 and switched to while writers
   (the W1c senders, depositing to the filled accounts) keep writing: the time it takes,
   and the writers' rate during it against their rate before it.

Prints one line per step and, with ``--json PATH``, writes records shaped like
``benchmarks/results/latest.json`` (workloads ``W5-*``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.run_one import DEFAULT_DSN

ROOT = Path(__file__).resolve().parent.parent
SYSTEMS = ("invariant", "raw", "eventsourcing")
READ_SIDE = ("invariant", "raw")  # see benchmarks.w5_read: eventsourcing's runner is left out
WRITERS_BEFORE_S = 3.0  # the writers' rate without a rebuild is taken over this window
WARM_UP_S = 1.0  # ... after their first second
STEP_TIMEOUT_S = 7200
Record = dict[str, Any]


class StepFailed(Exception):
    """A step's process failed; its output says why."""


def _env(dsn: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["INVARIANT_BENCH_POSTGRES_DSN"] = dsn
    return env


def step(module: str, args: list[str], dsn: str, workdir: Path) -> Any:
    """Run ``python -m module args`` to its end; its JSON result."""
    result = workdir / f"step-{uuid.uuid4().hex[:8]}.json"
    proc = subprocess.run([sys.executable, "-m", module, *args, "--result", str(result)],
                          cwd=ROOT, env=_env(dsn), capture_output=True, text=True,
                          timeout=STEP_TIMEOUT_S, check=False)
    if proc.returncode != 0 or not result.exists():
        raise StepFailed(f"{module} {' '.join(args[:3])}: {proc.stderr.strip()[-800:]}")
    out = json.loads(result.read_text())
    result.unlink()
    return out


# -- the stores ----------------------------------------------------------------------------


async def _pg(dsn: str, sql: str, *args: Any) -> Any:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


@contextlib.contextmanager
def stores(backend: str, system: str, dsn: str, workdir: Path) -> Iterator[dict[str, str]]:
    """The ``full`` and ``empty`` stores of one system (files, or schemas), removed after."""
    if backend == "sqlite":
        where = {"sqlite_dir": str(workdir)}
        try:
            yield where
        finally:
            for path in workdir.glob(f"{system}-*.db*"):
                path.unlink()
        return
    tag = uuid.uuid4().hex[:8]
    schemas = {"schema_full": f"bench_w5_{tag}_full", "schema_empty": f"bench_w5_{tag}_empty"}
    for schema in schemas.values():
        asyncio.run(_pg(dsn, f'CREATE SCHEMA "{schema}"'))
    try:
        yield schemas
    finally:
        for schema in schemas.values():
            asyncio.run(_pg(dsn, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def settle(backend: str, system: str, where: dict[str, str], dsn: str) -> None:
    """What a store would have done by itself after a fill, before anyone reads it: fold
    SQLite's WAL into the file; vacuum and analyze PostgreSQL's tables, then write their
    dirty buffers out (a ``CHECKPOINT``), so that the server's own checkpoint of the fill
    does not land in the middle of the next system's measurements."""
    if backend == "sqlite":
        conn = sqlite3.connect(Path(where["sqlite_dir"]) / f"{system}-full.db")
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        return
    schema = where["schema_full"]
    for (table,) in asyncio.run(_pg(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = $1",
                                    schema)):
        asyncio.run(_pg(dsn, f'VACUUM ANALYZE "{schema}"."{table}"'))
    try:
        asyncio.run(_pg(dsn, "CHECKPOINT"))
    except Exception as exc:  # a role without pg_checkpoint: measured unsettled, and said so
        print(f"W5: no CHECKPOINT after the fill ({exc}); PostgreSQL writes the fill's "
              "buffers out while the next steps run", file=sys.stderr)


def table_bytes(backend: str, system: str, where: dict[str, str], dsn: str) -> dict[str, int]:
    """Bytes on disk per table, its indexes (and TOAST) included."""
    if backend == "sqlite":
        conn = sqlite3.connect(Path(where["sqlite_dir"]) / f"{system}-full.db")
        try:
            rows = conn.execute(
                "SELECT m.tbl_name, sum(d.pgsize) FROM dbstat d JOIN sqlite_master m"
                " ON m.name = d.name GROUP BY m.tbl_name").fetchall()
        finally:
            conn.close()
        return {name: int(size) for name, size in rows}
    rows = asyncio.run(_pg(
        dsn, "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
             " JOIN pg_namespace n ON n.oid = c.relnamespace"
             " WHERE n.nspname = $1 AND c.relkind = 'r'", where["schema_full"]))
    return {r[0]: int(r[1]) for r in rows}


def size_records(sizes: dict[str, int], events: int) -> list[tuple[str, float, str]]:
    """Per event: the whole store, and its events table (the largest ``*events`` table)."""
    events_table = max((n for n in sizes if n.endswith("events")), key=lambda n: sizes[n])
    return [("W5-bytes", sum(sizes.values()) / events, "bytes/event"),
            ("W5-bytes-events", sizes[events_table] / events, "bytes/event")]


# -- the writers during a rebuild ----------------------------------------------------------


def rebuild_under_writers(common: list[str], system: str, dsn: str, workdir: Path
                          ) -> list[tuple[str, float, str]]:
    """Start the writers, let them run, rebuild, stop them; the rebuild's time and the
    writers' rate during it against before it."""
    acks_file = workdir / f"acks-{uuid.uuid4().hex[:8]}.json"
    writers = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.w5_write", "writers", *common,
         "--result", str(acks_file)],
        cwd=ROOT, env=_env(dsn), stdout=subprocess.PIPE, text=True)
    try:
        assert writers.stdout is not None
        if writers.stdout.readline().strip() != "writing":
            raise StepFailed("the writers did not start")
        time.sleep(WARM_UP_S + WRITERS_BEFORE_S)
        rebuilt = step("benchmarks.w5_read", ["rebuild", *common], dsn, workdir)
    finally:
        writers.send_signal(signal.SIGTERM)
        try:
            writers.wait(timeout=120)
        except subprocess.TimeoutExpired:
            writers.kill()
            writers.wait()
    if writers.returncode != 0 or not acks_file.exists():
        raise StepFailed("the writers failed")
    acks = json.loads(acks_file.read_text())
    acks_file.unlink()
    first = acks[0] if acks else rebuilt["start"]
    before_from = first + WARM_UP_S
    before = sum(1 for t in acks if before_from <= t < rebuilt["start"])
    during = sum(1 for t in acks if rebuilt["start"] <= t < rebuilt["end"])
    took = rebuilt["end"] - rebuilt["start"]
    rate_before = before / max(1e-9, rebuilt["start"] - before_from)
    return [("W5-rebuild-s", took, "s"),
            ("W5-rebuild-W1c", during / took, "commands/s"),
            ("W5-rebuild-W1c-ratio", (during / took) / rate_before if rate_before else 0.0,
             "x")]


# -- one system ----------------------------------------------------------------------------


def run_system(backend: str, system: str, args: argparse.Namespace, workdir: Path
               ) -> list[Record]:
    def rec(name: str, value: float, unit: str) -> Record:
        return {"workload": name, "backend": backend, "system": system,
                "value": round(value, 3), "unit": unit}

    label = f"W5 {backend} {system}"
    with stores(backend, system, args.postgres_dsn, workdir) as where:
        common = ["--backend", backend, "--system", system, "--events", str(args.events),
                  "--postgres-dsn", args.postgres_dsn,
                  *(a for k, v in where.items() for a in (f"--{k.replace('_', '-')}", v))]
        out: list[Record] = step("benchmarks.w5_write", ["fill", *common], args.postgres_dsn,
                                 workdir)
        events = int(next(r["value"] for r in out if r["workload"] == "W5-events"))
        settle(backend, system, where, args.postgres_dsn)
        sizes = table_bytes(backend, system, where, args.postgres_dsn)
        out += [rec(*r) for r in size_records(sizes, events)]
        print(f"{label}: filled {events:,} events in {_value(out, 'W5-fill-s'):.1f} s "
              f"({_value(out, 'W5-fill'):,.0f} events/s), "
              f"{_value(out, 'W5-bytes'):,.0f} bytes/event", flush=True)
        read_common = _without_option(common, "--schema-empty")
        if system in READ_SIDE:
            runs = [step("benchmarks.w5_read", ["catchup", *read_common,
                                                *(["--suffix", f"_r{i}"] if i else [])],
                         args.postgres_dsn, workdir)
                    for i in range(args.catchup_runs)]
            out += [rec(*r) for r in catchup_medians(runs)]
            print(f"{label}: catch-up {_value(out, 'W5-catchup'):,.0f} events/s "
                  f"(first part {_value(out, 'W5-catchup-start'):,.0f}, "
                  f"{_value(out, 'W5-catchup-ratio'):.3f}x"
                  + (f", median of {len(runs)}: "
                     + ", ".join(f"{_value([rec(*r) for r in run], 'W5-catchup-ratio'):.3f}x"
                                 for run in runs) if len(runs) > 1 else "")
                  + f"), memory growth {_value(out, 'W5-catchup-rss'):.1f} MiB", flush=True)
        out += step("benchmarks.w5_write",
                    ["workloads", *common, "--w1-scale", str(args.w1_scale),
                     "--runs", str(args.workload_runs)],
                    args.postgres_dsn, workdir)
        w1c = _value(out, "W5-W1c-ratio", -1.0)
        print(f"{label}: W1 full/empty {_value(out, 'W5-W1-ratio'):.2f}x, W1c "
              + (f"{w1c:.2f}x" if w1c >= 0 else "not run")
              + (f" (medians of {args.workload_runs} pairs)" if args.workload_runs > 1 else "")
              + f", W2-snapshot {_value(out, 'W5-W2-snapshot'):.3f} ms", flush=True)
        if system in READ_SIDE:
            out += [rec(*r) for r in rebuild_under_writers(read_common, system,
                                                           args.postgres_dsn, workdir)]
            print(f"{label}: rebuild beside and switch {_value(out, 'W5-rebuild-s'):.1f} s, "
                  f"writers at {_value(out, 'W5-rebuild-W1c-ratio'):.2f}x their rate",
                  flush=True)
    return out


def catchup_medians(runs: list[list[list[Any]]]) -> list[tuple[str, float, str]]:
    """The median of each catch-up figure over ``runs`` (each its own fresh projection;
    the first one's is kept for the rebuild), the largest memory growth."""
    out = []
    for i, (name, _, unit) in enumerate(runs[0]):
        values = [float(run[i][1]) for run in runs]
        out.append((name, max(values) if name == "W5-catchup-rss"
                    else statistics.median(values), unit))
    return out


def _without_option(argv: list[str], option: str) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == option:
            skip = True
        else:
            out.append(a)
    return out


def _value(records: list[Record], workload: str, default: float = 0.0) -> float:
    return next((float(r["value"]) for r in records if r["workload"] == workload), default)


def run(args: argparse.Namespace) -> tuple[list[Record], list[str]]:
    """Every backend and system; the records and the failures (one line each)."""
    records: list[Record] = []
    failures: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="invariant-w5-"))
    try:
        for backend in args.backends:
            for system in args.systems:
                try:
                    records += run_system(backend, system, args, workdir)
                except (StepFailed, subprocess.TimeoutExpired) as exc:
                    failures.append(f"W5 {backend} {system}: {exc}")
                    print(failures[-1], flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return records, failures


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.w5")
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--w1-scale", type=float, default=0.25,
                   help="scale of W1/W1c's plan (0.25: 500 accounts and 4,500 deposits)")
    p.add_argument("--catchup-runs", type=int, default=1,
                   help="catch-ups per system, each a fresh projection: the median of them")
    p.add_argument("--workload-runs", type=int, default=1,
                   help="W1/W1c pairs (empty and full store) per system: the medians of them")
    p.add_argument("--postgres-dsn", default=DEFAULT_DSN)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    args.backends = [b for b in args.backends.split(",") if b]
    args.systems = [s for s in args.systems.split(",") if s]
    if args.events < 20:
        p.error("--events must be at least 20 (two streams of ten events)")
    if args.catchup_runs < 1:
        p.error("--catchup-runs must be at least 1")
    if args.workload_runs < 1:
        p.error("--workload-runs must be at least 1")
    bad = set(args.systems) - set(SYSTEMS)
    if bad:
        p.error(f"unknown systems {sorted(bad)}; choose from {', '.join(SYSTEMS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    records, failures = run(args)
    if args.json is not None:
        args.json.write_text(json.dumps(records, indent=1) + "\n")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

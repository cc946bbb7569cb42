"""``python -m benchmarks``: run the suite, print the table, write the JSON records.

Each (backend, system, workload) runs in a fresh ``python -m benchmarks.run_one`` process; this
parent samples the child's RSS with psutil while it runs and records the peak (the larger of
that and the child's own ru_maxrss) as ``<workload>-rss`` in MiB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks import report
from benchmarks.plan import make_plan
from benchmarks.report import TELEMETRY_COLUMNS
from benchmarks.run_one import DEFAULT_DSN, SKIPPED
from benchmarks.systems import ALL_SYSTEMS, BACKENDS, SYSTEMS
from benchmarks.workloads import WORKLOADS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latest.json"
TELEMETRY_OUT = DEFAULT_OUT.with_name("telemetry.json")
W5_OUT = DEFAULT_OUT.with_name("w5.json")  # a full-size W5 run, published in its own block
W5_EVENTS = 150_000  # make bench's bounded W5; --events 1000000 for the full size
W5_RUNS = 3
"""Catch-ups and pairs of W1/W1c runs in W5's one round, each figure their median."""
W6_INTAKE_S = 15.0
"""W6's intake in ``make bench`` (``python -m benchmarks.w6`` alone defaults to 45 s)."""
W6_CEILING_S = 10.0
CHILD_TIMEOUT_S = 900
RSS_SAMPLE_S = 0.02

# Runs that are deliberately not made (reason printed).
NOT_RUN = {
    ("sqlite", "raw", "W1c"): "raw SQLite W1c not measured: the W1c target is against raw "
                              "sequential W1",
    ("sqlite", "invariant-nocache", "W2"): "W2 is measured with cache_size=0 already",
    ("postgres", "invariant-nocache", "W2"): "W2 is measured with cache_size=0 already",
}


def _csv(choices: tuple[str, ...]) -> Any:
    def parse(text: str) -> list[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        bad = [t for t in items if t not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {bad}; choose from {', '.join(choices)}")
        return items

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="invariant vs raw driver code vs eventsourcing 9.5, on SQLite and PostgreSQL",
    )
    p.add_argument("--backend", choices=(*BACKENDS, "all"), default="all")
    p.add_argument("--workload", type=_csv(WORKLOADS), default=list(WORKLOADS),
                   help="comma-separated list of W1,W1c,W2 (default: all)")
    p.add_argument("--system", type=_csv(ALL_SYSTEMS), default=list(SYSTEMS),
                   help=f"comma-separated subset of {','.join(ALL_SYSTEMS)} (default: "
                        f"{','.join(SYSTEMS)})")
    p.add_argument("--telemetry", action="store_true",
                   help="W1 only, invariant without its telemetry hooks, with tracing off "
                        "(as shipped) and with tracing on, side by side (writes "
                        "benchmarks/results/telemetry.json)")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply the counts (e.g. 0.05 for a quick smoke run)")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON records file (default: benchmarks/results/latest.json, or "
                        "benchmarks/results/w5.json for --only W5)")
    p.add_argument("--postgres-dsn", default=DEFAULT_DSN,
                   help="default: $INVARIANT_BENCH_POSTGRES_DSN or %(default)s")
    p.add_argument("--repeat", type=int, default=1,
                   help="run the whole matrix this many times (in rounds) and record medians")
    p.add_argument("--no-w3", action="store_true",
                   help="skip W3 (projection catch-up, run by benchmarks.w3)")
    p.add_argument("--no-r1", action="store_true",
                   help="skip R1 (outbox relay and delivery per broker, benchmarks.r1)")
    p.add_argument("--no-w5", action="store_true",
                   help="skip W5 (scale: a full store, run by benchmarks.w5)")
    p.add_argument("--no-w6", action="store_true",
                   help="skip W6 (shop end to end and the HTTP ceiling, benchmarks.w6)")
    p.add_argument("--events", type=int, default=None,
                   help=f"W5's store size in events (default {W5_EVENTS:,} times --scale)")
    p.add_argument("--workdir", type=Path, default=None,
                   help="where SQLite files go (default: a fresh temporary directory)")
    p.add_argument("--only", type=_csv((*WORKLOADS, "W3", "R1", "W5", "W6")), default=None,
                   help="run only these workloads (e.g. W3, or W1,W3); overrides --workload, "
                        "--no-w3, --no-r1, --no-w5 and --no-w6")
    args = p.parse_args(argv)
    if args.telemetry:
        args.only = ["W1"]
        args.system = [*TELEMETRY_COLUMNS]
        args.out = args.out or TELEMETRY_OUT
    if args.only is not None:
        args.workload = [w for w in args.only if w in WORKLOADS]
        args.no_w3 = "W3" not in args.only
        args.no_r1 = "R1" not in args.only
        args.no_w5 = "W5" not in args.only
        args.no_w6 = "W6" not in args.only
    if args.out is None:
        args.out = W5_OUT if args.only == ["W5"] else DEFAULT_OUT
    if args.events is None:
        args.events = max(1_000, int(W5_EVENTS * args.scale))
    if args.events < 20:
        p.error("--events must be at least 20")
    if args.scale <= 0:
        p.error("--scale must be > 0")
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    return args


def _postgres_reachable(dsn: str) -> str | None:
    async def probe() -> None:
        import asyncpg

        conn = await asyncpg.connect(dsn, timeout=5)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def run_child(
    backend: str, system: str, workload: str, args: argparse.Namespace, workdir: Path
) -> tuple[int, dict[str, Any], float]:
    """Run one child; returns (exit status, its JSON result, peak RSS in MiB sampled here)."""
    result_file = workdir / f"result-{backend}-{system}-{workload}.json"
    result_file.unlink(missing_ok=True)  # never read an earlier round's result
    cmd = [
        sys.executable, "-m", "benchmarks.run_one",
        "--backend", backend, "--system", system, "--workload", workload,
        "--scale", str(args.scale), "--postgres-dsn", args.postgres_dsn,
        "--workdir", str(workdir), "--result", str(result_file),
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p
    )
    child = subprocess.Popen(cmd, cwd=ROOT, env=env)
    peak = 0
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    try:
        proc = psutil.Process(child.pid)
        while child.poll() is None:
            with contextlib.suppress(psutil.Error):
                peak = max(peak, proc.memory_info().rss)
            if time.monotonic() > deadline:
                child.kill()
                child.wait()
                return 1, {"error": f"timed out after {CHILD_TIMEOUT_S} s"}, 0.0
            time.sleep(RSS_SAMPLE_S)
    except psutil.NoSuchProcess:
        child.wait()
    status = child.returncode
    try:
        result = json.loads(result_file.read_text())
    except (OSError, ValueError) as exc:
        result = {"error": f"no result from the child (exit {status}): {exc}"}
        status = status or 1
    return status, result, peak / (1024 * 1024)


def merge_rounds(runs: list[list[list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """One record per (workload, backend, system): the median over the rounds that ran."""
    out: list[dict[str, Any]] = []
    for rounds in runs:
        by_key: dict[tuple[str, str, str, str], list[float]] = {}
        for records in rounds:
            for r in records:
                key = (r["workload"], r["backend"], r["system"], r["unit"])
                by_key.setdefault(key, []).append(float(r["value"]))
        for (workload, backend, system, unit), values in by_key.items():
            out.append({"workload": workload, "backend": backend, "system": system,
                        "value": round(statistics.median(values), 3), "unit": unit})
    return out


def run_w3(args: argparse.Namespace, backends: list[str], failures: list[str]
           ) -> list[dict[str, Any]]:
    """W3 in its own process per round; the median of the rounds per backend and system."""
    events = max(1000, int(100_000 * args.scale))
    rounds: dict[tuple[str, str], list[float]] = {}
    for round_no in range(1, args.repeat + 1):
        out = Path(tempfile.mkdtemp(prefix="invariant-w3-")) / "w3.json"
        print(f"[round {round_no}/{args.repeat}][W3 {','.join(backends)} {events} events] ...",
              flush=True)
        env = {**os.environ, "INVARIANT_BENCH_POSTGRES_DSN": args.postgres_dsn}
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.w3", "--events", str(events),
             "--backends", ",".join(backends), "--json", str(out)],
            capture_output=True, text=True, env=env, check=False,
        )
        print(proc.stdout.strip(), flush=True)
        if proc.returncode != 0 or not out.exists():
            failures.append(f"W3: {proc.stderr.strip()[-500:]}")
            return []
        for r in json.loads(out.read_text()):
            rounds.setdefault((r["backend"], r["system"]), []).append(float(r["value"]))
        shutil.rmtree(out.parent, ignore_errors=True)
    return [{"workload": "W3", "backend": b, "system": s,
             "value": round(statistics.median(v), 1), "unit": "events/s"}
            for (b, s), v in sorted(rounds.items())]


def run_w5(args: argparse.Namespace, backends: list[str], failures: list[str]
           ) -> list[dict[str, Any]]:
    """W5 in one round (its own processes per step), whatever ``--repeat`` says: its
    targets are ratios within the round (full store against empty, the whole log against
    its first part), and each is already the median of :data:`W5_RUNS` runs in it (fresh
    catch-ups, pairs of W1/W1c runs), as in the full-size run. Three whole rounds would
    fill every store three times, more than half of ``make bench``'s time."""
    from benchmarks.w5 import SYSTEMS as W5_SYSTEMS

    systems = [s for s in args.system if s in W5_SYSTEMS]
    out = Path(tempfile.mkdtemp(prefix="invariant-w5-")) / "w5.json"
    print(f"[W5 {','.join(backends)} {args.events} events, one round, medians of {W5_RUNS} "
          "runs] ...", flush=True)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.w5", "--events", str(args.events),
         "--backends", ",".join(backends), "--systems", ",".join(systems),
         "--w1-scale", str(0.25 * args.scale), "--postgres-dsn", args.postgres_dsn,
         "--catchup-runs", str(W5_RUNS), "--workload-runs", str(W5_RUNS),
         "--json", str(out)],
        stderr=subprocess.PIPE, text=True, check=False,
    )
    if proc.returncode != 0 or not out.exists():
        failures.append(f"W5: {proc.stderr.strip()[-800:]}")
        return []
    records: list[dict[str, Any]] = json.loads(out.read_text())
    shutil.rmtree(out.parent, ignore_errors=True)
    keys = sorted({(r["backend"], r["system"]) for r in records})
    return records + [{"workload": workload, "backend": b, "system": s, "value": value,
                       "unit": unit} for b, s in keys
                      for workload, value, unit in (("W5-rounds", 1, "rounds"),
                                                    ("W5-runs", W5_RUNS, "runs"))]


def run_r1(args: argparse.Namespace, failures: list[str]) -> list[dict[str, Any]]:
    """R1 once (it already times thousands of messages per broker), in its own process."""
    out = Path(tempfile.mkdtemp(prefix="invariant-r1-")) / "r1.json"
    events = max(500, int(20_000 * args.scale))
    latency = max(100, int(1_000 * args.scale))
    print(f"[R1 relay and delivery, {events} events, {latency} timed deliveries] ...",
          flush=True)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.r1", "--events", str(events),
         "--latency-events", str(latency), "--json", str(out)],
        capture_output=True, text=True, check=False,
    )
    print(proc.stdout.strip(), flush=True)
    if proc.returncode != 0 or not out.exists():
        failures.append(f"R1: {proc.stderr.strip()[-500:]}")
        return []
    records: list[dict[str, Any]] = json.loads(out.read_text())
    shutil.rmtree(out.parent, ignore_errors=True)
    return records


def run_w6(args: argparse.Namespace, backends: list[str], failures: list[str]
           ) -> list[dict[str, Any]]:
    """W6 in its own process per round (shop on SQLite, and on PostgreSQL + NATS in one
    process and as services when the PostgreSQL backend is in the run), 8 and 32
    customers, the ceiling beside it; the median of the rounds per record."""
    modes = [mode for backend, mode in (("sqlite", "sqlite"), ("postgres", "postgres-nats"),
                                        ("postgres", "services"))
             if backend in backends]
    intake, ceiling = max(2.0, W6_INTAKE_S * args.scale), max(1.0, W6_CEILING_S * args.scale)
    rounds: list[list[dict[str, Any]]] = []
    for round_no in range(1, args.repeat + 1):
        out = Path(tempfile.mkdtemp(prefix="invariant-w6-")) / "w6.json"
        print(f"[round {round_no}/{args.repeat}][W6 {','.join(modes)}, {intake:.0f} s intake] "
              "...", flush=True)
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.w6", "--modes", ",".join(modes),
             "--intake", str(intake), "--ceiling", str(ceiling), "--json", str(out),
             "--postgres-dsn", args.postgres_dsn],
            capture_output=True, text=True, check=False,
        )
        print(proc.stdout.strip(), flush=True)
        if proc.returncode != 0:  # the runs that passed still count
            failures.append(f"W6 (round {round_no}): {proc.stderr.strip()[-1500:]}")
        if out.exists():
            rounds.append(json.loads(out.read_text()))
        shutil.rmtree(out.parent, ignore_errors=True)
    return merge_rounds([rounds])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    backends = list(BACKENDS) if args.backend == "all" else [args.backend]
    plan = make_plan(args.scale)
    print(
        f"invariant benchmarks: scale {args.scale}: W1/W1c {len(plan.accounts)} accounts + "
        f"{len(plan.deposits)} deposits ({plan.senders} senders for W1c); W2 {plan.long_stream}"
        f" events, median of {plan.load_runs} cold loads",
        flush=True,
    )
    own_workdir = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="invariant-bench-")) if own_workdir else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    runs: dict[tuple[str, str, str], list[list[dict[str, Any]]]] = {}
    skipped: set[tuple[str, str, str]] = set()
    settings: list[tuple[str, str, str, dict[str, str]]] = []
    notes: list[str] = []
    failures: list[str] = []
    started = time.perf_counter()
    matrix: list[tuple[str, str, str]] = []
    for backend in backends:
        if backend == "postgres":
            problem = _postgres_reachable(args.postgres_dsn)
            if problem is not None:
                notes.append(f"postgres skipped: {args.postgres_dsn} not reachable ({problem})")
                print(notes[-1], flush=True)
                continue
        for system in args.system:
            for workload in args.workload:
                why = NOT_RUN.get((backend, system, workload))
                if why is not None:
                    notes.append(f"{backend} {system} {workload}: {why}")
                else:
                    matrix.append((backend, system, workload))
    try:
        # Rounds, not back-to-back repeats: slow drift of the machine hits every system alike.
        for round_no in range(1, args.repeat + 1):
            for backend, system, workload in matrix:
                key = (backend, system, workload)
                if key in skipped:
                    continue
                t = time.perf_counter()
                label = f"[{backend:<8} {system:<18} {workload:<4}]"
                if args.repeat > 1:
                    label = f"[round {round_no}/{args.repeat}]{label}"
                print(f"{label} ...", end="", flush=True)
                status, result, sampled_mib = run_child(backend, system, workload, args, workdir)
                took = time.perf_counter() - t
                if status == SKIPPED or "skipped" in result:
                    print(f" skipped ({result.get('skipped')})", flush=True)
                    notes.append(f"{backend} {system} {workload}: skipped: {result.get('skipped')}")
                    skipped.add(key)
                    continue
                if status != 0 or "error" in result:
                    print(f" FAILED after {took:.1f} s: {result.get('error')}", flush=True)
                    failures.append(f"{backend} {system} {workload}: {result.get('error')}")
                    continue
                peak = max(sampled_mib, float(result.get("ru_maxrss_mib", 0.0)))
                got = [*result["records"],
                       {"workload": f"{workload}-rss", "backend": backend, "system": system,
                        "value": round(peak, 1), "unit": "MiB"}]
                runs.setdefault(key, []).append(got)
                if round_no == 1:
                    settings.append((backend, system, workload, result["settings"]))
                main_rec = result["records"][0]
                print(f" {main_rec['value']:,.1f} {main_rec['unit']}  ({took:.1f} s)", flush=True)
    finally:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    records = merge_rounds(list(runs.values()))
    reached = [b for b in backends if b != "postgres" or not any(
        n.startswith("postgres skipped") for n in notes)]
    if not args.no_w3:
        records.extend(run_w3(args, reached, failures))
    if not args.no_r1:
        records.extend(run_r1(args, failures))
    if not args.no_w5:
        records.extend(run_w5(args, reached, failures))
    if not args.no_w6:
        records.extend(run_w6(args, reached, failures))

    print()
    print(report.settings_block(settings))
    print()
    print(report.telemetry_table(records) if args.telemetry else report.table(records))
    if report.w5_records(records):
        print()
        print(report.w5_table(records))
    print()
    print(report.targets(records, args.repeat))
    for note in notes:
        print(f"note: {note}")
    for failure in failures:
        print(f"FAILED: {failure}")
    report.write_json(records, args.out)
    print(f"\n{len(records)} records written to {args.out} "
          f"(total {time.perf_counter() - started:.0f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

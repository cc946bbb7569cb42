"""Run one (backend, system, workload) in this fresh process and write its results as JSON.

Used by ``python -m benchmarks``; can be run alone for profiling, e.g.::

    python -m benchmarks.run_one --backend sqlite --system invariant --workload W1 \\
        --scale 0.1 --result /tmp/r.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

from benchmarks.plan import make_plan
from benchmarks.systems import ALL_SYSTEMS, BACKENDS, Unavailable, make_system
from benchmarks.workloads import WORKLOADS, run_workload

DEFAULT_DSN = os.environ.get(
    "INVARIANT_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)
SKIPPED = 3  # exit status of a run that could not happen here (not a failure)


def schema_name(system: str, workload: str) -> str:
    return f"bench_{system}_{workload}_{uuid.uuid4().hex[:8]}".replace("-", "_").lower()


async def _pg_admin(dsn: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def run(args: argparse.Namespace, path: Path) -> dict[str, Any]:
    plan = make_plan(args.scale)
    schema = schema_name(args.system, args.workload)
    if args.backend == "postgres":
        await _pg_admin(args.postgres_dsn, f'CREATE SCHEMA "{schema}"')
    system = make_system(
        args.system, args.backend, path=path, dsn=args.postgres_dsn, schema=schema
    )
    concurrency = plan.senders if args.workload == "W1c" else 1
    try:
        await system.setup(concurrency=concurrency)
        settings = await system.settings()
        start = time.perf_counter()
        records = await run_workload(system, plan, args.workload)
        elapsed = time.perf_counter() - start
    finally:
        try:
            await system.teardown()
        finally:
            if args.backend == "postgres":
                await _pg_admin(args.postgres_dsn, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "records": records,
        "settings": settings,
        "elapsed_s": round(elapsed, 3),
        "ru_maxrss_mib": round(peak_kib / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run_one")
    p.add_argument("--backend", choices=BACKENDS, required=True)
    p.add_argument("--system", choices=ALL_SYSTEMS, required=True)
    p.add_argument("--workload", choices=WORKLOADS, required=True)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--postgres-dsn", default=DEFAULT_DSN)
    p.add_argument("--workdir", default=None, help="directory for SQLite files")
    p.add_argument("--keep", action="store_true", help="keep the SQLite file")
    p.add_argument("--result", default=None, help="write the JSON result here (else stdout)")
    args = p.parse_args(argv)
    own_workdir = args.workdir is None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="invariant-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"{args.system}-{args.workload}.db"
    status = 0
    try:
        result = asyncio.run(run(args, path))
    except Unavailable as exc:
        result, status = {"skipped": str(exc)}, SKIPPED
    except Exception as exc:
        traceback.print_exc()
        result, status = {"error": f"{type(exc).__name__}: {exc}"}, 1
    finally:
        if not args.keep:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            if own_workdir:
                workdir.rmdir()
    text = json.dumps(result, indent=1)
    if args.result:
        Path(args.result).write_text(text)
    else:
        print(text)
    return status


if __name__ == "__main__":
    sys.exit(main())

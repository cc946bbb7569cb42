"""W6: shop end to end under a closed loop of customers, beside the HTTP ceiling.

``python -m benchmarks.w6 [--modes sqlite,postgres-nats,services] [--customers 8,32] [--intake 45]
[--ceiling 10] [--json PATH] [--profile PATH] [--trace-sql PATH]``

For each mode and each number of customers: shop is started as ``make run`` starts it
(``python -m shop``: its own data directory and port, the sample catalog, the local mail
sink) and set up over its admin API (every product's stock high, the payment provider
approving); the customers sign up beforehand (codes read from the mail sink). Then, for
``--intake`` seconds, each customer in a closed loop starts an order, adds one item and
places it. Intake stops; W6 waits until every order is shipped and both its emails
("received", "shipped") have arrived, and reports:

* ``placed``: orders placed per second of intake; ``completed``: orders completed end to
  end (shipped and both emails sent) per second, from the start of intake to the last
  completion; ``shipped-in-intake``: orders shipped per second while orders came in;
* ``backlog``: orders placed but not shipped when intake stopped; ``drain``: seconds from
  then until the last order was complete;
* ``shipped-p50``/``-p99``, ``email-placed-*``, ``email-shipped-*``: milliseconds from the
  place request to the ``OrderShipped`` event's recorded time, and to each email's
  arrival at the sink;
* ``cpu``: shop's CPU (cores) during intake; ``cpu-per-order``: shop's CPU milliseconds per
  order, intake and drain;
* ``http``: HTTP requests per second shop served during intake (``invariant``), and the
  ceiling (``raw``): the same load script against one FastAPI endpoint doing one durable
  SQLite ``INSERT`` per request on the same uvicorn (:mod:`benchmarks.w6_ceiling`).

Every run checks itself and fails loudly (:class:`~benchmarks.w6_outcome.IncorrectOutcome`)
unless every placed order was shipped once, charged once, and got one email of each kind.
``--profile PATH`` samples shop with py-spy during intake and drain (raw stacks, for
``python -m benchmarks.w6_profile``); ``--trace-sql PATH`` runs shop under
:mod:`benchmarks.w6_trace` and writes its SQL statements per order.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from benchmarks.report import W6_METRICS, w6_name
from benchmarks.w6_ceiling import count_rows
from benchmarks.w6_load import (
    Headers,
    Http,
    Intake,
    LoadError,
    ceiling_loop,
    http_client,
    order_loop,
)
from benchmarks.w6_outcome import Figures, IncorrectOutcome, check, figures, hops
from benchmarks.w6_services import ServicesSet
from benchmarks.w6_shop import (
    MODES as ONE_PROCESS,
)
from benchmarks.w6_shop import (
    PRODUCTS,
    ROOT,
    RunningShop,
    ShopFailed,
    free_port,
    prepare,
    provider_counts,
    sign_up,
    stop,
)
from benchmarks.w6_trace import SqlTrace

DSN = os.environ.get("INVARIANT_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
NATS_URL = os.environ.get("INVARIANT_BENCH_NATS_URL", "nats://127.0.0.1:4222")
DRAIN_POLL_S = 0.25
SETTLE_S = 1.0
"""After the last completion: time for a late duplicate (an email sent twice, say) to show."""
MODES = {**ONE_PROCESS, "services": ServicesSet}
"""``--modes``: one process (:mod:`benchmarks.w6_shop`) or the services mode
(:mod:`benchmarks.w6_services`)."""
Record = dict[str, Any]


# -- one run ---------------------------------------------------------------------------------

async def run_shop(mode: str, customers: int, args: argparse.Namespace, workdir: Path
                   ) -> list[Record]:
    """One W6 run: start shop, sign customers up, intake, drain, check, figures."""
    deployment = MODES[mode](args.postgres_dsn, args.nats_url)
    problem = await deployment.problem()
    if problem is not None:
        print(f"W6 {mode}: skipped: {problem}", flush=True)
        return []
    trace = SqlTrace(_suffixed(args.trace_sql, mode, customers)) if args.trace_sql else None
    command = None if trace is None else trace.command()
    async with deployment.running(workdir, command=command) as shop, \
            http_client(shop.base_url) as http:
        await prepare(http, shop)
        tokens = await sign_up(http, shop, customers)
        async with _profiled(args.profile, shop, mode, customers):
            intake, cpu = await _order_and_drain(shop, http, tokens, args, trace)
        await asyncio.sleep(SETTLE_S)
        events = await shop.events.order_events()
        relayed = await shop.events.relayed()
        mails = shop.mail.order_mails()
        charges, refunds = await provider_counts(http, shop)
    check(intake, events, mails, charges=charges, refunds=refunds)
    result = figures(intake, events, mails)
    if trace is not None:
        trace.report(result.orders)
    used = Cpu.between(*cpu, intake.seconds, result.orders)
    _print(mode, customers, result, used, intake)
    print("   medians of each hop: " + ", ".join(
        f"{label} {seconds:.2f} s" for label, seconds in hops(events, relayed, mails).items()),
          flush=True)
    return _records(mode, customers, result, used, intake.requests / intake.seconds)


CpuTimes = tuple[float, float]
"""User and system CPU seconds."""


async def _order_and_drain(shop: RunningShop, http: Http, tokens: list[Headers],
                           args: argparse.Namespace, trace: SqlTrace | None
                           ) -> tuple[Intake, tuple[CpuTimes, CpuTimes, CpuTimes]]:
    """The intake, then the drain; shop's CPU times before, at the end of the intake and
    after the drain (and the trace's marks around both)."""
    if trace is not None:
        await trace.mark(shop.processes[0])
    before = _cpu_times(shop)
    intake = await order_loop(http, tokens, PRODUCTS, args.intake)
    in_intake = _cpu_times(shop)
    await _drain(shop, intake, args.drain_timeout)
    after = _cpu_times(shop)
    if trace is not None:
        await trace.mark(shop.processes[0])
    return intake, (before, in_intake, after)


@dataclass(frozen=True, slots=True)
class Cpu:
    """shop's CPU in a run: cores used during the intake; milliseconds per order over
    intake and drain, and the share of those spent in the kernel (SQLite's writes and
    fsyncs, sockets)."""

    cores: float
    per_order_ms: float
    system_share: float

    @classmethod
    def between(cls, before: CpuTimes, in_intake: CpuTimes, after: CpuTimes, intake_s: float,
                orders: int) -> Cpu:
        """From (user, system) seconds before the intake, at its end, and after the drain."""
        used = sum(after) - sum(before)
        return cls(cores=(sum(in_intake) - sum(before)) / intake_s,
                   per_order_ms=1000 * used / orders,
                   system_share=(after[1] - before[1]) / used if used else 0.0)


def _cpu_times(shop: RunningShop) -> CpuTimes:
    """User and system CPU seconds of shop's processes so far."""
    user = system = 0.0
    for pid in shop.processes:
        times = psutil.Process(pid).cpu_times()
        user, system = user + times.user, system + times.system
    return user, system


async def _drain(shop: RunningShop, intake: Intake, limit_s: float) -> None:
    """Wait until every placed order is shipped and both its emails arrived."""
    orders = len(intake.placed)
    deadline = time.monotonic() + limit_s
    shipped = emailed = received = 0
    while time.monotonic() < deadline:
        cancelled = await shop.events.cancellations()
        if cancelled:  # never shipped: no use waiting
            reasons = ", ".join(f"{n} x {why!r}" for why, n in Counter(cancelled).items())
            raise IncorrectOutcome(f"{len(cancelled)} of {orders} orders were cancelled while "
                                   f"W6 waited for them to ship: {reasons}")
        shipped = await shop.events.shipped()
        mails = shop.mail.order_mails()
        received = sum(len(k.get("order_placed", ())) for k in mails.values())
        emailed = sum(len(k.get("order_shipped", ())) for k in mails.values())
        if min(shipped, received, emailed) >= orders:
            return
        await asyncio.sleep(DRAIN_POLL_S)
    raise ShopFailed(f"{orders} orders placed; after {limit_s} s of drain {shipped} shipped, "
                     f"{received} 'received' and {emailed} 'shipped' emails")


@asynccontextmanager
async def _profiled(path: Path | None, shop: RunningShop, mode: str, customers: int
                    ) -> AsyncIterator[None]:
    """py-spy sampling shop's process (raw stacks, idle ones too) while the block runs."""
    if path is None:
        yield
        return
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
        "py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy (pip install -e '.[bench]')")
    out = _suffixed(path, mode, customers)
    out.parent.mkdir(parents=True, exist_ok=True)
    sampler = await asyncio.create_subprocess_exec(
        spy, "record", "--pid", str(shop.processes[0]), "--format", "raw", "--idle",
        "--threads", "--rate", "100", "--output", str(out),
        stdout=asyncio.subprocess.DEVNULL)
    await asyncio.sleep(1.0)  # attached before the intake starts
    try:
        yield
    finally:
        await stop(sampler)
    if not out.exists():
        raise ShopFailed(f"py-spy wrote no profile (it exited with {sampler.returncode}); it "
                         "needs to trace shop's process: run as root, or allow it with "
                         "sysctl kernel.yama.ptrace_scope=0")
    print(f"W6 {mode} {customers} customers: profile written to {out}", flush=True)


def _suffixed(path: Path, mode: str, customers: int) -> Path:
    return path.with_name(f"{path.stem}-{mode}-{customers}c{path.suffix}")


def _records(mode: str, customers: int, f: Figures, cpu: Cpu, requests_per_s: float
             ) -> list[Record]:
    values: dict[str, tuple[float, str]] = {
        "placed": (f.placed_per_s, "orders/s"),
        "completed": (f.completed_per_s, "orders/s"),
        "shipped-in-intake": (f.shipped_during_intake_per_s, "orders/s"),
        "backlog": (f.backlog, "orders"),
        "drain": (f.drain_s, "s"),
        "shipped-p50": (f.shipped_p50_ms, "ms"),
        "shipped-p99": (f.shipped_p99_ms, "ms"),
        "email-placed-p50": (f.email_p50_ms["order_placed"], "ms"),
        "email-placed-p99": (f.email_p99_ms["order_placed"], "ms"),
        "email-shipped-p50": (f.email_p50_ms["order_shipped"], "ms"),
        "email-shipped-p99": (f.email_p99_ms["order_shipped"], "ms"),
        "cpu": (cpu.cores, "cores"),
        "cpu-per-order": (cpu.per_order_ms, "ms"),
        "http": (requests_per_s, "requests/s"),
    }
    return [{"workload": w6_name(customers, metric), "backend": mode, "system": "invariant",
             "value": round(values[metric][0], 3), "unit": values[metric][1]}
            for metric in W6_METRICS]


def _print(mode: str, customers: int, f: Figures, cpu: Cpu, intake: Intake) -> None:
    def s(ms: float) -> str:
        return f"{ms / 1000:.2f} s"

    print(f"W6 {mode} {customers} customers, {f.intake_s:.1f} s intake: {f.orders} orders; "
          f"placed {f.placed_per_s:.1f}/s, completed {f.completed_per_s:.1f}/s, shipped "
          f"during intake {f.shipped_during_intake_per_s:.1f}/s; backlog {f.backlog} at the "
          f"end of intake, drained in {f.drain_s:.1f} s\n"
          f"   place → shipped p50 {s(f.shipped_p50_ms)} p99 {s(f.shipped_p99_ms)}; → "
          f"'received' email p50 {s(f.email_p50_ms['order_placed'])} p99 "
          f"{s(f.email_p99_ms['order_placed'])}; → 'shipped' email p50 "
          f"{s(f.email_p50_ms['order_shipped'])} p99 {s(f.email_p99_ms['order_shipped'])}\n"
          f"   shop CPU {cpu.cores:.2f} cores during intake, {cpu.per_order_ms:.1f} ms per "
          f"order ({100 * cpu.system_share:.0f}% in the kernel); HTTP "
          f"{intake.requests / intake.seconds:.0f} requests/s", flush=True)


# -- the ceiling ------------------------------------------------------------------------------

async def run_ceiling(clients: int, seconds: float, workdir: Path) -> list[Record]:
    """The load script against :mod:`benchmarks.w6_ceiling` (its own process)."""
    port, database = free_port(), workdir / f"ceiling-{clients}.db"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.w6_ceiling", "--port", str(port), "--database",
        str(database), cwd=ROOT)
    try:
        async with http_client(f"http://127.0.0.1:{port}") as http:
            await _until_healthy(http, process)
            intake = await ceiling_loop(http, clients, seconds)
    finally:
        await stop(process)
    rows = count_rows(database)
    if rows != intake.requests:
        raise ShopFailed(f"the ceiling app answered 201 {intake.requests} times but stored "
                         f"{rows} rows")
    rate = intake.requests / intake.seconds
    print(f"W6 ceiling {clients} clients: {rate:,.0f} requests/s (one durable SQLite INSERT "
          "each)", flush=True)
    return [{"workload": w6_name(clients, "http"), "backend": "sqlite", "system": "raw",
             "value": round(rate, 3), "unit": "requests/s"}]


async def _until_healthy(http: Http, process: asyncio.subprocess.Process) -> None:
    for _ in range(300):
        if process.returncode is not None:
            raise ShopFailed(f"the ceiling app exited with {process.returncode}")
        try:
            await http.call("GET", "/health", 200)
            return
        except LoadError:
            await asyncio.sleep(0.1)
    raise ShopFailed("the ceiling app did not start within 30 s")


# -- the command line -------------------------------------------------------------------------

def _ints(text: str) -> list[int]:
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 8,32, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive numbers like 8,32, got {text!r}")
    return values


def _modes(text: str) -> list[str]:
    modes = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise argparse.ArgumentTypeError(f"unknown mode(s) {unknown}; choose from "
                                         f"{', '.join(MODES)}")
    return modes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.w6",
                                description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--modes", type=_modes, default=["sqlite"],
                   help=f"comma-separated, from {', '.join(MODES)} (default: sqlite)")
    p.add_argument("--customers", type=_ints, default=[8, 32],
                   help="comma-separated numbers of customers (default: 8,32)")
    p.add_argument("--intake", type=float, default=45.0,
                   help="seconds during which customers place orders (default: 45)")
    p.add_argument("--ceiling", type=float, default=10.0,
                   help="seconds of the ceiling run per number of customers; 0: none")
    p.add_argument("--drain-timeout", type=float, default=600.0,
                   help="seconds to wait for the backlog to drain before failing")
    p.add_argument("--json", type=Path, help="write the records to this file")
    p.add_argument("--profile", type=Path, help="py-spy raw stacks, one file per run")
    p.add_argument("--trace-sql", type=Path,
                   help="count SQLite statements per order, one JSON file per run")
    p.add_argument("--workdir", type=Path,
                   help="keep each run's data (shop's database, mail, log) here "
                        "(default: a temporary directory, removed)")
    p.add_argument("--postgres-dsn", default=DSN)
    p.add_argument("--nats-url", default=NATS_URL)
    args = p.parse_args(argv)
    if args.intake <= 0 or args.drain_timeout <= 0:
        p.error("--intake and --drain-timeout must be > 0")
    if args.trace_sql and args.modes != ["sqlite"]:
        p.error("--trace-sql counts SQLite statements: use it with --modes sqlite")
    return args


async def run(args: argparse.Namespace) -> tuple[list[Record], list[str]]:
    """Every run the arguments ask for: the records of those that passed, and what failed
    (a failed run does not stop the others)."""
    records: list[Record] = []
    failures: list[str] = []

    async def attempt(what: str, run: Coroutine[Any, Any, list[Record]]) -> None:
        try:
            records.extend(await run)
        except (IncorrectOutcome, ShopFailed, LoadError) as exc:
            failures.append(f"{what}: {type(exc).__name__}: {exc}")
            print(f"W6 {what}: FAILED: {type(exc).__name__}: {exc}", flush=True)

    with contextlib.ExitStack() as stack:
        if args.workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(
                prefix="invariant-w6-")))
        else:
            workdir = args.workdir
            workdir.mkdir(parents=True, exist_ok=True)
        for customers in args.customers:
            for mode in args.modes:
                await attempt(f"{mode} {customers} customers",
                              run_shop(mode, customers, args, workdir))
            if args.ceiling > 0:
                await attempt(f"ceiling {customers} clients",
                              run_ceiling(customers, args.ceiling, workdir))
    return records, failures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    records, failures = asyncio.run(run(args))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(records, indent=1) + "\n")
    for failure in failures:
        print(f"FAILED: W6 {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""W6's services mode: shop as ``make run-services`` runs it, every bounded context its own
process on PostgreSQL (a role and schema each) and NATS JetStream, ordering and
notifications twice, the gateway in front, measured beside one process.

A set of its own per run, isolated from any other on the same servers: a unique role and
schema prefix and NATS stream (``w6<tag>_`` and ``w6<tag>``), free ports, its data (mail
sink, logs) in W6's work directory; its roles, schemas, stream and Redis keys are removed
afterwards. The set is started by :class:`shop.deployment.supervisor.Supervisor` in a
process of its own (``python -m benchmarks.w6_services PLAN READY``) so that the load
script's event loop is not shared with the supervisor's mail sink, and so that the sink's
CPU is counted with shop's, as the single process's own sink is.

W6 reads the same facts as for one process: the order events from the ordering,
inventory, payments and shipping schemas (each context's own), the emails from the
supervisor's sink. Its CPU is the sum of every process of the set (the supervisor with
its sink, each service, the gateway); while the set runs, each process's CPU is sampled
once a second, and the busiest processes are printed when it stops (where the set's time
goes, and whether one process is saturated). ``--profile`` samples ordering's first
instance (:data:`PROFILED`); ``--trace-sql`` counts SQLite statements and does not apply.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict, replace
from pathlib import Path

import asyncpg
import psutil

from benchmarks.w6_facts import MailSink, PostgresEventLog, Relayed, StoredEvent
from benchmarks.w6_shop import (
    CRASH_MARKS,
    ROOT,
    START_TIMEOUT_S,
    Deployment,
    PostgresNatsOneProcess,
    RunningShop,
    ShopFailed,
    clean_environment,
    stop,
)
from shop.deployment.plan import Plan
from shop.deployment.ports import free_run
from shop.deployment.removal import remove

REDIS_URL = os.environ.get("INVARIANT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
POOL = int(os.environ.get("INVARIANT_BENCH_SERVICES_POOL", "2"))
"""Each service's PostgreSQL pool (``INVARIANT_POSTGRES_POOL``). The default, 20, lets
the set's twelve services ask for more than a default PostgreSQL server's 100 connections
once intake fills their pools (each projection's lease holds one more): with 2, the
set holds about 50 at most, and the server is shared with other work."""
SETTINGS = {"SHOP_SAMPLE_CATALOG": "on", "SHOP_ADMIN_EMAIL": "admin@shop.local"}
"""What every service of the set gets beside the plan's own settings (as the single
process gets them from W6)."""
READY_FILE = "ready.json"
START_ATTEMPTS = 3
RETRIABLE = ("connection slots are reserved", "too many clients already", "is in use by")
"""Why a set may fail to start on a machine shared with other work: PostgreSQL has no
connection slot left, or another program took one of the set's ports after W6 chose it."""
SUPERVISOR = "supervisor"
PROFILED = "ordering"
"""The process ``--profile`` samples: the first instance of ordering, which answers every
order request the gateway passes on (the busiest with fulfilment in W6's runs)."""
SAMPLE_EVERY_S = 1.0
SHOWN = 20
"""Processes printed, busiest first (all of the set)."""
EVENT_SCHEMAS = ("ordering", "inventory", "payments", "shipping")
"""The contexts whose event stores hold an order's streams (W6's categories)."""


def plan_for(dsn: str, nats_url: str, data: Path, *, redis_url: str = REDIS_URL,
             tag: str | None = None) -> Plan:
    """An isolated set: its own prefix and stream, free ports, ``data`` for its files."""
    tag = tag or uuid.uuid4().hex[:8]
    services = len(Plan(admin_dsn=dsn, broker_url=nats_url, channel="x", data=data,
                        secret="", admin_password="").services)
    return Plan(admin_dsn=dsn, broker_url=nats_url, channel=f"w6{tag}", data=data,
                secret=secrets.token_urlsafe(48), admin_password=secrets.token_urlsafe(16),
                gateway_port=free_ports(1), smtp_port=free_ports(1),
                first_port=free_ports(services), prefix=f"w6{tag}_", redis_url=redis_url,
                pool=POOL, passed_on=dict(SETTINGS))


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free ports (see :mod:`shop.deployment.ports`)."""
    try:
        return free_run(count)
    except OSError as exc:
        raise ShopFailed(str(exc)) from exc


def plan_to_json(plan: Plan) -> str:
    fields = asdict(plan)
    return json.dumps({**fields, "data": str(plan.data)})


def plan_from_json(text: str) -> Plan:
    fields = json.loads(text)
    return Plan(**{**fields, "data": Path(fields["data"])})


class ServicesEventLog:
    """The order streams where the set keeps them: one schema per context, read as the
    admin account over connections of W6's own."""

    def __init__(self, dsn: str, plan: Plan) -> None:
        self.logs = {context: PostgresEventLog(dsn, plan.owner(context).schema)
                     for context in EVENT_SCHEMAS}

    async def shipped(self) -> int:
        return await self.logs["ordering"].shipped()

    async def cancellations(self) -> list[str]:
        return await self.logs["ordering"].cancellations()

    async def order_events(self) -> list[StoredEvent]:
        found = [e for log in self.logs.values() for e in await log.order_events()]
        return sorted(found, key=lambda e: e.recorded)

    async def relayed(self) -> list[Relayed]:
        return []  # NATS keeps no publish times W6 could read

    async def close(self) -> None:
        for log in self.logs.values():
            await log.close()


class ServicesSet(Deployment):
    """The services mode (``make run-services``), a set of its own per run."""

    name = "services"

    def __init__(self, dsn: str, nats_url: str, *, redis_url: str = REDIS_URL) -> None:
        self.dsn = dsn
        self.nats_url = nats_url
        self.redis_url = redis_url

    async def problem(self) -> str | None:
        from redis.asyncio import Redis

        unreachable = await PostgresNatsOneProcess(self.dsn, self.nats_url).problem()
        if unreachable is not None:
            return unreachable
        conn = await asyncpg.connect(self.dsn, timeout=5)
        try:
            if not await conn.fetchval("SELECT rolcreaterole OR rolsuper FROM pg_roles "
                                       "WHERE rolname = current_user"):
                return (f"the account of {self.dsn} may not create roles (the services "
                        "mode gives each context its own): use --postgres-dsn")
        finally:
            await conn.close()
        client = Redis.from_url(self.redis_url, socket_connect_timeout=2)
        try:
            await client.ping()
        except Exception as exc:  # redis raises its own errors, not OSError
            return (f"Redis at {self.redis_url} not reachable ({type(exc).__name__}: {exc}); "
                    "set INVARIANT_BENCH_REDIS_URL")
        finally:
            await client.aclose()
        return None

    @contextlib.asynccontextmanager
    async def running(self, workdir: Path, *, command: list[str] | None = None
                      ) -> AsyncIterator[RunningShop]:
        if command is not None:
            raise ShopFailed("the services mode runs shop's own command only (no --trace-sql)")
        data = workdir / f"shop-services-{uuid.uuid4().hex[:6]}"
        data.mkdir(parents=True)
        plan = plan_for(self.dsn, self.nats_url, data, redis_url=self.redis_url)
        log = data / "supervisor.log"
        env = clean_environment() | {
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                          if p)}
        events = ServicesEventLog(self.dsn, plan)
        try:
            plan, process, pids = await _started(plan, env, log)
            try:
                async with sampled(pids) as usage:
                    yield RunningShop(f"http://{plan.host}:{plan.gateway_port}",
                                      plan.admin_password, MailSink(plan.data / "mail"), events,
                                      _profiled_first(pids), log)
                print(usage.report(), flush=True)
                gone = [name for name, pid in pids.items() if not psutil.pid_exists(pid)]
                if gone:
                    raise ShopFailed(f"{', '.join(gone)} stopped during the run (logs in "
                                     f"{data / 'logs'})")
            finally:
                await stop(process)
            logs = [log, *sorted((data / "logs").glob("*.log"))]
            crashed = crash_in(logs)
            if crashed:
                raise ShopFailed(crashed)
            if retried(logs):
                print(f"   the set's workers retried {retried(logs)} failures (see "
                      f"{data / 'logs'})", flush=True)
        finally:
            await events.close()
            await remove(plan)


def _profiled_first(pids: Mapping[str, int]) -> tuple[int, ...]:
    """Every pid, :data:`PROFILED` first (``W6 --profile`` samples the first process)."""
    return (pids[PROFILED], *(pid for name, pid in pids.items() if name != PROFILED))


async def _started(plan: Plan, env: Mapping[str, str], log: Path
                   ) -> tuple[Plan, asyncio.subprocess.Process, dict[str, int]]:
    """The plan that started, the supervisor's process and every process's pid once all
    are ready. A set that could not start for a reason of :data:`RETRIABLE` is started
    again on other ports, up to :data:`START_ATTEMPTS` times; the logs of each attempt are
    kept beside (``logs-1``, ``supervisor-1.log``)."""
    data = plan.data
    for attempt in range(1, START_ATTEMPTS + 1):
        (data / "plan.json").write_text(plan_to_json(plan))
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "benchmarks.w6_services", str(data / "plan.json"),
                str(data / READY_FILE), cwd=ROOT, env=dict(env), stdout=out,
                stderr=asyncio.subprocess.STDOUT)
        try:
            pids = await _until_ready(data / READY_FILE, process, log)
        except ShopFailed as failed:
            await stop(process)
            why = next((r for r in RETRIABLE if r in str(failed)), None)
            if attempt == START_ATTEMPTS or why is None:
                raise
            print(f"   the set could not start ({why!r}); attempt {attempt + 1} of "
                  f"{START_ATTEMPTS} on other ports", flush=True)
            _set_aside(data, attempt)
            plan = replace(plan, gateway_port=free_ports(1), smtp_port=free_ports(1),
                           first_port=free_ports(len(plan.services)))
            await asyncio.sleep(5.0)
            continue
        return plan, process, {**pids, SUPERVISOR: process.pid}
    raise AssertionError("unreachable")


def _set_aside(data: Path, attempt: int) -> None:
    if (data / "logs").exists():
        (data / "logs").rename(data / f"logs-{attempt}")
    (data / "supervisor.log").rename(data / f"supervisor-{attempt}.log")


async def _until_ready(ready: Path, process: asyncio.subprocess.Process, log: Path
                       ) -> dict[str, int]:
    """The pid of each service once every one is ready (written by the supervisor)."""
    deadline = time.monotonic() + START_TIMEOUT_S + 90.0  # 13 processes on 2 cores
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise ShopFailed(f"the services' supervisor exited with {process.returncode}: "
                             f"{_tail(log)}")
        pids = _pids(ready)
        if pids is not None:
            return pids
        await asyncio.sleep(0.2)
    raise ShopFailed(f"the services were not all ready in time (see {log})")


def _pids(ready: Path) -> dict[str, int] | None:
    if not ready.exists():
        return None
    pids: dict[str, int] = json.loads(ready.read_text())
    return pids


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"


RETRIED = ("retrying in", "readiness: ")
"""The line before the traceback of a failure a worker retries, or of a readiness probe
that failed (e.g. PostgreSQL out of connection slots for a moment): counted and shown,
not a crash."""
CHAINED = ("The above exception was the direct cause", "During handling of the above")
"""The line before the second traceback of a chained exception (one failure, not two)."""


def crash_in(logs: list[Path]) -> str | None:
    """The first failure a log shows that its worker did not retry."""
    for log in logs:
        text = log.read_text(errors="replace") if log.exists() else ""
        for mark in CRASH_MARKS:
            at = text.find(mark)
            while at >= 0:
                before = [line for line in text[:at].splitlines() if line.strip()]
                header = before[-1] if before else ""
                if not any(r in header for r in RETRIED) and not header.startswith(CHAINED):
                    return f"{log.name} logged a failure: {text[max(0, at - 200):at + 1500]}"
                at = text.find(mark, at + 1)
    return None


def retried(logs: list[Path]) -> int:
    """How many failures the set's workers logged and retried."""
    return sum(log.read_text(errors="replace").count(r) for log in logs if log.exists()
               for r in RETRIED)


# -- where the set's CPU goes --------------------------------------------------------------

class Usage:
    """Each process's main thread (its event loop): CPU seconds, and seconds spent waiting
    for a CPU (runnable, not running: the run queue, ``/proc/PID/schedstat``), sampled every
    :data:`SAMPLE_EVERY_S`."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self.samples: list[tuple[float, dict[str, tuple[float, float]]]] = []

    def sample(self) -> None:
        now: dict[str, tuple[float, float]] = {}
        for name, pid in self.pids.items():
            with contextlib.suppress(OSError, ValueError):
                now[name] = _schedstat(pid)
        self.samples.append((time.monotonic(), now))

    def report(self) -> str:
        """The busiest processes: CPU seconds over the run, the most cores each used in a
        5-second window (1.0: one core, all one Python process can use), and the set's
        time waiting for a CPU."""
        if len(self.samples) < 2:
            return "   (too short to sample the set's CPU)"
        (t0, first), (t1, last) = self.samples[0], self.samples[-1]
        names = [n for n in first if n in last]
        used = {n: last[n][0] - first[n][0] for n in names}
        waited = sum(last[n][1] - first[n][1] for n in names)
        peak: dict[str, float] = dict.fromkeys(names, 0.0)
        for (ta, a), (tb, b) in zip(self.samples, self.samples[5:], strict=False):
            for name in names:
                if name in a and name in b:
                    peak[name] = max(peak[name], (b[name][0] - a[name][0]) / (tb - ta))
        total = sum(used.values())
        busiest = sorted(names, key=used.__getitem__, reverse=True)
        shown = ", ".join(f"{n} {used[n]:.1f} s (peak {peak[n]:.2f} cores)"
                          for n in busiest[:SHOWN])
        return (f"   the set's CPU over {t1 - t0:.0f} s: {total:.1f} s in {len(names)} "
                f"processes, and {waited:.1f} s runnable but waiting for a CPU; busiest: "
                f"{shown}")


def _schedstat(pid: int) -> tuple[float, float]:
    """Seconds on a CPU and seconds waiting in the run queue, so far (main thread)."""
    running, waiting, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
    return int(running) / 1e9, int(waiting) / 1e9


@contextlib.asynccontextmanager
async def sampled(pids: Mapping[str, int]) -> AsyncIterator[Usage]:
    usage = Usage(pids)

    async def every_second() -> None:
        while True:
            usage.sample()
            await asyncio.sleep(SAMPLE_EVERY_S)

    task = asyncio.create_task(every_second())
    try:
        yield usage
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        usage.sample()


# -- the supervisor's process ---------------------------------------------------------------

async def supervise(plan: Plan, ready: Path) -> None:
    """Start the set, write each process's pid to ``ready`` once all are ready, and keep
    it until SIGINT or SIGTERM (then stop every process)."""
    from shop.deployment.supervisor import Supervisor

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    async with Supervisor(plan) as running:
        pids = {name: p.pid for name, p in running.processes.items()}
        _write_pids(ready, pids)
        print(f"ready: {pids}", flush=True)
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 1.0)
            for name, status in running.exited().items():
                print(f"{name} exited with status {status}: {running.tail(name)}",
                      flush=True)
                stopping.set()


def _write_pids(ready: Path, pids: Mapping[str, int]) -> None:
    """Whole or not at all (W6 reads it as soon as it exists)."""
    partial = ready.with_suffix(".part")
    partial.write_text(json.dumps(pids))
    partial.rename(ready)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.w6_services",
                                description="Run one W6 set of services until SIGINT.")
    p.add_argument("plan", type=Path, help="the plan, as written by W6")
    p.add_argument("ready", type=Path, help="where to write the pids once all are ready")
    args = p.parse_args(argv)
    asyncio.run(supervise(plan_from_json(args.plan.read_text()), args.ready))
    return 0


if __name__ == "__main__":
    sys.exit(main())

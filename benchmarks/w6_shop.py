"""shop as W6 runs it: a real ``python -m shop`` process per run (the command of
``make run``), on a free port and a data directory of its own, set up over its admin API
(payment provider approving, stock high), with its customers signed up beforehand over the
public API (each verification code read from the mail sink).

A *deployment* says how shop runs: :data:`MODES` maps each one-process ``--mode`` to one
(SQLite with the broker in the same file; PostgreSQL with NATS JetStream). The services
mode (:mod:`benchmarks.w6_services`) is a deployment whose :meth:`Deployment.running`
starts every context's process and whose :attr:`RunningShop.processes` lists them all (W6
sums their CPU), with the same admin and public API in front (the gateway).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from benchmarks.w6_facts import EventLog, MailSink, PostgresEventLog, SQLiteEventLog
from benchmarks.w6_load import Headers, Http, LoadError, http_client
from shop.inventory.sample import SAMPLE_STOCK

ROOT = Path(__file__).resolve().parent.parent
ADMIN_EMAIL = "admin@shop.local"
PASSWORD = "w6 correct horse battery staple"
STOCK = 1_000_000
"""Units on hand of every product: no order of a bounded run is refused for stock."""
PRODUCTS = tuple(SAMPLE_STOCK)
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0
SIGN_UP_AT_ONCE = 4
"""Sign-ups in flight at once (each hashes a password with argon2id in shop)."""
CODE_SUBJECT = "Your shop verification code"
WELCOME_SUBJECT = "Welcome to shop"
CRASH_MARKS = ("Traceback (most recent call last)", "worker stopped")


class ShopFailed(RuntimeError):
    """shop did not start, crashed, or logged a worker's failure (its log says more)."""


@dataclass(frozen=True, slots=True)
class RunningShop:
    """A shop serving W6: where to reach it, where its emails land, how to read its
    event store, and its processes (for their CPU time)."""

    base_url: str
    admin_password: str
    mail: MailSink
    events: EventLog
    processes: tuple[int, ...]
    log: Path


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_environment() -> dict[str, str]:
    """This process's environment without any ``SHOP_*`` or ``INVARIANT_*`` setting: every
    run measures shop as W6 configures it. A setting to measure is passed on with the
    prefix ``W6_``: ``W6_SHOP_MAX_IN_FLIGHT=4`` runs shop with ``SHOP_MAX_IN_FLIGHT=4``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SHOP_", "INVARIANT_", "W6_SHOP_", "W6_INVARIANT_"))}
    return env | {k.removeprefix("W6_"): v for k, v in os.environ.items()
                  if k.startswith(("W6_SHOP_", "W6_INVARIANT_"))}


class Deployment:
    """How shop runs for one W6 run: one process, configured by :meth:`settings`."""

    name = ""

    async def problem(self) -> str | None:
        """Why this deployment cannot run here, or None."""
        return None

    async def settings(self) -> dict[str, str]:
        """The ``INVARIANT_*`` settings (creating what they name, e.g. a schema)."""
        raise NotImplementedError

    def event_log(self, data: Path) -> EventLog:
        """A reader of the event store these settings name."""
        raise NotImplementedError

    async def cleanup(self) -> None:
        """Remove what :meth:`settings` created on shared servers."""

    @contextlib.asynccontextmanager
    async def running(self, workdir: Path, *, command: list[str] | None = None
                      ) -> AsyncIterator[RunningShop]:
        """shop serving in a process of its own until the block ends (stopped with
        SIGINT, as Ctrl+C would); ``command`` replaces ``python -m shop`` (e.g. by the
        statement-counting wrapper)."""
        data = workdir / f"shop-{self.name}-{uuid.uuid4().hex[:6]}"
        data.mkdir(parents=True)
        port, admin_password = free_port(), secrets.token_urlsafe(16)
        env = clean_environment() | await self.settings() | {
            "SHOP_DATA": str(data), "SHOP_PORT": str(port), "SHOP_SMTP_PORT": str(free_port()),
            "SHOP_MAIL_SINK": "on", "SHOP_SAMPLE_CATALOG": "on",
            "SHOP_SECRET": secrets.token_urlsafe(48), "SHOP_ADMIN_PASSWORD": admin_password,
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                          if p)}
        log = data / "shop.log"
        events = self.event_log(data)
        try:
            with log.open("wb") as out:
                process = await asyncio.create_subprocess_exec(
                    *(command or [sys.executable, "-m", "shop"]), cwd=ROOT, env=env,
                    stdout=out, stderr=asyncio.subprocess.STDOUT)
            try:
                base_url = f"http://127.0.0.1:{port}"
                await _wait_until_serving(base_url, process, log)
                yield RunningShop(base_url, admin_password, MailSink(data / "mail"), events,
                                  (process.pid,), log)
            finally:
                await stop(process)
            crashed = _crash_in(log)
            if crashed:
                raise ShopFailed(f"shop logged a failure (see {log}): {crashed}")
        finally:
            await events.close()
            await self.cleanup()


async def _wait_until_serving(base_url: str, process: asyncio.subprocess.Process, log: Path
                              ) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    async with http_client(base_url, request_limit_s=5) as http:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise ShopFailed(f"shop exited with {process.returncode} while starting: "
                                 f"{_tail(log)}")
            with contextlib.suppress(LoadError):
                await http.call("GET", "/health", 200)
                return
            await asyncio.sleep(0.1)
    raise ShopFailed(f"shop did not answer /health within {START_TIMEOUT_S} s: {_tail(log)}")


async def stop(process: asyncio.subprocess.Process, *, limit_s: float = STOP_TIMEOUT_S
               ) -> None:
    """Stop a child as Ctrl+C would (SIGINT); killed if it has not exited after
    ``limit_s``."""
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), limit_s)
        except TimeoutError:
            process.kill()
            await process.wait()


def _tail(log: Path, chars: int = 2000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


def _crash_in(log: Path) -> str | None:
    text = log.read_text(errors="replace")
    for mark in CRASH_MARKS:
        at = text.find(mark)
        if at >= 0:
            return text[max(0, at - 200):at + 1500]
    return None


class SQLiteOneProcess(Deployment):
    """``make run``'s set-up: one process, SQLite, the durable broker in the same file."""

    name = "sqlite"

    async def settings(self) -> dict[str, str]:
        return {"INVARIANT_STORE": "sqlite", "INVARIANT_BROKER": "sql"}

    def event_log(self, data: Path) -> EventLog:
        return SQLiteEventLog(data / "shop.db")


class PostgresNatsOneProcess(Deployment):
    """One process on PostgreSQL (a fresh schema) and NATS JetStream (a stream of its own)."""

    name = "postgres-nats"

    def __init__(self, dsn: str, nats_url: str) -> None:
        self.dsn = dsn
        self.nats_url = nats_url
        tag = uuid.uuid4().hex[:10]
        self.schema = f"w6_{tag}"
        self.channel = f"w6_{tag}"

    async def problem(self) -> str | None:
        import nats

        try:
            conn = await asyncpg.connect(self.dsn, timeout=5)
            await conn.close()
        except (OSError, asyncpg.PostgresError) as exc:
            return f"PostgreSQL at {self.dsn} not reachable ({type(exc).__name__}: {exc})"
        try:
            probe = await nats.connect(self.nats_url, connect_timeout=2,
                                       max_reconnect_attempts=0)
            await probe.close()
        except Exception as exc:
            return f"NATS at {self.nats_url} not reachable ({type(exc).__name__}: {exc})"
        return None

    async def settings(self) -> dict[str, str]:
        conn = await asyncpg.connect(self.dsn, timeout=10)
        try:
            await conn.execute(f"CREATE SCHEMA {self.schema}")
        finally:
            await conn.close()
        return {"INVARIANT_STORE": "postgres", "INVARIANT_POSTGRES_DSN": self.dsn,
                "INVARIANT_POSTGRES_SCHEMA": self.schema, "INVARIANT_BROKER": "nats",
                "INVARIANT_BROKER_URL": self.nats_url, "INVARIANT_BROKER_CHANNEL": self.channel}

    def event_log(self, data: Path) -> EventLog:
        return PostgresEventLog(self.dsn, self.schema)

    async def cleanup(self) -> None:
        import nats

        conn = await asyncpg.connect(self.dsn, timeout=10)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
        finally:
            await conn.close()
        client = await nats.connect(self.nats_url, connect_timeout=5)
        try:
            with contextlib.suppress(Exception):  # never created if shop failed to start
                await client.jetstream().delete_stream(self.channel.upper())
        finally:
            await client.close()


MODES: dict[str, Callable[[str, str], Deployment]] = {
    "sqlite": lambda dsn, nats_url: SQLiteOneProcess(),
    "postgres-nats": PostgresNatsOneProcess,
}
"""``--mode`` → a deployment, given the PostgreSQL DSN and the NATS URL."""


# -- over the API ---------------------------------------------------------------------------

async def login(http: Http, address: str, password: str) -> Headers:
    """The bearer header of ``address``."""
    body = await http.call("POST", "/identity/login", 200,
                           json={"email": address, "password": password})
    return {"Authorization": f"Bearer {body['access_token']}"}


async def prepare(http: Http, shop: RunningShop) -> None:
    """As the admin: the payment provider approves, every product has :data:`STOCK` units."""
    admin = await login(http, ADMIN_EMAIL, shop.admin_password)
    await http.call("PUT", "/admin/payments/provider", 200, json={"mode": "approve"},
                    headers=admin)
    for product in PRODUCTS:
        await http.call("PUT", f"/admin/inventory/{product}", 200, json={"on_hand": STOCK},
                        headers=admin)


async def provider_counts(http: Http, shop: RunningShop) -> tuple[int, int]:
    """The payment provider's own count of charges and refunds."""
    admin = await login(http, ADMIN_EMAIL, shop.admin_password)
    body = await http.call("GET", "/admin/payments/provider", 200, headers=admin)
    return int(body["charges"]), int(body["refunds"])


async def sign_up(http: Http, shop: RunningShop, count: int, *, limit_s: float = 120.0
                  ) -> list[Headers]:
    """``count`` verified, logged-in customers; returns once every welcome email arrived
    and the outbox is empty, so the intake starts on an idle shop."""
    gate = asyncio.Semaphore(SIGN_UP_AT_ONCE)

    async def one(index: int) -> Headers:
        address = f"w6-{index}@example.com"
        async with gate:
            await http.call("POST", "/identity/register", 201,
                            json={"email": address, "password": PASSWORD})
            code = await _code_for(shop.mail, address, limit_s)
            await http.call("POST", "/identity/verify", 200,
                            json={"email": address, "code": code})
            return await login(http, address, PASSWORD)

    customers = await asyncio.gather(*(one(i) for i in range(count)))
    await _settled(http, shop, count, limit_s)
    return list(customers)


async def _code_for(mail: MailSink, address: str, limit_s: float) -> str:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        body = mail.body_of(address, CODE_SUBJECT)
        if body is not None:
            return body.split("Your verification code is ", 1)[1][:6]
        await asyncio.sleep(0.05)
    raise ShopFailed(f"no verification email reached {address} within {limit_s} s")


async def _settled(http: Http, shop: RunningShop, customers: int, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    admin = await login(http, ADMIN_EMAIL, shop.admin_password)
    while time.monotonic() < deadline:
        welcomed = sum(1 for m in shop.mail.scan() if m.subject == WELCOME_SUBJECT)
        status = await http.call("GET", "/status", 200, headers=admin)
        if welcomed >= customers and status["outbox_pending"] == 0:
            return
        await asyncio.sleep(0.1)
    raise ShopFailed(f"the sign-up emails did not all arrive within {limit_s} s")


"""shop over real HTTP: a uvicorn server in the test's event loop, on SQLite and on
PostgreSQL (a fresh schema), with its own local SMTP sink on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import os
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import httpx2 as httpx
import pytest
import uvicorn

from invariant.clock import Clock, utc_now
from invariant.config import Settings
from invariant.messaging.brokers.inprocess import InProcessBroker
from invariant.messaging.brokers.nats import NatsBroker
from invariant.testing.clock import ManualClock
from shop.config import ShopSettings
from shop.platform.http import ServerNotStarted, create_app, served
from shop.platform.module import ModuleFactory
from shop.platform.runtime import Shop
from tests.conftest import POSTGRES_DSN, fresh_pg_schema, require_server
from tests.messaging.conftest import NATS_URL
from tests.ports import free_port

T = TypeVar("T")
SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
ADMIN_EMAIL, ADMIN_PASSWORD = "admin@shop.test", "admin-password-123"
PROBLEM = "application/problem+json"


@dataclass
class ShopServer:
    shop: Shop
    base_url: str
    client: httpx.AsyncClient
    mail_dir: Path

    def mails(self, to: str | None = None) -> list[EmailMessage]:
        """Messages the local SMTP sink received (oldest first), optionally to ``to``."""
        found: list[EmailMessage] = []
        for path in sorted(self.mail_dir.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            if to is None or to in str(message["To"]):
                found.append(message)
        return found

    async def otp(self, to: str, *, previous: int = 0, timeout: float = 30.0) -> str:  # noqa: ASYNC109
        """The 6-digit code of the ``previous+1``-th verification email to ``to``."""
        async def code() -> str | None:
            codes = [m for m in (_otp_in(mail) for mail in self.mails(to)) if m]
            return codes[previous] if len(codes) > previous else None
        return await eventually(code, timeout=timeout, what=f"a code emailed to {to}")

    async def mail(self, to: str, subject: str, *, timeout: float = 30.0  # noqa: ASYNC109
                   ) -> EmailMessage:
        """The first email to ``to`` whose subject contains ``subject`` (waiting for it)."""
        async def find() -> EmailMessage | None:
            return next((m for m in self.mails(to) if subject in str(m["Subject"])), None)
        return await eventually(find, timeout=timeout, what=f"an email {subject!r} to {to}")

    async def events(self, stream_id: str, event_type: str) -> list[Any]:
        """The events of one type in a stream of the event store."""
        found = await self.shop.app.store.read_stream(stream_id)
        return [e.event for e in found if e.event_type == event_type]

    async def login(self, email_address: str, password: str) -> dict[str, str]:
        response = await self.client.post("/identity/login",
                                          json={"email": email_address, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    async def admin(self) -> dict[str, str]:
        return await self.login(ADMIN_EMAIL, ADMIN_PASSWORD)

    async def register(self, email_address: str, password: str) -> str:
        """Register ``email_address`` (not verified yet): the code emailed to it."""
        response = await self.client.post("/identity/register",
                                          json={"email": email_address, "password": password})
        assert response.status_code == 201, response.text
        assert response.json()["verified"] is False
        return await self.otp(email_address)

    async def customer(self, email_address: str, password: str = "correct horse battery"
                       ) -> dict[str, str]:
        """Register, verify with the emailed code, log in: the customer's auth headers."""
        code = await self.register(email_address, password)
        response = await self.client.post("/identity/verify",
                                          json={"email": email_address, "code": code})
        assert response.status_code == 200, response.text
        return await self.login(email_address, password)


def _otp_in(message: EmailMessage) -> str | None:
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    found = re.search(r"\b(\d{6})\b", text)
    return found.group(1) if found else None


async def eventually(probe: Callable[[], Awaitable[T | None]], *, timeout: float = 30.0,  # noqa: ASYNC109
                     what: str = "the condition") -> T:
    """Poll ``probe`` until it returns something other than None (or fail after timeout)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await probe()
        if value is not None:
            return value
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


STARTS = 3
"""Tries to start a test's shop: free ports are chosen before they are bound."""


def shop_settings(tmp_path: Path, invariant: Settings, **overrides: Any) -> ShopSettings:
    base = ShopSettings(
        invariant=invariant, host="127.0.0.1", port=free_port(), data=tmp_path / "shop",
        secret=SECRET, admin_email=ADMIN_EMAIL, admin_password=ADMIN_PASSWORD,
        smtp_port=free_port(), payment_timeout=1.5, reservation_timeout=3.0,
        provider_timeout=0.3, sample_catalog=True,
        backlog_oldest=0.0)  # a manual clock's jumps would age every waiting item
    return replace(base, **overrides)


@contextlib.asynccontextmanager
async def serve(settings: ShopSettings, *, clock: Clock | None = None,
                modules: Sequence[ModuleFactory] | None = None) -> AsyncIterator[ShopServer]:
    """Run a shop on ``settings``; with ``clock`` (e.g. a ManualClock) and only some
    context ``modules`` when given."""
    for attempt in range(1, STARTS + 1):
        broker = InProcessBroker() if os.environ.get("SHOP_TEST_BROKER") == "inprocess" else None
        shop = Shop(settings, broker=broker, modules=modules, clock=clock or utc_now)
        config = uvicorn.Config(create_app(shop), host=settings.host, port=settings.port,
                                log_level="warning", lifespan="on")
        serving = contextlib.AsyncExitStack()
        try:
            await serving.enter_async_context(served(config))
        except ServerNotStarted:
            # A port free when chosen was taken meanwhile (by the other worker, say).
            await serving.aclose()
            if attempt == STARTS:
                raise
            settings = replace(settings, port=free_port(), smtp_port=free_port())
            continue
        base = f"http://{settings.host}:{settings.port}"
        async with serving, httpx.AsyncClient(base_url=base, timeout=30) as client:
            yield ShopServer(shop, base, client, settings.data / "mail")
        return


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Settings]:
    """invariant's settings for each backend shop must run on."""
    if request.param == "sqlite":
        yield Settings(store="sqlite", sqlite_path=tmp_path / "shop.db")
        return
    async with fresh_pg_schema() as schema:
        yield Settings(store="postgres", postgres_dsn=POSTGRES_DSN, postgres_schema=schema,
                       postgres_pool=10)


@pytest.fixture
async def server(backend: Settings, tmp_path: Path) -> AsyncIterator[ShopServer]:
    """A running shop on each backend."""
    async with serve(shop_settings(tmp_path, backend)) as running:
        yield running


@pytest.fixture
def clock() -> ManualClock:
    """A clock the test moves, starting now (whole seconds)."""
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
async def identity_server(backend: Settings, tmp_path: Path, clock: ManualClock
                          ) -> AsyncIterator[ShopServer]:
    """A shop of identity and notifications only (sign-up emails go the whole way), on
    each backend, on ``clock``."""
    from shop.identity import wiring as identity
    from shop.notifications import wiring as notifications

    async with serve(shop_settings(tmp_path, backend), clock=clock,
                     modules=[identity.module, notifications.module]) as running:
        yield running


@pytest.fixture
async def sqlite_server(tmp_path: Path) -> AsyncIterator[ShopServer]:
    """A running shop on SQLite, for what does not depend on the store (HTTP's own rules)."""
    settings = shop_settings(tmp_path, Settings(store="sqlite",
                                                sqlite_path=tmp_path / "shop.db"))
    async with serve(settings) as running:
        yield running


@pytest.fixture
async def distributed(tmp_path: Path) -> AsyncIterator[ShopServer]:
    """A shop on PostgreSQL (a fresh schema) and NATS JetStream (its own stream)."""
    channel = f"shop_{uuid.uuid4().hex[:10]}"
    try:
        import nats

        probe = await nats.connect(NATS_URL, connect_timeout=2, max_reconnect_attempts=0)
        await probe.close()
    except Exception as exc:
        require_server("NATS", exc)
    async with fresh_pg_schema() as schema:
        settings = Settings.from_env({
            "INVARIANT_STORE": "postgres", "INVARIANT_POSTGRES_DSN": POSTGRES_DSN,
            "INVARIANT_POSTGRES_SCHEMA": schema, "INVARIANT_POSTGRES_POOL": "10",
            "INVARIANT_BROKER": "nats", "INVARIANT_BROKER_URL": NATS_URL,
            "INVARIANT_BROKER_CHANNEL": channel})
        try:
            async with serve(shop_settings(tmp_path, settings)) as running:
                assert isinstance(running.shop.broker, NatsBroker)
                yield running
        finally:
            nc = await nats.connect(NATS_URL)
            try:
                await nc.jetstream().delete_stream(channel.upper())
            finally:
                await nc.close()

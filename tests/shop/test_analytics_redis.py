"""Analytics' report in Redis (``SHOP_ANALYTICS_REDIS_URL``), against the real server on
6379 (a unique key prefix per test, removed afterwards) and against a redis-server of the
test's own that it kills and restarts: each message counts exactly once, however often it
arrives, however many consumers race on it, and across an outage."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from invariant.config import Settings
from invariant.domain import ConfigurationError
from invariant.messaging.consumer import DUPLICATE, HANDLED, PARKED, Consumer, external
from invariant.messaging.port import Message
from invariant.messaging.published_language import Amount, IntegrationEvent
from invariant.retry import RetryPolicy
from invariant.sql.database import SQLiteReadModels
from shop.analytics import wiring as analytics
from shop.analytics.application import SalesReport
from shop.analytics.infrastructure import CONSUMER
from shop.analytics.redis_store import RedisSalesReports
from shop.identity import wiring as identity
from shop.ordering import published as ordering
from shop.payments import published as payments
from shop.platform.runtime import Shop
from tests.conftest import require_server
from tests.messaging.conftest import REDIS_URL
from tests.shop.conftest import eventually, free_port, serve, shop_settings

AT = datetime(2026, 1, 1, 12, tzinfo=UTC)


def usd(value: str) -> Amount:
    return Amount(value=Decimal(value), currency="USD")


def placed(order: int, *lines: tuple[str, int]) -> ordering.OrderPlaced:
    return ordering.OrderPlaced(
        order_id=f"o-{order}", customer_id="c-1", total=usd("10.00"),
        lines=[ordering.OrderLine(product_id=p, name=p, quantity=q, unit_price=usd("5.00"))
               for p, q in lines], occurred_at=AT)


def charged(order: int, value: str, currency: str = "USD") -> payments.PaymentCharged:
    return payments.PaymentCharged(
        order_id=f"o-{order}", customer_id="c-1", charge_id=f"ch-{order}", attempt=1,
        amount=Amount(value=Decimal(value), currency=currency), occurred_at=AT)


def shipped(order: int, line: ordering.OrderLine) -> ordering.OrderShipped:
    return ordering.OrderShipped(order_id=f"o-{order}", customer_id="c-1", total=usd("5.00"),
                                 lines=[line], tracking_number=f"t-{order}", occurred_at=AT)


def message(event: IntegrationEvent) -> Message:
    out = event.to_outbox(source="test", occurred_at=AT)
    return Message(str(uuid.uuid4()), out.message_type, f"s-{uuid.uuid4().hex[:6]}",
                   out.schema_version, out.data, dict(out.metadata))


def stream(orders: int) -> list[Message]:
    """``orders`` orders of 2 mice and 1 pad, each charged 10.00 USD: 2 messages each."""
    return [m for n in range(orders)
            for m in (message(placed(n, ("mouse", 2), ("pad", 1))),
                      message(charged(n, "10.00")))]


def counted(report: SalesReport) -> tuple[int, str, dict[str, int]]:
    """Orders placed, USD charged, units ordered per product."""
    charges = {r.currency: str(r.charged) for r in report.revenue}
    return (report.orders_placed, charges.get("USD", "0.00"),
            {p.product_id: p.ordered for p in report.products})


def expected(orders: int) -> tuple[int, str, dict[str, int]]:
    return orders, f"{10 * orders}.00", {"mouse": 2 * orders, "pad": orders}


@contextlib.asynccontextmanager
async def reports(url: str = REDIS_URL, prefix: str | None = None
                  ) -> AsyncIterator[RedisSalesReports]:
    """A connected report under ``prefix`` (default: a fresh one), cleared afterwards."""
    store = RedisSalesReports(url, prefix=prefix or f"test:analytics:{uuid.uuid4().hex}:")
    async with store.connected():
        try:
            yield store
        finally:
            with contextlib.suppress(Exception):
                await store.clear()


@pytest.fixture
async def store() -> AsyncIterator[RedisSalesReports]:
    try:
        async with reports() as connected:
            yield connected
    except ConfigurationError as exc:
        require_server("Redis", exc)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[SQLiteReadModels]:
    """The consumer's own database (its inbox and dead letters)."""
    db = SQLiteReadModels(tmp_path / "consumer.db")
    yield db
    await db.close()


async def consumer(database: SQLiteReadModels, store: RedisSalesReports, *,
                   backoff: RetryPolicy | None = None) -> Consumer:
    made = Consumer(CONSUMER, database, store.consumer, backoff=backoff)
    await made.setup()
    return made


async def test_the_same_message_twice_counts_once(store: RedisSalesReports,
                                                  database: SQLiteReadModels) -> None:
    events = await consumer(database, store)
    first = message(placed(1, ("mouse", 2)))
    assert await events.handle(first) == HANDLED
    assert await events.handle(first) == DUPLICATE
    assert await events.handle(replace(first, stream_id="elsewhere")) == DUPLICATE
    report = await store.report()
    assert (report.orders_placed, [(p.product_id, p.ordered) for p in report.products]) == (
        1, [("mouse", 2)])


async def test_the_report_keeps_every_counter_and_currency(store: RedisSalesReports) -> None:
    line = ordering.OrderLine(product_id="mouse", name="Mouse", quantity=3,
                              unit_price=usd("5.00"))
    for event in (placed(1, ("mouse", 3)), charged(1, "15.00"), charged(2, "1000", "JPY"),
                  payments.PaymentRefunded(order_id="o-1", customer_id="c-1", refund_id="r-1",
                                           amount=usd("15.00"), occurred_at=AT),
                  ordering.OrderCancelled(order_id="o-1", customer_id="c-1",
                                          total=usd("15.00"), lines=[line], reason="changed",
                                          occurred_at=AT),
                  shipped(2, line)):
        assert await store.add(str(uuid.uuid4()), event)
    report = await store.report()
    assert (report.orders_placed, report.orders_cancelled, report.orders_shipped) == (1, 1, 1)
    assert [(r.currency, str(r.charged), str(r.refunded), str(r.net))
            for r in report.revenue] == [("JPY", "1000", "0", "1000"),
                                         ("USD", "15.00", "15.00", "0.00")]
    assert [(p.product_id, p.ordered, p.cancelled, p.shipped) for p in report.products] == [
        ("mouse", 3, 3, 3)]


async def test_two_consumers_racing_on_the_same_messages_count_each_once(
        store: RedisSalesReports, database: SQLiteReadModels, tmp_path: Path) -> None:
    messages = stream(150)
    other_database = SQLiteReadModels(tmp_path / "other.db")  # another process's inbox
    async with reports(prefix=store.prefix) as other_store:  # its own connections
        one = await consumer(database, store)
        two = await consumer(other_database, other_store)
        outcomes = await asyncio.gather(*(c.handle(m) for m in messages for c in (one, two)))
        assert counted(await other_store.report()) == expected(150)
    await other_database.close()
    assert (outcomes.count(HANDLED), outcomes.count(DUPLICATE)) == (300, 300)


class RedisServer:
    """A redis-server of the test's own, on a free port, its data in ``directory``
    (appended and synced at every write, so a kill -9 loses nothing acknowledged)."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            require_server("redis-server (the binary)", FileNotFoundError("redis-server"))
        assert binary is not None
        self.binary, self.directory, self.port = binary, directory, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: ASYNC220 (returns at once)
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             str(self.directory), "--appendonly", "yes", "--appendfsync", "always",
             "--save", "", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await eventually(self._answers, what=f"redis-server on port {self.port}")

    async def _answers(self) -> bool | None:
        from redis.asyncio import Redis

        client = Redis.from_url(self.url, socket_connect_timeout=1)
        try:
            return bool(await client.ping()) or None
        except Exception:
            return None
        finally:
            await client.aclose()

    def kill(self) -> None:
        """kill -9, and wait until it is gone."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    directory = tmp_path / "redis"
    directory.mkdir()
    with RedisServer(directory) as server:
        yield server


async def test_redis_killed_mid_stream_retries_then_counts_each_message_once(
        own_redis: RedisServer, database: SQLiteReadModels) -> None:
    await own_redis.start()
    messages = stream(40)
    failures: list[str] = []
    async with reports(own_redis.url) as store:
        async def counting(m: Message) -> bool:
            try:
                return await store.consumer.apply(m)
            except Exception as exc:
                failures.append(type(exc).__name__)
                raise

        events = Consumer(CONSUMER, database, external(counting, store.consumer.types),
                          backoff=RetryPolicy(attempts=10_000, first_delay=0.01,
                                              max_delay=0.05))
        await events.setup()
        for m in messages[:40]:
            assert await events.handle(m) == HANDLED
        own_redis.kill()
        rest = asyncio.create_task(_handle_all(events, messages[40:]))
        await eventually(lambda: _some(failures), what="the consumer failing and retrying")
        assert not rest.done()
        await own_redis.start()
        outcomes = await rest
        assert outcomes.count(HANDLED) + outcomes.count(DUPLICATE) == 40
        assert PARKED not in outcomes
        # The broker redelivers what it may not have seen acknowledged: nothing changes.
        again = await _handle_all(events, messages)
        assert set(again) == {DUPLICATE}
        assert counted(await store.report()) == expected(40)


async def test_redis_down_parks_the_message_and_its_replay_counts_it_once(
        own_redis: RedisServer, database: SQLiteReadModels) -> None:
    await own_redis.start()
    first, second = message(placed(1, ("mouse", 1))), message(placed(2, ("mouse", 2)))
    async with reports(own_redis.url) as store:
        events = await consumer(database, store,
                                backoff=RetryPolicy(attempts=2, first_delay=0))
        assert await events.handle(first) == HANDLED
        own_redis.kill()
        assert await events.handle(second) == PARKED
        await own_redis.start()
        [letter] = await database.run(_parked, write=False)
        await events.replay(letter)
        assert await database.run(_parked, write=False) == []
        assert await events.handle(second) == DUPLICATE  # redelivered: Redis has it once
        report = await store.report()
        assert (report.orders_placed, report.products[0].ordered) == (2, 3)


async def test_an_operator_replays_a_parked_message_without_starting_the_shop(
        store: RedisSalesReports, tmp_path: Path) -> None:
    from invariant.messaging import deadletters
    from invariant.operations.deadletters import replay_letter
    from shop.operations import shop_parts

    settings = shop_settings(tmp_path, Settings(store="sqlite",
                                                sqlite_path=tmp_path / "shop.db"),
                             analytics_redis_url=store.url,
                             analytics_redis_prefix=store.prefix)
    # As `invariant deadletters replay` finds it: the shop's consumer, nothing started.
    [events] = shop_parts(Shop(settings, modules=[analytics.module])).consumers
    await events.setup()
    nowhere = RedisSalesReports(f"redis://127.0.0.1:{free_port()}/0", prefix=store.prefix)
    parking = Consumer(CONSUMER, events.database, nowhere.consumer,
                       backoff=RetryPolicy(attempts=2, first_delay=0))
    lost = message(placed(1, ("mouse", 4)))
    assert await parking.handle(lost) == PARKED
    [letter] = await events.database.run(
        lambda conn: deadletters.list_parked(conn, CONSUMER), write=False)
    try:
        assert await replay_letter(events, letter) is None
        assert await replay_letter(events, letter) is not None  # gone: nothing twice
    finally:
        await events.database.close()
    report = await store.report()
    assert (report.orders_placed, [(p.product_id, p.ordered) for p in report.products]) == (
        1, [("mouse", 4)])


def _parked(conn: Any) -> list[int]:
    from invariant.messaging import deadletters

    return [letter.id for letter in deadletters.list_parked(conn, CONSUMER)]


async def _handle_all(events: Consumer, messages: list[Message]) -> list[str]:
    return [await events.handle(m) for m in messages]


async def _some(found: list[str]) -> bool | None:
    return True if found else None


async def test_an_unreachable_redis_stops_the_shop_at_start_naming_the_setting(
        tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings = shop_settings(tmp_path, Settings(store="sqlite",
                                                sqlite_path=tmp_path / "shop.db"),
                             analytics_redis_url=url)
    with pytest.raises(ConfigurationError) as raised:
        async with Shop(settings, modules=[analytics.module]):
            pass
    assert "SHOP_ANALYTICS_REDIS_URL: cannot reach Redis at " + url in str(raised.value)


@pytest.fixture(params=["sql", "redis"])
async def report_store(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, str]]:
    """The settings of each adapter of the report (Redis: a fresh prefix, cleared after)."""
    if request.param == "sql":
        yield {}
        return
    try:
        async with reports() as store:
            yield {"analytics_redis_url": store.url, "analytics_redis_prefix": store.prefix}
    except ConfigurationError as exc:
        require_server("Redis", exc)


async def test_the_report_over_http_is_the_same_whichever_store_keeps_it(
        report_store: dict[str, str], tmp_path: Path) -> None:
    settings = shop_settings(tmp_path, Settings(store="sqlite",
                                                sqlite_path=tmp_path / "shop.db"),
                             **report_store)
    line = ordering.OrderLine(product_id="pad", name="Pad", quantity=1, unit_price=usd("5.00"))
    fed = [message(e) for e in (
        placed(1, ("mouse", 2), ("pad", 1)), placed(2, ("pad", 4)), charged(1, "15.00"),
        charged(2, "20.00"), charged(3, "1500", "JPY"),
        payments.PaymentRefunded(order_id="o-2", customer_id="c-1", refund_id="r-2",
                                 amount=usd("20.00"), occurred_at=AT),
        ordering.OrderCancelled(order_id="o-2", customer_id="c-1", total=usd("20.00"),
                                lines=[line], reason="changed", occurred_at=AT),
        shipped(1, line))]
    async with serve(settings, modules=[identity.module, analytics.module]) as running:
        [events] = [c for c in running.shop.consumers if c.name == CONSUMER]
        for m in fed + fed[:3]:  # the first three delivered twice
            await events.handle(m)
        response = await running.client.get("/admin/analytics",
                                             headers=await running.admin())
    assert response.status_code == 200, response.text
    assert response.json() == {
        "orders": {"placed": 2, "cancelled": 1, "shipped": 1},
        "revenue": [
            {"currency": "JPY", "charged": "1500", "refunded": "0", "net": "1500"},
            {"currency": "USD", "charged": "35.00", "refunded": "20.00", "net": "15.00"}],
        "products": [
            {"product_id": "mouse", "ordered": 2, "cancelled": 0, "shipped": 0},
            {"product_id": "pad", "ordered": 5, "cancelled": 1, "shipped": 1}]}


async def test_the_report_is_503_while_redis_is_down_and_back_after(
        own_redis: RedisServer, tmp_path: Path) -> None:
    await own_redis.start()
    settings = shop_settings(tmp_path, Settings(store="sqlite",
                                                sqlite_path=tmp_path / "shop.db"),
                             analytics_redis_url=own_redis.url)
    async with serve(settings, modules=[identity.module, analytics.module]) as running:
        admin = await running.admin()
        assert (await running.client.get("/admin/analytics", headers=admin)).status_code == 200
        own_redis.kill()
        down = await running.client.get("/admin/analytics", headers=admin)
        assert down.status_code == 503 and "Retry-After" in down.headers
        assert "analytics report store (Redis)" in down.json()["detail"]
        await own_redis.start()
        assert (await running.client.get("/admin/analytics", headers=admin)).status_code == 200

"""One trace from ``POST /orders/{id}/place`` to the SMTP send of the order's email, with
every span's parent the step before it: the request, the command, the event store commit,
the relay's publish, the notifications consumer, the email job and the SMTP send. On
SQLite with the durable SQL broker, and on PostgreSQL with NATS JetStream between them."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from invariant.config import Settings
from tests.shop.conftest import ShopServer, eventually, serve, shop_settings
from tests.shop.shopping import place
from tests.telemetry.conftest import ancestry

CHAIN = ["smtp send", "job notifications.send_email", "consume notifications",
         "outbox publish", "event_store commit", "command PlaceOrder"]


async def _order_email_trace(server: ShopServer, spans: InMemorySpanExporter
                             ) -> list[ReadableSpan]:
    customer = await server.customer("traced@shop.test")
    order_id = await place(server, customer, ("mouse", 1))
    await server.mail("traced@shop.test", f"Order {order_id} received")

    def the_chain() -> list[ReadableSpan] | None:
        finished = list(spans.get_finished_spans())
        for smtp in (s for s in finished if s.name == "smtp send"):
            chain = ancestry(smtp, finished)
            if chain[-1].attributes and str(chain[-1].attributes.get(
                    "http.route", "")).endswith("/place"):
                return chain
        return None

    async def found() -> list[ReadableSpan] | None:
        return the_chain()
    return await eventually(found, what="the SMTP span of the order's email, under its "
                                        "request")


def _check(chain: list[ReadableSpan]) -> None:
    names = [s.name for s in chain]
    assert names[:len(CHAIN)] == CHAIN, names
    root = chain[-1]
    assert root.kind is SpanKind.SERVER and root.parent is None
    assert {s.context.trace_id for s in chain} == {root.context.trace_id}
    kinds = {s.name: s.kind for s in chain}
    assert kinds["outbox publish"] is SpanKind.PRODUCER
    assert kinds["consume notifications"] is SpanKind.CONSUMER
    commit = next(s for s in chain if s.name == "event_store commit")
    assert commit.attributes is not None
    assert int(str(commit.attributes["invariant.commit.events"])) >= 1
    assert int(str(commit.attributes["invariant.commit.batch_size"])) >= 1


async def test_one_trace_from_the_request_to_the_email_on_sqlite(
        spans: InMemorySpanExporter, tmp_path: Path) -> None:
    settings = shop_settings(tmp_path, Settings(store="sqlite",
                                                sqlite_path=tmp_path / "shop.db"))
    async with serve(settings) as server:
        _check(await _order_email_trace(server, spans))


async def test_one_trace_across_nats(spans: InMemorySpanExporter,
                                     distributed: ShopServer) -> None:
    _check(await _order_email_trace(distributed, spans))


async def test_no_span_is_recorded_while_tracing_is_off(tmp_path: Path) -> None:
    from invariant.telemetry import tracing

    assert not tracing.enabled()
    settings = shop_settings(tmp_path, Settings(store="sqlite",
                                                sqlite_path=tmp_path / "shop.db"))
    async with serve(settings) as server:
        customer = await server.customer("untraced@shop.test")
        order_id = await place(server, customer, ("mouse", 1))
        await server.mail("untraced@shop.test", f"Order {order_id} received")
        events = await server.shop.app.store.read_stream(f"ordering_order-{order_id}")
        assert all("traceparent" not in e.metadata for e in events)

"""Billing's and analytics' consumers without a server: integration events applied to
their tables in any order, other contexts' messages ignored, unknown versions refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Connection, create_engine

from invariant.messaging.errors import UnsupportedVersionError
from invariant.messaging.port import Message
from invariant.messaging.published_language import Amount, IntegrationEvent
from shop.analytics import infrastructure as analytics
from shop.billing import infrastructure as billing
from shop.ordering import published as ordering
from shop.payments import published as payments

AT = datetime(2026, 1, 1, 12, tzinfo=UTC)
USD = Amount(value=Decimal("89.00"), currency="USD")
LINE = ordering.OrderLine(product_id="keyboard", name="Keyboard", quantity=1, unit_price=USD)
PLACED = ordering.OrderPlaced(order_id="o-1", customer_id="c-1", total=USD, lines=[LINE],
                              occurred_at=AT)
CHARGED = payments.PaymentCharged(order_id="o-1", customer_id="c-1", charge_id="ch_1",
                                  attempt=1, amount=USD, occurred_at=AT)
REFUNDED = payments.PaymentRefunded(order_id="o-1", customer_id="c-1", refund_id="re_1",
                                    amount=USD, occurred_at=AT)
CANCELLED = ordering.OrderCancelled(order_id="o-1", customer_id="c-1", total=USD,
                                    lines=[LINE], reason="shipment refused", occurred_at=AT)


def message(event: IntegrationEvent, version: int | None = None) -> Message:
    out = event.to_outbox(source="test", occurred_at=AT)
    metadata = dict(out.metadata)
    if version is not None:
        metadata["version"] = version
    return Message(str(uuid.uuid4()), out.message_type, "s-1", out.schema_version,
                   out.data, metadata)


@pytest.fixture
def conn() -> Iterator[Connection]:
    engine = create_engine("sqlite://")
    with engine.begin() as connection:
        billing.metadata.create_all(connection)
        analytics.metadata.create_all(connection)
        yield connection
    engine.dispose()


def invoice(conn: Connection) -> dict[str, object]:
    page = billing.customer_invoices(conn, "c-1", 0, 10)
    assert page.total == 1
    found = page.items[0]
    return {"status": found.status, "total": found.total, "paid": found.paid,
            "refunded": found.refunded}


def test_an_invoice_follows_its_order_and_payment(conn: Connection) -> None:
    billing.consume(conn, message(PLACED))
    assert invoice(conn)["status"] == "open"
    billing.consume(conn, message(CHARGED))
    assert invoice(conn)["status"] == "paid"
    billing.consume(conn, message(REFUNDED))
    billing.consume(conn, message(CANCELLED))
    assert invoice(conn)["status"] == "refunded"


def test_a_payment_arriving_before_its_order_still_makes_one_invoice(
        conn: Connection) -> None:
    billing.consume(conn, message(CHARGED))
    billing.consume(conn, message(PLACED))
    got = invoice(conn)
    assert got["status"] == "paid" and str(got["total"]) == "89.00"


def test_a_cancelled_unpaid_order_is_void(conn: Connection) -> None:
    billing.consume(conn, message(PLACED))
    billing.consume(conn, message(CANCELLED))
    assert invoice(conn)["status"] == "void"


def test_other_messages_are_ignored_and_unknown_versions_refused(conn: Connection) -> None:
    billing.consume(conn, Message("m-1", "identity.user_registered", "u-1", 1, {}, {}))
    analytics.consume(conn, Message("m-2", "identity.user_registered", "u-1", 1, {}, {}))
    assert billing.customer_invoices(conn, "c-1", 0, 10).total == 0
    with pytest.raises(UnsupportedVersionError):
        billing.consume(conn, message(PLACED, version=2))
    with pytest.raises(UnsupportedVersionError):
        analytics.consume(conn, message(CHARGED, version=9))


def test_analytics_counts_orders_revenue_and_units(conn: Connection) -> None:
    for event in (PLACED, CHARGED, REFUNDED, CANCELLED):
        analytics.consume(conn, message(event))
    report = analytics.report(conn)
    assert (report.orders_placed, report.orders_cancelled, report.orders_shipped) == (1, 1, 0)
    [usd] = report.revenue
    assert (str(usd.charged), str(usd.refunded), str(usd.net)) == ("89.00", "89.00", "0.00")
    assert [(p.product_id, p.ordered, p.cancelled) for p in report.products] == [
        ("keyboard", 1, 1)]


def test_huge_offsets_give_an_empty_page(conn: Connection) -> None:
    billing.consume(conn, message(PLACED))
    page = billing.customer_invoices(conn, "c-1", 10**30, 10)
    assert page.items == [] and page.total == 1

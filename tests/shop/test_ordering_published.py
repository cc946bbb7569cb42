"""Ordering's and payments' published language against their released JSON Schemas
(``src/shop/<context>/schemas``): a breaking change fails here; release a new version
instead (``invariant schemas export --events shop.<context>.published --out ...``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from invariant.messaging import schemas
from shop.ordering.published import PUBLISHED as ORDERING
from shop.payments.published import PUBLISHED as PAYMENTS

SHOP = Path(__file__).resolve().parents[2] / "src" / "shop"


@pytest.mark.parametrize("context", ["ordering", "payments"])
def test_the_published_events_match_their_released_schemas(context: str) -> None:
    events = schemas.events_in(f"shop.{context}.published")
    assert set(events) == set(ORDERING if context == "ordering" else PAYMENTS)
    assert schemas.check(events, SHOP / context / "schemas") == []


def test_the_order_events_keep_their_names() -> None:
    assert [(e.event_name, e.event_version) for e in (*ORDERING, *PAYMENTS)] == [
        ("order.placed", 1), ("order.cancelled", 1), ("order.shipped", 1),
        ("payment.charged", 1), ("payment.refunded", 1)]

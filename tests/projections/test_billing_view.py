"""A read model across bounded contexts: billing's view of ordering and payments events."""

from __future__ import annotations

from examples.billing.read_models import billing_projections, statement
from examples.orders.domain import OrderCancelled, OrderPlaced, PaymentCharged, PaymentRefunded
from invariant.projections import ProjectionRunner
from invariant.store import EventRegistry, EventStore, StreamState
from tests.projections.conftest import Bank


async def test_billing_sums_what_ordering_and_payments_did_per_customer(bank: Bank) -> None:
    store = EventStore(bank.storage, EventRegistry(
        [OrderPlaced, OrderCancelled, PaymentCharged, PaymentRefunded]
    ))

    async def emit(stream: str, *events: object) -> None:
        await store.append(stream, list(events), StreamState.ANY)  # type: ignore[arg-type]

    # Ordering and payments write their own streams; billing only reads them.
    await emit("order-O1", OrderPlaced("O1", "C1", "SKU-1", 1, 5000))
    await emit("payment-O1", PaymentCharged("O1", 5000, 1))
    await emit("order-O2", OrderPlaced("O2", "C1", "SKU-2", 2, 1200))
    await emit("payment-O2", PaymentCharged("O2", 1200, 2), PaymentRefunded("O2", 1200))
    await emit("order-O2", OrderCancelled("O2", "payment refunded"))
    await emit("order-O2", OrderCancelled("O2", "sent twice"))  # counted once
    await emit("order-O3", OrderPlaced("O3", "C2", "SKU-1", 3, 900))
    await emit("payment-O9", PaymentCharged("O9", 100, 1))  # an order billing never saw

    runner = ProjectionRunner(store, bank.database, billing_projections())
    await runner.setup()
    assert await runner.catch_up() > 0
    c1 = await statement(bank.database, "C1")
    c2 = await statement(bank.database, "C2")
    assert c1 is not None and c2 is not None
    assert (c1.orders, c1.cancelled, c1.ordered, c1.charged, c1.refunded) == (
        2, 1, 5000, 6200, 1200,
    )
    assert c1.outstanding == 0
    assert (c2.orders, c2.ordered, c2.charged, c2.outstanding) == (1, 900, 0, 900)
    assert await statement(bank.database, "C404") is None

    # Rebuilding from zero gives the same view.
    await runner.rebuild("customer_billing")
    assert await statement(bank.database, "C1") == c1

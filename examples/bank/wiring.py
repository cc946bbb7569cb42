"""How the bank example is put together: event registry and upcasters."""

from __future__ import annotations

from typing import Any

from examples.bank.domain import EVENTS
from invariant.store import EventRegistry, EventStorage, EventStore, Upcasters


def upcasters() -> Upcasters:
    """MoneyDeposited v1 stored ``{"account_id", "amount": 1000}`` (implicitly USD)."""
    ups = Upcasters()

    @ups.upcaster("MoneyDeposited", 1)
    def _add_currency(data: dict[str, Any]) -> dict[str, Any]:
        return {"amount": {"amount": str(data["amount"]), "currency": "USD"}}

    return ups


def bank_store(storage: EventStorage) -> EventStore:
    return EventStore(storage, EventRegistry(EVENTS), upcasters())

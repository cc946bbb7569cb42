"""The seed's bank scenarios produce the seed's numbers on every backend."""

from __future__ import annotations

from typing import Any

from examples.bank.scenarios import event_store_basics, snapshots, temporal, upcasting
from invariant.domain import Money
from tests.money import usd


def quiet(_: str) -> None:
    return None


async def test_example_61_balance_1300_after_three_events(any_storage: Any) -> None:
    figures = (await event_store_basics(any_storage, quiet)).figures
    assert figures["balance"] == usd(1300)
    assert figures["version"] == 3
    assert "only 1300.00 USD available" in figures["refused"]
    assert figures["version_after_refusal"] == 3


async def test_example_62_snapshot_plus_tail(any_storage: Any) -> None:
    figures = (await snapshots(any_storage, quiet)).figures
    assert figures["snapshot_version"] == 200
    assert figures["tail"] == 50
    assert figures["balance"] == usd(3490)
    assert figures["version"] == 250
    assert figures["snapshot_after_burst"] == 310


async def test_example_63_balance_as_of_time_and_history(any_storage: Any) -> None:
    clock = any_storage.clock
    figures = (await temporal(any_storage, quiet, lambda: clock.advance(minutes=10))).figures
    assert figures["midpoint"] == usd(1500)
    assert figures["version_1"] == usd(1000)
    assert figures["current"] == usd(1300)
    assert figures["history"] == [usd(1000), usd(1500), usd(1300)]


async def test_example_64_v1_deposit_upcast_to_usd(any_storage: Any) -> None:
    figures = (await upcasting(any_storage, quiet)).figures
    assert figures["usd"] == usd(1000)
    assert figures["eur"] == Money.of(500, "EUR")


async def test_examples_65_to_67_commands_feed_the_summary_read_model(any_storage: Any) -> None:
    from decimal import Decimal

    from examples.bank.scenarios import commands_and_read_models
    from invariant.store import MemoryStorage

    figures = (await commands_and_read_models(any_storage, quiet)).figures
    if isinstance(any_storage, MemoryStorage):
        assert figures == {}
        return
    assert (figures["deposits"], figures["withdrawals"], figures["balance"], figures["count"]) == (
        Decimal("1500.00"), Decimal("200.00"), Decimal("1300.00"), 3,
    )
    assert figures["duplicate"] is True
    assert figures["volume"] == {"deposits": Decimal("3800.00"), "withdrawals": Decimal("200.00")}

"""Upcasters turn events and snapshots stored in an old shape into the current one on read."""

from __future__ import annotations

from typing import Any

import pytest

from examples.bank.domain import EVENTS, MoneyDeposited
from invariant.domain import ConfigurationError, Money, SerializationError
from invariant.store import EventRegistry, Upcasters


def add_currency(data: dict[str, Any]) -> dict[str, Any]:
    data["currency"] = "USD"
    return data


def rename_amount_to_total(data: dict[str, Any]) -> dict[str, Any]:
    data["total"] = data.pop("amount")
    return data


def rename_owner(state: dict[str, Any]) -> dict[str, Any]:
    state["owner_id"] = state.pop("owner")
    return state


# -- events ---------------------------------------------------------------------------------


def test_an_event_without_upcasters_is_returned_as_stored() -> None:
    assert Upcasters().upcast("Paid", 1, {"amount": "1"}) == ("Paid", 1, {"amount": "1"})


def test_upcasters_chain_from_the_stored_version_to_the_latest() -> None:
    upcasters = Upcasters()
    upcasters.register("Paid", 1, add_currency)
    upcasters.register("Paid", 2, rename_amount_to_total)

    assert upcasters.upcast("Paid", 1, {"amount": "1"}) == (
        "Paid",
        3,
        {"total": "1", "currency": "USD"},
    )


def test_the_chain_starts_at_the_stored_version() -> None:
    upcasters = Upcasters()
    upcasters.register("Paid", 1, add_currency)
    upcasters.register("Paid", 2, rename_amount_to_total)

    assert upcasters.upcast("Paid", 2, {"amount": "1", "currency": "EUR"}) == (
        "Paid",
        3,
        {"total": "1", "currency": "EUR"},
    )
    assert upcasters.upcast("Paid", 3, {"total": "1"}) == ("Paid", 3, {"total": "1"})


def test_an_upcaster_works_on_a_copy_of_the_stored_data() -> None:
    upcasters = Upcasters()
    upcasters.register("Paid", 1, add_currency)
    stored = {"amount": "1"}

    upcasters.upcast("Paid", 1, stored)

    assert stored == {"amount": "1"}


def test_rename_to_changes_the_type_and_the_chain_continues_under_the_new_name() -> None:
    upcasters = Upcasters()
    upcasters.register("PaymentMade", 1, rename_to="Paid")
    upcasters.register("Paid", 2, add_currency)

    assert upcasters.upcast("PaymentMade", 1, {"amount": "1"}) == (
        "Paid",
        3,
        {"amount": "1", "currency": "USD"},
    )


def test_a_rename_alone_keeps_the_data() -> None:
    upcasters = Upcasters()
    upcasters.register("PaymentMade", 1, rename_to="Paid")

    assert upcasters.upcast("PaymentMade", 1, {"amount": "1"}) == ("Paid", 2, {"amount": "1"})


def test_the_decorator_form_registers_the_function_and_returns_it_unchanged() -> None:
    upcasters = Upcasters()

    @upcasters.upcaster("Paid", 1, rename_to="PaymentReceived")
    def to_v2(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "currency": "USD"}

    assert to_v2({"amount": "1"}) == {"amount": "1", "currency": "USD"}
    assert upcasters.upcast("Paid", 1, {"amount": "1"}) == (
        "PaymentReceived",
        2,
        {"amount": "1", "currency": "USD"},
    )


def test_the_event_types_with_upcasters_are_listed() -> None:
    upcasters = Upcasters()
    upcasters.register("Paid", 1, add_currency)
    upcasters.register("Paid", 2, rename_amount_to_total)
    upcasters.register("PaymentMade", 1, rename_to="Paid")

    assert upcasters.event_types == frozenset({"Paid", "PaymentMade"})


def test_the_sources_of_a_type_are_it_and_every_type_renamed_into_it() -> None:
    upcasters = Upcasters()
    upcasters.register("Paid", 1, add_currency)  # no rename: a source of Paid only
    upcasters.register("PaymentMade", 1, rename_to="Paid")
    upcasters.register("Settled", 3, rename_to="PaymentMade")  # a chain: Settled -> Paid
    upcasters.register("Refunded", 1, rename_to="Reversed")

    assert upcasters.sources_of({"Paid"}) == {"Paid", "PaymentMade", "Settled"}
    assert upcasters.sources_of({"PaymentMade"}) == {"PaymentMade", "Settled"}
    assert upcasters.sources_of({"Paid", "Reversed"}) == {
        "Paid", "PaymentMade", "Settled", "Reversed", "Refunded"}
    assert upcasters.sources_of({"Other"}) == {"Other"}
    assert upcasters.sources_of(()) == frozenset()


def test_registering_a_second_upcaster_for_one_type_and_version_is_refused() -> None:
    upcasters = Upcasters()
    upcasters.register("Paid", 1, add_currency)

    with pytest.raises(ConfigurationError, match="upcaster for Paid v1 exists already"):
        upcasters.register("Paid", 1, rename_amount_to_total)

    assert upcasters.upcast("Paid", 1, {"amount": "1"})[2] == {"amount": "1", "currency": "USD"}


def test_registering_a_duplicate_through_the_decorator_is_refused() -> None:
    upcasters = Upcasters()
    upcasters.register("Paid", 1, add_currency)

    with pytest.raises(ConfigurationError):

        @upcasters.upcaster("Paid", 1)
        def again(data: dict[str, Any]) -> dict[str, Any]:
            return data


@pytest.mark.parametrize("version", [0, -1])
def test_an_upcaster_from_a_version_below_one_is_refused(version: int) -> None:
    with pytest.raises(ConfigurationError, match="schema versions start at 1"):
        Upcasters().register("Paid", version, add_currency)


def test_a_failing_transform_is_a_serialization_error_naming_the_step() -> None:
    upcasters = Upcasters()
    upcasters.register("Paid", 1, add_currency)
    upcasters.register("Paid", 2, rename_amount_to_total)

    with pytest.raises(SerializationError, match="upcaster for Paid v2 failed") as caught:
        upcasters.upcast("Paid", 1, {"total": "1"})

    assert isinstance(caught.value.__cause__, KeyError)


def test_upcasting_then_decoding_reads_an_old_bank_deposit() -> None:
    # MoneyDeposited v1 stored a bare USD number; v2 stores Money.
    upcasters = Upcasters()
    upcasters.register(
        "MoneyDeposited",
        1,
        lambda d: {"amount": {"amount": d["amount"], "currency": "USD"}},
    )
    registry = EventRegistry(EVENTS)

    event_type, version, data = upcasters.upcast("MoneyDeposited", 1, {"amount": "10.00"})

    assert registry.decode(event_type, version, data) == MoneyDeposited(Money.of(10, "USD"))


# -- snapshots ------------------------------------------------------------------------------


def test_a_snapshot_chain_reaches_the_target_version() -> None:
    upcasters = Upcasters()
    upcasters.register_snapshot("account", 1, lambda s: {**s, "transactions": 0})
    upcasters.register_snapshot("account", 2, rename_owner)

    state = upcasters.upcast_snapshot("account", 1, 3, {"owner": "o-1"})

    assert state == {"owner_id": "o-1", "transactions": 0}


def test_a_snapshot_already_at_the_target_is_returned_unchanged() -> None:
    assert Upcasters().upcast_snapshot("account", 2, 2, {"a": 1}) == {"a": 1}


def test_a_snapshot_chain_with_a_missing_step_gives_none() -> None:
    upcasters = Upcasters()
    upcasters.register_snapshot("account", 1, lambda s: {**s, "transactions": 0})

    assert upcasters.upcast_snapshot("account", 1, 3, {"owner": "o-1"}) is None


def test_a_snapshot_upcaster_for_another_aggregate_does_not_apply() -> None:
    upcasters = Upcasters()
    upcasters.register_snapshot("order", 1, lambda s: s)

    assert upcasters.upcast_snapshot("account", 1, 2, {}) is None


def test_a_snapshot_newer_than_the_target_gives_none() -> None:
    assert Upcasters().upcast_snapshot("account", 3, 2, {"a": 1}) is None


def test_a_snapshot_upcaster_works_on_a_copy_of_the_stored_state() -> None:
    upcasters = Upcasters()
    upcasters.register_snapshot("account", 1, lambda s: s.update(transactions=0) or s)
    stored = {"owner_id": "o-1"}

    upcasters.upcast_snapshot("account", 1, 2, stored)

    assert stored == {"owner_id": "o-1"}


def test_registering_a_second_snapshot_upcaster_for_one_version_is_refused() -> None:
    upcasters = Upcasters()
    upcasters.register_snapshot("account", 1, lambda s: s)

    with pytest.raises(ConfigurationError, match="snapshot upcaster for account v1 exists"):
        upcasters.register_snapshot("account", 1, lambda s: s)

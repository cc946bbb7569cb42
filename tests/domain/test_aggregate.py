"""Aggregate roots record events, apply them through one path, and rebuild from history."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from examples.bank.domain import (
    AccountId,
    AccountNotOpen,
    AccountOpened,
    BankAccount,
    InsufficientFunds,
    MoneyDeposited,
    MoneyWithdrawn,
)
from invariant.domain import (
    AggregateRoot,
    ConfigurationError,
    DomainError,
    DomainEvent,
    Money,
    stream_id_for,
)
from invariant.testing import AggregateScenario
from tests.money import usd


def opened_account(initial: str = "100") -> BankAccount:
    return BankAccount.open(AccountId("acc-1"), "owner-1", usd(initial))


@dataclass(frozen=True)
class Ticked(DomainEvent):
    pass


class Counter(AggregateRoot[str]):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.ticks = 0

    def tick(self) -> None:
        self.record(Ticked())

    def apply(self, event: DomainEvent) -> None:
        self.ticks += 1


class Forgetful(AggregateRoot[str]):
    """Records events but never implemented apply."""


# -- recording ------------------------------------------------------------------------------


def test_recording_an_event_applies_it_and_counts_a_version() -> None:
    account = opened_account("100")

    account.deposit(usd("25.50"))

    assert account.balance("USD") == usd("125.50")
    assert account.owner_id == "owner-1"
    assert account.version == 2
    assert account.pending_events == (
        AccountOpened("owner-1", usd("100")),
        MoneyDeposited(usd("25.50")),
    )


def test_a_new_aggregate_has_nothing_persisted() -> None:
    account = opened_account()

    assert account.persisted_version == 0
    assert account.version == 1


def test_pending_events_are_a_snapshot_the_caller_cannot_alter() -> None:
    account = opened_account()

    pending = account.pending_events
    account.deposit(usd(1))

    assert len(pending) == 1
    assert len(account.pending_events) == 2


def test_mark_saved_hands_back_the_pending_events_and_moves_the_persisted_version() -> None:
    account = opened_account("100")
    account.deposit(usd(5))

    saved = account.mark_saved()

    assert saved == [AccountOpened("owner-1", usd(100)), MoneyDeposited(usd(5))]
    assert account.pending_events == ()
    assert account.version == 2
    assert account.persisted_version == 2


def test_events_recorded_after_a_save_are_pending_on_top_of_the_persisted_version() -> None:
    account = opened_account("100")
    account.mark_saved()

    account.withdraw(usd(30))

    assert account.pending_events == (MoneyWithdrawn(usd(30)),)
    assert account.persisted_version == 1
    assert account.version == 2
    assert account.balance() == usd(70)


def test_an_aggregate_without_apply_refuses_to_record_and_keeps_nothing() -> None:
    forgetful = Forgetful("f-1")

    with pytest.raises(NotImplementedError, match="Forgetful must implement apply"):
        forgetful.record(Ticked())

    assert forgetful.version == 0
    assert forgetful.pending_events == ()


# -- a rule refusing a command --------------------------------------------------------------


def test_withdrawing_more_than_the_balance_raises_and_records_nothing() -> None:
    account = opened_account("100")
    account.deposit(usd(20))

    with pytest.raises(InsufficientFunds) as caught:
        account.withdraw(usd("120.01"))

    assert isinstance(caught.value, DomainError)
    assert caught.value.requested == usd("120.01")
    assert caught.value.available == usd(120)
    assert "120.01 USD" in str(caught.value)
    assert account.balance() == usd(120)
    assert account.version == 2
    assert account.transactions == 2
    assert account.pending_events == (AccountOpened("owner-1", usd(100)), MoneyDeposited(usd(20)))


def account_scenario() -> AggregateScenario[BankAccount]:
    return AggregateScenario(BankAccount, AccountId("acc-1")).given(
        AccountOpened("owner-1", usd(100)))


def test_withdrawing_the_whole_balance_is_allowed() -> None:
    s = account_scenario().when(lambda account: account.withdraw(usd(100)))

    s.then(MoneyWithdrawn(usd(100)))
    assert s.aggregate is not None and s.aggregate.balance().is_zero()


def test_withdrawing_a_currency_the_account_does_not_hold_is_insufficient_funds() -> None:
    account_scenario().when(lambda account: account.withdraw(Money.of(1, "EUR"))) \
        .then_raises(InsufficientFunds, match="cannot pay 1.00 EUR: only 0.00 EUR available")


def test_balances_are_kept_per_currency() -> None:
    account = opened_account("100")

    account.deposit(Money.of(7, "EUR"))

    assert account.balance("USD") == usd(100)
    assert account.balance("EUR") == Money.of(7, "EUR")
    assert account.balance("JPY") == Money.zero("JPY")


def test_an_account_that_was_never_opened_refuses_deposits() -> None:
    s = AggregateScenario(BankAccount, AccountId("acc-1")).when(
        lambda account: account.deposit(usd(1)))

    s.then_raises(AccountNotOpen, match="acc-1 is not open")
    assert s.aggregate is not None and s.aggregate.version == 0


# -- rebuilding from history ----------------------------------------------------------------


def test_rehydrating_the_recorded_events_gives_the_same_state_and_version() -> None:
    recorded = opened_account("100")
    recorded.deposit(usd("50.25"))
    recorded.deposit(Money.of(3, "EUR"))
    recorded.withdraw(usd("20.25"))

    rebuilt = BankAccount.rehydrate(recorded.id, recorded.pending_events)

    assert rebuilt == recorded
    assert rebuilt.version == recorded.version == 4
    assert rebuilt.balances == recorded.balances
    assert rebuilt.owner_id == recorded.owner_id
    assert rebuilt.transactions == recorded.transactions


def test_a_rehydrated_aggregate_has_nothing_pending() -> None:
    rebuilt = BankAccount.rehydrate(AccountId("acc-1"), [AccountOpened("o", usd(1))])

    assert rebuilt.pending_events == ()
    assert rebuilt.persisted_version == rebuilt.version == 1


def test_rehydrating_accepts_any_iterable_of_events() -> None:
    events = (e for e in [AccountOpened("o", usd(1)), MoneyDeposited(usd(2))])

    rebuilt = BankAccount.rehydrate(AccountId("acc-1"), events)

    assert rebuilt.version == 2
    assert rebuilt.balance() == usd(3)


def test_rehydrating_on_a_base_continues_from_the_base_version() -> None:
    history = [AccountOpened("o", usd(10)), MoneyDeposited(usd(5)), MoneyWithdrawn(usd(3))]
    base = BankAccount.rehydrate(AccountId("acc-1"), history[:2])

    rebuilt = BankAccount.rehydrate(AccountId("acc-1"), history[2:], base=base)

    assert rebuilt is base
    assert rebuilt.version == 3
    assert rebuilt.balance() == usd(12)


def test_a_snapshot_restores_the_same_state() -> None:
    account = opened_account("100")
    account.deposit(Money.of(3, "EUR"))

    restored = BankAccount.from_snapshot(account.id, account.to_snapshot())

    assert restored.balances == account.balances
    assert restored.owner_id == account.owner_id
    assert restored.transactions == account.transactions


# -- category, streams and snapshot support -------------------------------------------------


def test_category_defaults_to_the_class_name() -> None:
    assert Counter.category == "Counter"
    assert stream_id_for(Counter, "c-1") == "Counter-c-1"
    assert Counter("c-1").stream_id() == "Counter-c-1"


def test_a_declared_category_names_the_streams() -> None:
    assert BankAccount.category == "account"
    assert opened_account().stream_id() == "account-acc-1"


def test_a_subclass_gets_its_own_default_category() -> None:
    class SavingsAccount(BankAccount):
        pass

    assert SavingsAccount.category == "SavingsAccount"


@pytest.mark.parametrize("bad", ["bank-account", "-", ""])
def test_a_category_with_a_dash_or_an_empty_one_is_refused_when_declared(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="must be non-empty and contain no '-'"):

        class Broken(AggregateRoot[str]):
            category = bad


def test_snapshots_are_supported_when_both_halves_are_implemented() -> None:
    class OnlyTo(AggregateRoot[str]):
        def to_snapshot(self) -> Mapping[str, Any]:
            return {}

    class OnlyFrom(AggregateRoot[str]):
        @classmethod
        def from_snapshot(cls, id: str, state: Mapping[str, Any]) -> OnlyFrom:
            return cls(id)

    assert BankAccount.supports_snapshots()
    assert not Counter.supports_snapshots()
    assert not OnlyTo.supports_snapshots()
    assert not OnlyFrom.supports_snapshots()


def test_counter_counts_every_recorded_event() -> None:
    counter = Counter("c-1")

    for _ in range(3):
        counter.tick()

    assert counter.ticks == 3
    assert counter.version == 3
    assert len(counter.pending_events) == 3

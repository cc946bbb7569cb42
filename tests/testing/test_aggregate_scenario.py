"""The aggregate test kit: given events, when a command, then events or an error; and what
it says when an expectation is wrong."""

from __future__ import annotations

import pytest

from examples.bank.application import (
    DepositMoney,
    OpenAccount,
    WithdrawMoney,
    deposit_money,
    open_account,
    withdraw_money,
)
from examples.bank.domain import (
    AccountId,
    AccountNotOpen,
    AccountOpened,
    BankAccount,
    InsufficientFunds,
    MoneyDeposited,
    MoneyWithdrawn,
)
from examples.bank.wiring import bank_store
from invariant.domain import ConfigurationError, DomainError
from invariant.testing import AggregateScenario, ManualClock
from tests.money import usd

ACC = AccountId("ACC-1")
OPENED = AccountOpened("USER-1", usd(100))


def account() -> AggregateScenario[BankAccount]:
    return AggregateScenario(BankAccount, ACC, store=bank_store)


# -- commands on the aggregate -----------------------------------------------------------------


def test_a_command_records_its_events() -> None:
    account().given(OPENED).when(lambda a: a.withdraw(usd(30))).then(MoneyWithdrawn(usd(30)))


def test_the_aggregate_is_left_as_the_command_left_it() -> None:
    s = account().given(OPENED, MoneyDeposited(usd(5))).when(lambda a: a.withdraw(usd(30)))
    assert s.aggregate is not None and s.aggregate.balance() == usd(75)


def test_a_factory_has_the_new_aggregates_events_checked() -> None:
    account().when(lambda _: BankAccount.open(ACC, "USER-1", usd(100))).then(OPENED)


def test_a_refused_command_is_checked_by_type_and_message() -> None:
    s = account().given(OPENED).when(lambda a: a.withdraw(usd(500)))
    s.then_raises(InsufficientFunds, match=r"only 100\.00 USD available")
    s.then_raises(DomainError)  # a base class counts


def test_a_command_on_no_history_meets_a_blank_aggregate() -> None:
    account().when(lambda a: a.deposit(usd(1))).then_raises(AccountNotOpen)


def test_a_command_that_records_nothing() -> None:
    account().given(OPENED).when(lambda a: a.balance()).then_nothing()


# -- command handlers through a unit of work ---------------------------------------------------


async def test_a_handler_runs_in_a_unit_of_work_over_the_given_events() -> None:
    s = account().given(OPENED)
    await s.when_handling(DepositMoney(account_id="ACC-1", amount=usd(20)), deposit_money)
    s.then(MoneyDeposited(usd(20)))
    assert s.value == "120.00"
    assert s.aggregate is not None and s.aggregate.version == 2


async def test_a_handler_that_creates_the_aggregate() -> None:
    s = account()
    await s.when_handling(OpenAccount(account_id="ACC-1", owner_id="USER-1",
                                      initial_deposit=usd(100)), open_account)
    s.then(OPENED)


async def test_a_handler_refused_by_the_domain_records_nothing() -> None:
    s = account().given(OPENED)
    await s.when_handling(WithdrawMoney(account_id="ACC-1", amount=usd(500)), withdraw_money)
    s.then_raises(InsufficientFunds, match="cannot pay")
    assert s.recorded == []


async def test_the_store_records_at_the_scenarios_clock() -> None:
    clock = ManualClock()
    s = AggregateScenario(BankAccount, ACC, store=bank_store, clock=clock)
    clock.advance(days=3)
    await s.when_handling(OpenAccount(account_id="ACC-1", owner_id="USER-1",
                                      initial_deposit=usd(100)), open_account)
    assert s.store is not None
    [opened] = await s.store.read_stream("account-ACC-1")
    assert opened.recorded_at == clock()


async def test_handling_without_a_store_says_what_to_pass() -> None:
    with pytest.raises(ConfigurationError, match="pass store="):
        await AggregateScenario(BankAccount, ACC).when_handling(
            DepositMoney(account_id="ACC-1", amount=usd(1)), deposit_money)


def test_an_async_function_given_to_when_is_refused() -> None:
    async def handler(_: BankAccount) -> None:
        return None

    with pytest.raises(ConfigurationError, match="when_handling"):
        account().when(handler)


# -- wrong expectations fail, saying what differs -------------------------------------------------


def failure(check: object) -> str:
    assert callable(check)
    with pytest.raises(AssertionError) as caught:
        check()
    return str(caught.value)


def test_other_events_fail_with_a_diff() -> None:
    s = account().given(OPENED).when(lambda a: a.withdraw(usd(30)))
    message = failure(lambda: s.then(MoneyWithdrawn(usd(300))))
    assert message.startswith("recorded events differ (- expected, + got):")
    assert "- MoneyWithdrawn(amount=Money(amount=Decimal('300.00')" in message
    assert "+ MoneyWithdrawn(amount=Money(amount=Decimal('30.00')" in message


def test_a_missing_event_fails_naming_it() -> None:
    s = account().given(OPENED).when(lambda a: a.withdraw(usd(30)))
    message = failure(lambda: s.then(MoneyWithdrawn(usd(30)), MoneyDeposited(usd(1))))
    assert "- MoneyDeposited(amount=Money(amount=Decimal('1.00')" in message
    assert "\n  + " not in message


def test_expecting_events_from_a_refused_command_shows_the_error() -> None:
    s = account().given(OPENED).when(lambda a: a.withdraw(usd(500)))
    message = failure(lambda: s.then(MoneyWithdrawn(usd(500))))
    assert "the command raised InsufficientFunds: account ACC-1 cannot pay" in message
    assert "expected it to record:\n  MoneyWithdrawn(" in message


def test_expecting_an_error_from_a_command_that_succeeded_lists_its_events() -> None:
    s = account().given(OPENED).when(lambda a: a.withdraw(usd(30)))
    message = failure(lambda: s.then_raises(InsufficientFunds))
    assert message.startswith("expected InsufficientFunds, but the command succeeded")
    assert "MoneyWithdrawn(amount=" in message


def test_another_error_type_fails_naming_both() -> None:
    s = account().when(lambda a: a.deposit(usd(1)))
    message = failure(lambda: s.then_raises(InsufficientFunds))
    assert "expected InsufficientFunds, but the command raised AccountNotOpen" in message


def test_a_message_that_does_not_match_fails_quoting_it() -> None:
    s = account().given(OPENED).when(lambda a: a.withdraw(usd(500)))
    message = failure(lambda: s.then_raises(InsufficientFunds, match="overdraft"))
    assert "does not match 'overdraft'" in message and "cannot pay" in message


def test_then_before_when_says_so() -> None:
    message = failure(lambda: account().given(OPENED).then())
    assert "no command has run yet" in message

"""The projection test kit: given events, then rows or a query's answer; and what it says
when an expectation is wrong."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from examples.bank.domain import AccountOpened, MoneyDeposited, MoneyWithdrawn
from examples.bank.projections import (
    AccountActivity,
    AccountSummary,
    AccountSummaryView,
    get_summary,
)
from examples.bank.wiring import bank_store
from invariant.domain import ConfigurationError, ProjectionFailedError
from invariant.store import AppendRequest, Commit, NewEvent
from invariant.testing import ManualClock, ProjectionScenario
from tests.money import usd

ACC = "account-ACC-1"


async def test_rows_reflect_the_given_events() -> None:
    async with ProjectionScenario(AccountSummary()) as s:
        await s.given(ACC, AccountOpened("USER-1", usd(100)), MoneyDeposited(usd(50)))
        await s.given("account-ACC-2", AccountOpened("USER-2", usd(7)))
        await s.then_rows("accounts", [
            {"account_id": "ACC-1", "balance": 15000, "transaction_count": 2},
            {"account_id": "ACC-2", "balance": 700, "transaction_count": 1},
        ])


async def test_given_and_then_alternate() -> None:
    async with ProjectionScenario(AccountSummary()) as s:
        await s.given(ACC, AccountOpened("USER-1", usd(100)))
        await s.then_rows("accounts", [{"balance": 10000}])
        await s.given(ACC, MoneyWithdrawn(usd(40)))
        await s.then_rows("accounts", [{"balance": 6000, "total_withdrawals": 4000}])


async def test_events_are_recorded_at_the_manual_clocks_time() -> None:
    clock = ManualClock()
    async with ProjectionScenario(AccountSummary(), clock=clock) as s:
        await s.given(ACC, AccountOpened("USER-1", usd(100)))
        clock.advance(hours=2)
        await s.given(ACC, MoneyDeposited(usd(1)))
        await s.then_query(lambda db: get_summary(db, "ACC-1"), AccountSummaryView(
            "ACC-1", "USER-1", "USD", Decimal("101.00"), Decimal("0.00"), Decimal("101.00"),
            2, clock()))


async def test_a_query_that_finds_nothing() -> None:
    async with ProjectionScenario(AccountSummary()) as s:
        await s.then_query(lambda db: get_summary(db, "ACC-1"), None)


async def test_the_applications_store_upcasts_what_was_stored_in_an_older_shape() -> None:
    async with ProjectionScenario(AccountActivity(), store=bank_store) as s:
        await s.given(ACC, AccountOpened("USER-1", usd(100)))
        legacy = NewEvent(uuid.uuid4(), "MoneyDeposited", 1, {"amount": 250})
        await s.storage.commit(Commit(appends=(AppendRequest(ACC, 1, (legacy,)),)))
        await s.then_rows("movements", [{"kind": "opened", "amount": 10000},
                                        {"kind": "deposit", "amount": 25000}])


# -- wrong expectations fail, saying what differs -------------------------------------------------


async def test_other_rows_fail_with_a_diff() -> None:
    async with ProjectionScenario(AccountSummary()) as s:
        await s.given(ACC, AccountOpened("USER-1", usd(100)))
        with pytest.raises(AssertionError) as caught:
            await s.then_rows("accounts", [{"account_id": "ACC-1", "balance": 999}])
    message = str(caught.value)
    assert message.startswith("rows of account_summary_accounts_v1 differ")
    assert "- {'account_id': 'ACC-1', 'balance': 999}" in message
    assert "+ {'account_id': 'ACC-1', 'balance': 10000}" in message


async def test_a_missing_row_fails_naming_it() -> None:
    async with ProjectionScenario(AccountSummary()) as s:
        await s.given(ACC, AccountOpened("USER-1", usd(100)))
        with pytest.raises(AssertionError, match=r"- \{'account_id': 'ACC-2'\}"):
            await s.then_rows("accounts", [{"account_id": "ACC-1"}, {"account_id": "ACC-2"}])


async def test_a_wrong_answer_fails_with_both_answers() -> None:
    async with ProjectionScenario(AccountSummary()) as s:
        await s.given(ACC, AccountOpened("USER-1", usd(100)))
        with pytest.raises(AssertionError) as caught:
            await s.then_query(lambda db: get_summary(db, "ACC-1"), None)
    assert "- None" in str(caught.value)
    assert "+ AccountSummaryView(account_id='ACC-1'" in str(caught.value)


async def test_an_unknown_table_or_column_says_what_there_is() -> None:
    async with ProjectionScenario(AccountSummary()) as s:
        with pytest.raises(ConfigurationError, match="its tables: account_summary_accounts_v1"):
            await s.then_rows("balances", [])
        with pytest.raises(ConfigurationError, match=r"no column\(s\) \['cents'\]"):
            await s.then_rows("accounts", [{"cents": 1}])


async def test_a_failing_handler_fails_at_once() -> None:
    async with ProjectionScenario(AccountSummary()) as s:
        await s.given(ACC, AccountOpened("USER-1", usd(100)))
        s.projection.apply = _broken  # type: ignore[method-assign]
        with pytest.raises(ProjectionFailedError):
            await s.then_rows("accounts", [])


def _broken(*_: object) -> None:
    raise RuntimeError("the handler is broken")


"""The bank's search model, as a specification: which tags an account's movements give it
(written with the projection test kit)."""

from __future__ import annotations

from examples.bank.domain import AccountOpened, MoneyDeposited, MoneyWithdrawn
from examples.bank.projections import AccountList, AccountSearch, search_accounts
from invariant.domain import Money
from invariant.testing import ProjectionScenario
from tests.money import usd

ACC = "account-ACC-1"


async def test_a_new_account_is_tagged_active_and_new() -> None:
    async with ProjectionScenario(AccountSearch()) as s:
        await s.given(ACC, AccountOpened("USER-1", usd(100)))
        await s.then_rows("accounts", [{"account_id": "ACC-1", "owner_name": "User USER-1",
                                        "tags": "active new-account"}])


async def test_crossing_10000_adds_high_balance_and_falling_back_removes_it() -> None:
    async with ProjectionScenario(AccountSearch()) as s:
        await s.given(ACC, AccountOpened("USER-1", usd(9000)), MoneyDeposited(usd("1000.01")))
        await s.then_rows("accounts", [{"tags": "active new-account high-balance"}])
        await s.then_query(lambda db: search_accounts(db, "high-balance"), ["ACC-1"])
        await s.given(ACC, MoneyWithdrawn(usd("0.01")))
        await s.then_rows("accounts", [{"balance": 1_000_000, "tags": "active new-account"}])
        await s.then_query(lambda db: search_accounts(db, "high-balance"), [])


async def test_movements_in_another_currency_leave_the_search_model_alone() -> None:
    async with ProjectionScenario(AccountSearch()) as s:
        await s.given(ACC, AccountOpened("USER-1", usd(100)),
                      MoneyDeposited(Money.of(20000, "EUR")))
        await s.then_rows("accounts", [{"currency": "USD", "balance": 10000,
                                        "tags": "active new-account"}])


async def test_the_list_model_keeps_one_row_per_currency() -> None:
    async with ProjectionScenario(AccountList()) as s:
        await s.given(ACC, AccountOpened("USER-1", usd(100)),
                      MoneyDeposited(Money.of(7, "EUR")), MoneyWithdrawn(usd(40)))
        await s.then_rows("accounts", [
            {"account_id": "ACC-1", "currency": "EUR", "balance": 700, "owner_id": "USER-1"},
            {"account_id": "ACC-1", "currency": "USD", "balance": 6000, "owner_id": "USER-1"},
        ])

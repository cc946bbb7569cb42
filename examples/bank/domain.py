"""Bank account domain: pure, standard library and the invariant domain kit only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from invariant.domain import (
    AggregateRoot,
    DomainError,
    DomainEvent,
    Identity,
    Money,
    applies,
)


@dataclass(frozen=True, slots=True)
class AccountId(Identity):
    """Identifies a bank account."""


@dataclass(frozen=True)
class AccountOpened(DomainEvent):
    owner_id: str
    initial_deposit: Money


@dataclass(frozen=True)
class MoneyDeposited(DomainEvent):
    """Schema v2: the amount carries its currency (v1 had a bare USD number)."""

    schema_version = 2
    amount: Money


@dataclass(frozen=True)
class MoneyWithdrawn(DomainEvent):
    amount: Money


class InsufficientFunds(DomainError):
    def __init__(self, account_id: AccountId, requested: Money, available: Money) -> None:
        self.requested = requested
        self.available = available
        super().__init__(
            f"account {account_id} cannot pay {requested}: only {available} available"
        )


class AccountNotOpen(DomainError):
    pass


class BankAccount(AggregateRoot[AccountId]):
    """An account holding balances in one or more currencies."""

    category = "account"
    snapshot_schema_version = 1

    def __init__(self, id: AccountId) -> None:
        super().__init__(id)
        self.owner_id: str | None = None
        self.balances: dict[str, Money] = {}
        self.transactions = 0

    # -- commands ---------------------------------------------------------------------------

    @classmethod
    def open(cls, id: AccountId, owner_id: str, initial_deposit: Money) -> BankAccount:
        account = cls(id)
        account.record(AccountOpened(owner_id, initial_deposit))
        return account

    def deposit(self, amount: Money) -> None:
        self._ensure_open()
        self.record(MoneyDeposited(amount))

    def withdraw(self, amount: Money) -> None:
        self._ensure_open()
        available = self.balance(amount.currency.code)
        if available < amount:
            raise InsufficientFunds(self.id, amount, available)
        self.record(MoneyWithdrawn(amount))

    def balance(self, currency: str = "USD") -> Money:
        return self.balances.get(currency) or Money.zero(currency)

    def _ensure_open(self) -> None:
        if self.owner_id is None:
            raise AccountNotOpen(f"account {self.id} is not open")

    # -- state ------------------------------------------------------------------------------

    @applies(AccountOpened)
    def _opened(self, event: AccountOpened) -> None:
        self.owner_id = event.owner_id
        self._credit(event.initial_deposit)

    @applies(MoneyDeposited)
    def _deposited(self, event: MoneyDeposited) -> None:
        amount = event.amount
        code = amount.currency.code
        current = self.balances.get(code)
        self.balances[code] = amount if current is None else current + amount
        self.transactions += 1

    @applies(MoneyWithdrawn)
    def _withdrawn(self, event: MoneyWithdrawn) -> None:
        amount = event.amount
        code = amount.currency.code
        self.balances[code] = self.balances[code] - amount
        self.transactions += 1

    def _credit(self, amount: Money) -> None:
        code = amount.currency.code
        current = self.balances.get(code)
        self.balances[code] = amount if current is None else current + amount
        self.transactions += 1

    # -- snapshots --------------------------------------------------------------------------

    def to_snapshot(self) -> Mapping[str, Any]:
        return {
            "owner_id": self.owner_id,
            "balances": {code: str(m.amount) for code, m in self.balances.items()},
            "transactions": self.transactions,
        }

    @classmethod
    def from_snapshot(cls, id: AccountId, state: Mapping[str, Any]) -> BankAccount:
        account = cls(id)
        account.owner_id = state["owner_id"]
        account.balances = {c: Money.of(a, c) for c, a in state["balances"].items()}
        account.transactions = state["transactions"]
        return account


EVENTS = (AccountOpened, MoneyDeposited, MoneyWithdrawn)

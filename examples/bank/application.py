"""Bank use cases: commands, queries and their handlers (the application layer)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from examples.bank.domain import AccountId, BankAccount
from invariant.application import Command, Query, UnitOfWork
from invariant.application.unit_of_work import Aggregates
from invariant.domain import FieldError, Money, ValidationError


@dataclass(frozen=True, kw_only=True)
class OpenAccount(Command[str]):
    account_id: str
    owner_id: str
    initial_deposit: Money

    def validate(self) -> None:
        problems = []
        if not self.account_id.strip():
            problems.append(FieldError("account_id", "is required", "required"))
        if not self.owner_id.strip():
            problems.append(FieldError("owner_id", "is required", "required"))
        if problems:
            raise ValidationError(problems, subject="OpenAccount")


@dataclass(frozen=True, kw_only=True)
class DepositMoney(Command[str]):
    account_id: str
    amount: Money


@dataclass(frozen=True, kw_only=True)
class WithdrawMoney(Command[str]):
    account_id: str
    amount: Money


@dataclass(frozen=True)
class GetAccountSummary(Query):
    account_id: str


@dataclass(frozen=True)
class AccountSummary:
    """A DTO: what a client sees of an account."""

    account_id: str
    owner_id: str
    balances: dict[str, Decimal]
    transactions: int
    version: int


async def open_account(command: OpenAccount, uow: UnitOfWork) -> str:
    uow.add(BankAccount.open(AccountId(command.account_id), command.owner_id,
                             command.initial_deposit))
    return command.account_id


async def deposit_money(command: DepositMoney, uow: UnitOfWork) -> str:
    account = await uow.get(BankAccount, AccountId(command.account_id))
    account.deposit(command.amount)
    return str(account.balance(command.amount.currency.code).amount)


async def withdraw_money(command: WithdrawMoney, uow: UnitOfWork) -> str:
    account = await uow.get(BankAccount, AccountId(command.account_id))
    account.withdraw(command.amount)
    return str(account.balance(command.amount.currency.code).amount)


COMMANDS = (OpenAccount, DepositMoney, WithdrawMoney)
COMMAND_HANDLERS = {
    OpenAccount: open_account,
    DepositMoney: deposit_money,
    WithdrawMoney: withdraw_money,
}


def query_handlers(aggregates: Aggregates) -> dict[type[Query], object]:
    """Query handlers with their dependencies bound (the bootstrap passes them in)."""

    async def account_summary(query: GetAccountSummary) -> AccountSummary:
        account = await aggregates.repository(BankAccount).load(AccountId(query.account_id))
        return AccountSummary(
            query.account_id, account.owner_id or "",
            {code: money.amount for code, money in account.balances.items()},
            account.transactions, account.version,
        )

    return {GetAccountSummary: account_summary}

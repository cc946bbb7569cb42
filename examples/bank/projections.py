"""Read models of the bank (seed examples 65, 68 and 70), built from one event stream.

* ``account_summary`` — the detail model: totals, balance, count, last activity;
* ``account_list``    — the list model: an owner's accounts and balances;
* ``account_search``  — the search model: denormalized owner name and tags;
* ``account_activity``— one row per movement, keyed by position (it can rebuild from one).

Amounts are stored in minor units (cents) so that totals are exact SQL sums on every backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    func,
    select,
    update,
)

from examples.bank.domain import AccountOpened, MoneyDeposited, MoneyWithdrawn
from examples.bank.wiring import bank_store
from invariant.clock import from_micros, to_micros
from invariant.config import Settings
from invariant.domain import Currency, Money
from invariant.operable import Parts
from invariant.projections import Projection, ProjectionSet, ReadModelDatabase
from invariant.store import EventEnvelope, EventStorage

HIGH_BALANCE = Decimal("10000")


def account_of(envelope: EventEnvelope) -> str:
    """``account-ACC-001`` -> ``ACC-001``."""
    return envelope.stream_id.split("-", 1)[1]


def minor(money: Money) -> int:
    return int(money.amount.scaleb(money.currency.minor_units))


def major(units: int, currency: str) -> Decimal:
    return Decimal(units).scaleb(-Currency.of(currency).minor_units)


def _movement(envelope: EventEnvelope) -> tuple[str, Money]:
    match envelope.event:
        case AccountOpened(initial_deposit=amount):
            return "opened", amount
        case MoneyDeposited(amount=amount):
            return "deposit", amount
        case MoneyWithdrawn(amount=amount):
            return "withdrawal", amount
    raise TypeError(f"not a movement: {envelope.event_type}")


# -- the detail model (seed example 65) ------------------------------------------------------


class AccountSummary(Projection):
    """Per account and currency: deposits, withdrawals, balance, transactions, activity."""

    name = "account_summary"
    event_types = (AccountOpened, MoneyDeposited, MoneyWithdrawn)

    def define(self, metadata: MetaData) -> None:
        self.accounts = Table(
            self.table_name("accounts"), metadata,
            Column("account_id", String(64), primary_key=True),
            Column("currency", String(3), primary_key=True),
            Column("owner_id", String(64), nullable=False),
            Column("total_deposits", BigInteger, nullable=False),
            Column("total_withdrawals", BigInteger, nullable=False),
            Column("balance", BigInteger, nullable=False),
            Column("transaction_count", Integer, nullable=False),
            Column("last_activity", BigInteger, nullable=False),
        )

    def apply(self, envelope: EventEnvelope, conn: Connection) -> None:
        t = self.accounts
        account, (kind, amount) = account_of(envelope), _movement(envelope)
        cents, code, when = minor(amount), amount.currency.code, to_micros(envelope.recorded_at)
        key = (t.c.account_id == account) & (t.c.currency == code)
        exists = conn.execute(select(t.c.owner_id).where(key)).first()
        if exists is None:
            owner = (envelope.event.owner_id if isinstance(envelope.event, AccountOpened)
                     else self._owner(conn, account))
            conn.execute(t.insert().values(
                account_id=account, currency=code, owner_id=owner, total_deposits=0,
                total_withdrawals=0, balance=0, transaction_count=0, last_activity=when,
            ))
        out = kind == "withdrawal"
        conn.execute(update(t).where(key).values(
            total_deposits=t.c.total_deposits + (0 if out else cents),
            total_withdrawals=t.c.total_withdrawals + (cents if out else 0),
            balance=t.c.balance + (-cents if out else cents),
            transaction_count=t.c.transaction_count + 1,
            last_activity=when,
        ))

    def _owner(self, conn: Connection, account: str) -> str:
        row = conn.execute(select(self.accounts.c.owner_id)
                           .where(self.accounts.c.account_id == account)).first()
        return "" if row is None else str(row[0])

    def cache_tags(self, envelope: EventEnvelope) -> Iterable[str]:
        return (f"account:{account_of(envelope)}", "volume")


@dataclass(frozen=True)
class AccountSummaryView:
    """What a client sees of one account in one currency."""

    account_id: str
    owner_id: str
    currency: str
    total_deposits: Decimal
    total_withdrawals: Decimal
    current_balance: Decimal
    transaction_count: int
    last_activity: datetime


def _summary_table(conn: Connection) -> Table:
    return AccountSummary.serving(conn).accounts


async def get_summary(database: ReadModelDatabase, account_id: str, currency: str = "USD"
                      ) -> AccountSummaryView | None:
    """The summary of one account (seed: ``projection.getSummary``)."""

    def query(conn: Connection) -> AccountSummaryView | None:
        t = _summary_table(conn)
        row = conn.execute(select(t).where(t.c.account_id == account_id,
                                           t.c.currency == currency)).first()
        if row is None:
            return None
        r = row._mapping
        return AccountSummaryView(
            r["account_id"], r["owner_id"], currency, major(r["total_deposits"], currency),
            major(r["total_withdrawals"], currency), major(r["balance"], currency),
            r["transaction_count"], from_micros(r["last_activity"]),
        )

    return await database.run(query, write=False)


async def active_accounts(database: ReadModelDatabase, since: datetime) -> list[str]:
    """Accounts with activity at or after ``since`` (seed: ``getActiveAccounts``)."""

    def query(conn: Connection) -> list[str]:
        t = _summary_table(conn)
        rows = conn.execute(select(t.c.account_id).distinct()
                            .where(t.c.last_activity >= to_micros(since))
                            .order_by(t.c.account_id))
        return [r[0] for r in rows]

    return await database.run(query, write=False)


async def total_volume(database: ReadModelDatabase, currency: str = "USD"
                       ) -> dict[str, Decimal]:
    """Deposits and withdrawals over every account (seed: ``getTotalVolume``)."""

    def query(conn: Connection) -> dict[str, Decimal]:
        t = _summary_table(conn)
        row = conn.execute(select(func.coalesce(func.sum(t.c.total_deposits), 0),
                                  func.coalesce(func.sum(t.c.total_withdrawals), 0))
                           .where(t.c.currency == currency)).one()
        return {"deposits": major(int(row[0]), currency),
                "withdrawals": major(int(row[1]), currency)}

    return await database.run(query, write=False)


# -- the list model (seed example 68) --------------------------------------------------------


class AccountList(Projection):
    """An owner's accounts: balance per currency and status."""

    name = "account_list"
    event_types = (AccountOpened, MoneyDeposited, MoneyWithdrawn)

    def define(self, metadata: MetaData) -> None:
        self.accounts = Table(
            self.table_name("accounts"), metadata,
            Column("account_id", String(64), primary_key=True),
            Column("currency", String(3), primary_key=True),
            Column("owner_id", String(64), nullable=False, index=True),
            Column("balance", BigInteger, nullable=False),
            Column("status", String(16), nullable=False),
        )

    def apply(self, envelope: EventEnvelope, conn: Connection) -> None:
        t, account = self.accounts, account_of(envelope)
        kind, amount = _movement(envelope)
        cents, code = minor(amount), amount.currency.code
        key = (t.c.account_id == account) & (t.c.currency == code)
        if conn.execute(select(t.c.balance).where(key)).first() is None:
            owner = conn.execute(select(t.c.owner_id).where(t.c.account_id == account)
                                 ).scalar()
            if isinstance(envelope.event, AccountOpened):
                owner = envelope.event.owner_id
            conn.execute(t.insert().values(account_id=account, currency=code,
                                           owner_id=owner or "", balance=0, status="active"))
        delta = -cents if kind == "withdrawal" else cents
        conn.execute(update(t).where(key).values(balance=t.c.balance + delta))

    def cache_tags(self, envelope: EventEnvelope) -> Iterable[str]:
        return (f"account:{account_of(envelope)}",)


async def accounts_of_owner(database: ReadModelDatabase, owner_id: str
                            ) -> list[dict[str, object]]:
    """The owner's accounts (seed: ``getAccountList``)."""

    def query(conn: Connection) -> list[dict[str, object]]:
        t = AccountList.serving(conn).accounts
        rows = conn.execute(select(t).where(t.c.owner_id == owner_id)
                            .order_by(t.c.account_id, t.c.currency))
        return [{"account_id": r.account_id, "currency": r.currency,
                 "balance": major(r.balance, r.currency), "status": r.status} for r in rows]

    return await database.run(query, write=False)


# -- the search model (seed example 68) ------------------------------------------------------


class AccountSearch(Projection):
    """Accounts findable by id, owner name or tag (``active``, ``new-account``,
    ``high-balance`` above 10,000 in the account's currency)."""

    name = "account_search"
    event_types = (AccountOpened, MoneyDeposited, MoneyWithdrawn)

    def define(self, metadata: MetaData) -> None:
        self.accounts = Table(
            self.table_name("accounts"), metadata,
            Column("account_id", String(64), primary_key=True),
            Column("owner_id", String(64), nullable=False),
            Column("owner_name", String(128), nullable=False),
            Column("currency", String(3), nullable=False),
            Column("balance", BigInteger, nullable=False),
            Column("tags", String(256), nullable=False),
        )

    def apply(self, envelope: EventEnvelope, conn: Connection) -> None:
        t, account, event = self.accounts, account_of(envelope), envelope.event
        if isinstance(event, AccountOpened):
            money = event.initial_deposit
            conn.execute(t.insert().values(
                account_id=account, owner_id=event.owner_id,
                owner_name=f"User {event.owner_id}", currency=money.currency.code,
                balance=minor(money), tags=_tags(money.amount, ["active", "new-account"]),
            ))
            return
        kind, money = _movement(envelope)
        row = conn.execute(select(t.c.balance, t.c.currency, t.c.tags)
                           .where(t.c.account_id == account)).first()
        if row is None or row.currency != money.currency.code:
            return  # the model searches the account's opening currency only
        balance = row.balance + (-minor(money) if kind == "withdrawal" else minor(money))
        conn.execute(update(t).where(t.c.account_id == account).values(
            balance=balance,
            tags=_tags(major(balance, row.currency), row.tags.split()),
        ))


def _tags(balance: Decimal, tags: list[str]) -> str:
    kept = [t for t in tags if t != "high-balance"]
    return " ".join([*kept, "high-balance"] if balance > HIGH_BALANCE else kept)


async def search_accounts(database: ReadModelDatabase, text: str) -> list[str]:
    """Account ids matching ``text`` in id, owner name or tags (seed: ``searchAccounts``)."""
    needle = f"%{text.lower()}%"

    def query(conn: Connection) -> list[str]:
        t = AccountSearch.serving(conn).accounts
        rows = conn.execute(select(t.c.account_id).where(
            func.lower(t.c.account_id).like(needle) | func.lower(t.c.owner_name).like(needle)
            | t.c.tags.like(needle)
        ).order_by(t.c.account_id))
        return [r[0] for r in rows]

    return await database.run(query, write=False)


# -- movements, by position ------------------------------------------------------------------


class AccountActivity(Projection):
    """Every movement as a row keyed by its position: rebuildable from any position."""

    name = "account_activity"
    event_types = (AccountOpened, MoneyDeposited, MoneyWithdrawn)

    def define(self, metadata: MetaData) -> None:
        self.movements = Table(
            self.table_name("movements"), metadata,
            Column("position", BigInteger, primary_key=True, autoincrement=False),
            Column("account_id", String(64), nullable=False, index=True),
            Column("kind", String(16), nullable=False),
            Column("currency", String(3), nullable=False),
            Column("amount", BigInteger, nullable=False),
            Column("recorded_at", BigInteger, nullable=False),
        )

    def apply_batch(self, envelopes: Sequence[EventEnvelope], conn: Connection) -> None:
        rows = []
        for e in envelopes:
            kind, money = _movement(e)
            rows.append({"position": e.position, "account_id": account_of(e), "kind": kind,
                         "currency": money.currency.code, "amount": minor(money),
                         "recorded_at": to_micros(e.recorded_at)})
        conn.execute(self.movements.insert(), rows)

    def reset(self, conn: Connection, after: int) -> None:
        conn.execute(self.movements.delete().where(self.movements.c.position > after))


def bank_projections() -> list[Projection]:
    return [AccountSummary(), AccountList(), AccountSearch(), AccountActivity()]


class BankOperations:
    """The bank as ``invariant``'s operator commands see it
    (``INVARIANT_APP=examples.bank.projections:operations``)."""

    def settings(self) -> Settings:
        """The bank keeps its data where the ``INVARIANT_*`` settings say."""
        return Settings.from_env()

    def parts(self, storage: EventStorage, database: ReadModelDatabase) -> Parts:
        """The read models above, on the bank's event store."""
        return Parts(projections=ProjectionSet(bank_store(storage), bank_projections()))


operations = BankOperations()

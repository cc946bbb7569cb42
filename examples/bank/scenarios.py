"""The seed's bank scenarios (examples 61-64), runnable on any backend.

Each scenario returns the figures it printed, so the tests assert exactly what users see.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from examples.bank.domain import (
    AccountId,
    AccountOpened,
    BankAccount,
    InsufficientFunds,
    MoneyDeposited,
    MoneyWithdrawn,
)
from examples.bank.wiring import bank_store
from invariant.application import Aggregates, UnitOfWork
from invariant.clock import utc_now
from invariant.domain import Money
from invariant.store import AppendRequest, Commit, EventEnvelope, NewEvent, StreamState
from invariant.store.port import EventStorage

Say = Callable[[str], None]


def usd(amount: int | str) -> Money:
    return Money.of(amount, "USD")


@dataclass
class Outcome:
    figures: dict[str, Any]


async def _open(aggs: Aggregates, account_id: AccountId, amount: Money) -> None:
    async def command(uow: UnitOfWork) -> None:
        uow.add(BankAccount.open(account_id, "USER-123", amount))

    await aggs.run(command)


async def _deposit(aggs: Aggregates, account_id: AccountId, amount: Money) -> None:
    async def command(uow: UnitOfWork) -> None:
        (await uow.get(BankAccount, account_id)).deposit(amount)

    await aggs.run(command)


async def _withdraw(aggs: Aggregates, account_id: AccountId, amount: Money) -> None:
    async def command(uow: UnitOfWork) -> None:
        (await uow.get(BankAccount, account_id)).withdraw(amount)

    await aggs.run(command)


async def event_store_basics(storage: EventStorage, say: Say) -> Outcome:
    """Example 61: open, deposit, withdraw; rebuild from events; insufficient funds."""
    aggs = Aggregates(bank_store(storage), cache_size=0)
    account_id = AccountId("ACC-001")
    await _open(aggs, account_id, usd(1000))
    await _deposit(aggs, account_id, usd(500))
    await _withdraw(aggs, account_id, usd(200))
    rebuilt = await aggs.repository(BankAccount).load(account_id)
    say(f"account {account_id}: opened with 1000.00, deposited 500.00, withdrew 200.00")
    say(f"rebuilt from {rebuilt.version} events: balance {rebuilt.balance()}")
    refused = ""
    try:
        await _withdraw(aggs, account_id, usd(5000))
    except InsufficientFunds as exc:
        refused = str(exc)
        say(f"withdrawing 5000.00 is refused: {exc}")
    after = await aggs.repository(BankAccount).load(account_id)
    return Outcome({"balance": rebuilt.balance(), "version": rebuilt.version,
                    "refused": refused, "version_after_refusal": after.version})


async def snapshots(storage: EventStorage, say: Say) -> Outcome:
    """Example 62: 250 events, a snapshot every 100 events crossed, load = snapshot + tail."""
    aggs = Aggregates(bank_store(storage), snapshots={BankAccount: 100}, cache_size=0)
    account_id = AccountId("ACC-SNAP")
    await _open(aggs, account_id, usd(1000))
    for _ in range(249):
        await _deposit(aggs, account_id, usd(10))
    snap = await storage.read_snapshot(f"account-{account_id}")
    assert snap is not None
    loaded = await aggs.repository(BankAccount).load_tracked(account_id)
    assert loaded is not None
    tail = loaded.aggregate.version - loaded.snapshot_version
    say(f"250 events stored; latest snapshot at version {snap.version}")
    say(f"loaded from the snapshot plus {tail} newer events: balance "
        f"{loaded.aggregate.balance()}, version {loaded.aggregate.version}")

    # A commit of several events that jumps over the threshold still snapshots.
    async def burst(uow: UnitOfWork) -> None:
        account = await uow.get(BankAccount, account_id)
        for _ in range(60):
            account.deposit(usd(1))

    await aggs.run(burst)
    jumped = await storage.read_snapshot(f"account-{account_id}")
    assert jumped is not None
    say(f"a 60-event commit from version 250 crossed the threshold: snapshot at {jumped.version}")
    return Outcome({"snapshot_version": snap.version, "tail": tail,
                    "balance": loaded.aggregate.balance(), "version": loaded.aggregate.version,
                    "snapshot_after_burst": jumped.version})


def balance_history(envelopes: list[EventEnvelope]) -> list[tuple[datetime, Money]]:
    """The balance after each change (example 63's history, withdrawals included)."""
    history: list[tuple[datetime, Money]] = []
    balance: Money | None = None
    for envelope in envelopes:
        event = envelope.event
        if isinstance(event, AccountOpened):
            balance = event.initial_deposit
        elif isinstance(event, MoneyDeposited) and balance is not None:
            balance = balance + event.amount
        elif isinstance(event, MoneyWithdrawn) and balance is not None:
            balance = balance - event.amount
        if balance is not None:
            history.append((envelope.recorded_at, balance))
    return history


async def temporal(storage: EventStorage, say: Say,
                   tick: Callable[[], Any] | None = None) -> Outcome:
    """Example 63: balance as of a time and a version; history between two times."""

    async def pause() -> datetime:
        if tick is not None:
            tick()
        else:
            await asyncio.sleep(0.01)
        clock: Callable[[], datetime] = getattr(storage, "clock", utc_now)
        return clock()

    store = bank_store(storage)
    aggs = Aggregates(store, cache_size=0)
    account_id = AccountId("ACC-TIME")
    start = await pause()
    await _open(aggs, account_id, usd(1000))
    await pause()
    await _deposit(aggs, account_id, usd(500))
    midpoint = await pause()
    await pause()
    await _withdraw(aggs, account_id, usd(200))
    end = await pause()
    repo = aggs.repository(BankAccount)
    at_mid = await repo.load_at(account_id, as_of=midpoint)
    at_v1 = await repo.load_at(account_id, version=1)
    now = await repo.load(account_id)
    history = balance_history(
        await store.history_between(f"account-{account_id}", start, end)
    )
    say(f"balance at the midpoint: {at_mid.balance()}; at version 1: {at_v1.balance()}; "
        f"now: {now.balance()}")
    for moment, balance in history:
        say(f"  {moment.isoformat()}  {balance}")
    return Outcome({"midpoint": at_mid.balance(), "version_1": at_v1.balance(),
                    "current": now.balance(), "history": [b for _, b in history]})


async def upcasting(storage: EventStorage, say: Say) -> Outcome:
    """Example 64: a stored MoneyDeposited v1 (no currency) is read as v2 in USD."""
    aggs = Aggregates(bank_store(storage), cache_size=0)
    account_id = AccountId("ACC-MULTI")
    await _open(aggs, account_id, usd(0))
    legacy = NewEvent(uuid.uuid4(), "MoneyDeposited", 1,
                      {"account_id": str(account_id), "amount": 1000})
    await storage.commit(Commit(appends=(
        AppendRequest(f"account-{account_id}", StreamState.ANY, (legacy,)),
    )))
    reloaded = await aggs.repository(BankAccount).load(account_id)
    say(f"a v1 deposit stored without currency reads as {reloaded.balance('USD')}")
    await _deposit(aggs, account_id, Money.of(500, "EUR"))
    final = await aggs.repository(BankAccount).load(account_id)
    say(f"after a v2 deposit of 500.00 EUR the balances are {final.balance('USD')} and "
        f"{final.balance('EUR')}")
    return Outcome({"usd": final.balance("USD"), "eur": final.balance("EUR")})


async def commands_and_read_models(storage: EventStorage, say: Say) -> Outcome:
    """Examples 65-67: commands through the bus, the account summary read model kept by a
    live projection runner, and a read-your-writes wait; wired by one bootstrap."""
    from examples.bank.application import (
        COMMAND_HANDLERS,
        COMMANDS,
        DepositMoney,
        OpenAccount,
        WithdrawMoney,
    )
    from examples.bank.domain import EVENTS
    from examples.bank.projections import bank_projections, get_summary, total_volume
    from examples.bank.wiring import upcasters
    from invariant import Settings, bootstrap
    from invariant.store import MemoryStorage

    if isinstance(storage, MemoryStorage):
        say("skipped: SQL read models need SQLite or PostgreSQL")
        return Outcome({})
    app = bootstrap(Settings(), storage=storage, events=EVENTS, upcasters=upcasters(),
                    command_handlers=COMMAND_HANDLERS, commands=COMMANDS,
                    projections=bank_projections())
    async with app:
        await app.commands.dispatch(OpenAccount(account_id="ACC-P1", owner_id="USER-001",
                                                initial_deposit=usd(1000)))
        deposit = DepositMoney(account_id="ACC-P1", amount=usd(500))
        await app.commands.dispatch(deposit)
        again = await app.commands.dispatch(deposit)  # sent twice: handled once
        await app.commands.dispatch(WithdrawMoney(account_id="ACC-P1", amount=usd(200)))
        await app.commands.dispatch(OpenAccount(account_id="ACC-P2", owner_id="USER-002",
                                                initial_deposit=usd(2000)))
        last = await app.commands.dispatch(DepositMoney(account_id="ACC-P2", amount=usd(300)))
        assert app.projections is not None and app.read_models is not None
        await app.projections.wait_until("account_summary", last.position, timeout=10)
        summary = await get_summary(app.read_models, "ACC-P1")
        volume = await total_volume(app.read_models)
    assert summary is not None
    say(f"a deposit sent twice was handled once (duplicate={again.duplicate})")
    say(f"ACC-P1 summary: deposits {summary.total_deposits}, withdrawals "
        f"{summary.total_withdrawals}, balance {summary.current_balance}, "
        f"{summary.transaction_count} transactions")
    say(f"read model caught up to position {last.position}; volume of every USD account "
        f"in this database: deposits {volume['deposits']}, withdrawals "
        f"{volume['withdrawals']}")
    return Outcome({"deposits": summary.total_deposits, "withdrawals": summary.total_withdrawals,
                    "balance": summary.current_balance, "count": summary.transaction_count,
                    "duplicate": again.duplicate, "volume": volume})


SCENARIOS = {
    "event store (seed example 61)": event_store_basics,
    "snapshots (seed example 62)": snapshots,
    "temporal queries (seed example 63)": temporal,
    "upcasting (seed example 64)": upcasting,
    "commands and read models (seed examples 65-67)": commands_and_read_models,
}

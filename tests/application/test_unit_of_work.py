"""Unit of work and repositories on every backend: one command, one transaction."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from examples.bank.domain import AccountId, BankAccount, InsufficientFunds
from examples.bank.wiring import bank_store
from invariant.application import Aggregates, UnitOfWork, unit_of_work
from invariant.domain import AggregateNotFoundError, ConcurrencyError
from invariant.store import EventStore
from tests.garbage import cyclic_garbage
from tests.money import usd

USD = "USD"


async def open_account(aggs: Aggregates, balance: int = 1000) -> AccountId:
    account_id = AccountId.new()

    async def command(uow: UnitOfWork) -> None:
        uow.add(BankAccount.open(account_id, "USER-1", usd(balance)))

    await aggs.run(command)
    return account_id


def deposit(account_id: AccountId, amount: int) -> Any:
    async def command(uow: UnitOfWork) -> int:
        account = await uow.get(BankAccount, account_id)
        await asyncio.sleep(0)  # let concurrent commands interleave, as real handlers do
        account.deposit(usd(amount))
        return account.version

    return command


def withdraw(account_id: AccountId, amount: int) -> Any:
    async def command(uow: UnitOfWork) -> None:
        (await uow.get(BankAccount, account_id)).withdraw(usd(amount))

    return command


async def test_a_command_commits_events_and_outbox_rows_together(any_storage: Any) -> None:
    aggs = Aggregates(bank_store(any_storage))
    account_id = await open_account(aggs)
    outcome = await aggs.run(deposit(account_id, 500), metadata={"correlation_id": "req-1"})
    assert outcome.value == 2
    assert outcome.result.version_of(f"account-{account_id}") == 2
    assert outcome.position == 2
    envelopes = await aggs.store.read_stream(f"account-{account_id}")
    assert [e.event_type for e in envelopes] == ["AccountOpened", "MoneyDeposited"]
    assert envelopes[1].correlation_id == "req-1"
    outbox = await any_storage.read_outbox(limit=10)
    assert [r.message_id for r in outbox] == [e.event_id for e in envelopes]


async def test_the_seed_account_balance_is_rebuilt_from_its_events(any_storage: Any) -> None:
    aggs = Aggregates(bank_store(any_storage), cache_size=0)
    account_id = await open_account(aggs, 1000)
    await aggs.run(deposit(account_id, 500))

    await aggs.run(withdraw(account_id, 200))
    account = await aggs.repository(BankAccount).load(account_id)
    assert account.balance() == usd(1300)
    assert account.version == 3


async def test_a_refused_command_writes_nothing(any_storage: Any) -> None:
    aggs = Aggregates(bank_store(any_storage))
    account_id = await open_account(aggs, 100)

    with pytest.raises(InsufficientFunds, match=r"only 100\.00 USD available"):
        await aggs.run(withdraw(account_id, 101))
    assert await any_storage.stream_version(f"account-{account_id}") == 1
    account = await aggs.repository(BankAccount).load(account_id)
    assert account.balance() == usd(100)


async def test_opening_the_same_account_twice_is_a_conflict(any_storage: Any) -> None:
    aggs = Aggregates(bank_store(any_storage))
    account_id = await open_account(aggs)

    async def reopen(uow: UnitOfWork) -> None:
        uow.add(BankAccount.open(account_id, "USER-2", usd(1)))

    with pytest.raises(ConcurrencyError) as caught:
        await aggs.run(reopen)
    assert (caught.value.expected, caught.value.actual) == (0, 1)


async def test_loading_a_missing_aggregate_says_which(any_storage: Any) -> None:
    aggs = Aggregates(bank_store(any_storage))
    missing = AccountId("nope")
    with pytest.raises(AggregateNotFoundError, match=r"BankAccount 'nope' does not exist$"):
        await aggs.run(deposit(missing, 1))
    assert await aggs.repository(BankAccount).find(missing) is None


async def test_concurrent_commands_conflict_and_retries_resolve_them(any_storage: Any) -> None:
    aggs = Aggregates(bank_store(any_storage))
    account_id = await open_account(aggs, 0)
    processes = [Aggregates(bank_store(any_storage)) for _ in range(20)]
    outcomes = await asyncio.gather(
        *[process.run(deposit(account_id, 10), retries=50) for process in processes]
    )
    assert sum(o.retries for o in outcomes) > 0, "the commands should have raced"
    account = await Aggregates(aggs.store, cache_size=0).repository(BankAccount).load(account_id)
    assert account.balance() == usd(200)
    assert account.version == 21


async def test_commands_of_one_process_on_one_aggregate_take_turns_instead_of_racing(
        any_storage: Any) -> None:
    aggs = Aggregates(bank_store(any_storage))
    account_id = await open_account(aggs, 0)
    outcomes = await asyncio.gather(*[aggs.run(deposit(account_id, 10)) for _ in range(20)])
    assert [o.retries for o in outcomes] == [0] * 20  # none lost a race, none raised
    assert sorted(o.value for o in outcomes) == list(range(2, 22))  # each after the one before
    assert len(aggs.claims) == 0  # every stream let go
    account = await Aggregates(aggs.store, cache_size=0).repository(BankAccount).load(account_id)
    assert (account.version, account.balance()) == (21, usd(200))


@pytest.mark.parametrize("in_a_task", [False, True])
async def test_a_command_run_inside_another_on_the_same_aggregate_does_not_wait_for_it(
        any_storage: Any, monkeypatch: pytest.MonkeyPatch, in_a_task: bool) -> None:
    # Waiting would never end (the outer command waits for the inner): the test would hang.
    monkeypatch.setattr(unit_of_work, "WAIT_AT_MOST", 3600.0)
    aggs = Aggregates(bank_store(any_storage))
    account_id = await open_account(aggs, 0)

    async def outer(uow: UnitOfWork) -> int:
        (await uow.get(BankAccount, account_id)).deposit(usd(1))
        inner = aggs.run(deposit(account_id, 5))  # waiting for the outer one would hang
        return (await (asyncio.create_task(inner) if in_a_task else inner)).value

    with pytest.raises(ConcurrencyError):  # the inner one committed first, in both attempts
        await aggs.run(outer)
    account = await Aggregates(aggs.store, cache_size=0).repository(BankAccount).load(account_id)
    assert (account.version, account.balance()) == (3, usd(10))
    assert len(aggs.claims) == 0


async def test_without_retries_a_lost_race_raises(any_storage: Any) -> None:
    aggs = Aggregates(bank_store(any_storage))
    account_id = await open_account(aggs, 0)
    processes = [Aggregates(bank_store(any_storage)) for _ in range(5)]
    results = await asyncio.gather(
        *[process.run(deposit(account_id, 10)) for process in processes],
        return_exceptions=True,
    )
    assert any(isinstance(r, ConcurrencyError) for r in results)
    wins = [r for r in results if not isinstance(r, BaseException)]
    account = await Aggregates(aggs.store, cache_size=0).repository(BankAccount).load(account_id)
    assert account.balance() == usd(10 * len(wins))


async def test_the_cache_catches_up_with_events_written_elsewhere(any_storage: Any) -> None:
    aggs = Aggregates(bank_store(any_storage))
    account_id = await open_account(aggs, 100)
    await aggs.run(deposit(account_id, 1))  # now cached at version 2
    assert len(aggs.cache) == 1
    other_process = Aggregates(bank_store(any_storage), cache_size=0)
    await other_process.run(deposit(account_id, 50))
    outcome = await aggs.run(deposit(account_id, 7))
    assert outcome.value == 4
    fresh = await other_process.repository(BankAccount).load(account_id)
    assert fresh.balance() == usd(158)


async def test_a_failed_command_does_not_leave_its_changes_in_the_cache(any_storage: Any) -> None:
    aggs = Aggregates(bank_store(any_storage))
    account_id = await open_account(aggs, 100)

    async def deposit_then_fail(uow: UnitOfWork) -> None:
        (await uow.get(BankAccount, account_id)).deposit(usd(1000))
        raise RuntimeError("the handler failed after changing the aggregate")

    with pytest.raises(RuntimeError):
        await aggs.run(deposit_then_fail)
    await aggs.run(deposit(account_id, 1))
    account = await aggs.repository(BankAccount).load(account_id)
    assert account.balance() == usd(101)


async def test_one_unit_of_work_commits_several_aggregates_atomically(any_storage: Any) -> None:
    aggs = Aggregates(bank_store(any_storage))
    source = await open_account(aggs, 100)
    target = await open_account(aggs, 0)

    async def transfer(uow: UnitOfWork) -> None:
        (await uow.get(BankAccount, source)).withdraw(usd(40))
        (await uow.get(BankAccount, target)).deposit(usd(40))

    outcome = await aggs.run(transfer)
    assert len(outcome.result.streams) == 2
    repo = Aggregates(aggs.store, cache_size=0).repository(BankAccount)
    assert (await repo.load(source)).balance() == usd(60)
    assert (await repo.load(target)).balance() == usd(40)


async def test_a_unit_of_work_commits_once(any_storage: Any) -> None:
    aggs = Aggregates(bank_store(any_storage))
    uow = aggs.unit_of_work()
    uow.add(BankAccount.open(AccountId.new(), "U", usd(1)))
    await uow.commit()
    with pytest.raises(Exception, match="committed already"):
        await uow.commit()


def test_event_store_type() -> None:
    from invariant.store import MemoryStorage

    assert isinstance(bank_store(MemoryStorage()), EventStore)


async def test_a_stale_cached_aggregate_costs_one_silent_fresh_attempt(any_storage: Any) -> None:
    aggs = Aggregates(bank_store(any_storage))
    account_id = await open_account(aggs, 100)
    await aggs.run(deposit(account_id, 1))  # cached at version 2
    await Aggregates(bank_store(any_storage), cache_size=0).run(deposit(account_id, 50))
    outcome = await aggs.run(deposit(account_id, 7))  # retries=0: the refresh is free
    assert (outcome.value, outcome.retries) == (4, 0)
    assert await any_storage.stream_version(f"account-{account_id}") == 4


async def test_a_rule_refusing_what_a_stale_cached_aggregate_shows_is_decided_again(
    any_storage: Any,
) -> None:
    """Another process deposited since this one cached the account: a withdrawal that the
    cached balance cannot cover but the stored one can is decided on the stored state."""
    aggs = Aggregates(bank_store(any_storage))
    account_id = await open_account(aggs, 100)
    await aggs.run(deposit(account_id, 1))  # cached at version 2, balance 101
    await Aggregates(bank_store(any_storage), cache_size=0).run(deposit(account_id, 50))

    outcome = await aggs.run(withdraw(account_id, 120))  # cached 101 refuses; stored 151 not
    assert outcome.retries == 0
    account = await Aggregates(aggs.store, cache_size=0).repository(BankAccount).load(account_id)
    assert (account.version, account.balance()) == (4, usd(31))
    with pytest.raises(InsufficientFunds):  # a real refusal is still the caller's
        await aggs.run(withdraw(account_id, 120))
    assert await any_storage.stream_version(f"account-{account_id}") == 4


async def test_doing_nothing_on_a_stale_cached_aggregate_is_decided_again(
    any_storage: Any,
) -> None:
    """A command that looks and does nothing (a top-up only below 50) on an account another
    process emptied since it was cached: decided on the stored balance, it tops up."""
    aggs = Aggregates(bank_store(any_storage))
    account_id = await open_account(aggs, 100)
    await aggs.run(deposit(account_id, 1))  # cached at version 2, balance 101

    other_process = Aggregates(bank_store(any_storage), cache_size=0)
    await other_process.run(withdraw(account_id, 100))  # balance 1

    async def top_up(uow: UnitOfWork) -> bool:
        account = await uow.get(BankAccount, account_id)
        if account.balance() >= usd(50):
            return False  # nothing to do, on what this command saw
        account.deposit(usd(50))
        return True

    outcome = await aggs.run(top_up)
    assert outcome.value is True
    account = await Aggregates(aggs.store, cache_size=0).repository(BankAccount).load(account_id)
    assert (account.version, account.balance()) == (4, usd(51))


async def test_a_change_decided_on_a_stale_cached_aggregate_is_decided_again(
    any_storage: Any,
) -> None:
    """A transfer-like command changes one account on what another (cached, unchanged)
    shows; that one was emptied meanwhile by another process: decided again, it refuses."""
    aggs = Aggregates(bank_store(any_storage))
    source = await open_account(aggs, 100)
    target = await open_account(aggs, 0)
    await aggs.run(deposit(source, 1))  # cached at version 2, balance 101

    other_process = Aggregates(bank_store(any_storage), cache_size=0)
    await other_process.run(withdraw(source, 100))  # balance 1

    async def match_source(uow: UnitOfWork) -> None:
        seen = (await uow.get(BankAccount, source)).balance()
        if seen < usd(50):
            raise InsufficientFunds(source, usd(50), seen)
        (await uow.get(BankAccount, target)).deposit(seen)

    with pytest.raises(InsufficientFunds):
        await aggs.run(match_source)
    account = await Aggregates(aggs.store, cache_size=0).repository(BankAccount).load(target)
    assert account.balance() == usd(0)


async def test_reading_through_a_caching_repository_sees_other_writers(any_storage: Any) -> None:
    aggs = Aggregates(bank_store(any_storage))
    account_id = await open_account(aggs, 100)
    await aggs.run(deposit(account_id, 1))  # cached at version 2
    await Aggregates(bank_store(any_storage), cache_size=0).run(deposit(account_id, 50))
    account = await aggs.repository(BankAccount).load(account_id)
    assert (account.version, account.balance()) == (3, usd(151))


async def test_a_read_leaves_the_cached_aggregate_to_the_next_command(any_storage: Any
                                                                      ) -> None:
    aggs = Aggregates(bank_store(any_storage))
    account_id = await open_account(aggs, 100)
    await aggs.run(deposit(account_id, 1))  # cached at version 2
    read = await aggs.repository(BankAccount).load(account_id)
    assert len(aggs.cache) == 1  # still cached: the next command does not replay the stream
    uow = aggs.unit_of_work()
    cached = await uow.get(BankAccount, account_id)
    assert uow.served_from_cache
    assert cached is not read  # a read never shares an instance a command changes
    cached.deposit(usd(1000))  # a change never committed
    assert (read.version, read.balance()) == (2, usd(101))


async def test_find_or_add_creates_on_first_use_and_racing_creators_conflict_then_retry(
        any_storage: Any) -> None:
    from examples.orders.application import orders_store
    from examples.orders.domain import OrderId, Reservation

    aggs = Aggregates(orders_store(any_storage))
    order = OrderId("order-1")
    both_started = asyncio.Event()
    started: list[int] = []

    async def reserve(uow: UnitOfWork) -> bool:
        reservation = await uow.find_or_add(Reservation, order)
        assert await uow.find_or_add(Reservation, order) is reservation  # tracked once
        started.append(1)
        if len(started) == 2:
            both_started.set()
        await asyncio.wait_for(both_started.wait(), 5)  # both saw no stream yet
        return reservation.reserve("sku-1", 2, stock=10)

    other_process = Aggregates(orders_store(any_storage))
    first, second = await asyncio.gather(aggs.run(reserve, retries=3),
                                         other_process.run(reserve, retries=3))
    assert (first.value, second.value) == (True, True)
    assert first.retries + second.retries == 1  # the loser ran again and saw the first's
    stored = await aggs.store.read_stream("reservation-order-1")
    assert [e.event_type for e in stored] == ["InventoryReserved"]


async def test_a_command_leaves_no_reference_cycles(any_storage: Any) -> None:
    # Garbage that only the cyclic collector can free makes it run again and again on the
    # hot path (a bound method kept by its own commit object once cost W1c a tenth of its
    # time). Every object a command makes must be freed by reference counting alone.
    aggs = Aggregates(bank_store(any_storage))
    account_id = await open_account(aggs)
    await aggs.run(deposit(account_id, 1))  # warm: caches, lazily built decoders
    with cyclic_garbage() as garbage:
        for _ in range(20):
            await aggs.run(deposit(account_id, 1))
        await open_account(aggs)
    assert garbage == []

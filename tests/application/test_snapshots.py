"""Snapshots: taken when N events were crossed, never misapplied across schema changes."""

from __future__ import annotations

from typing import Any

import pytest

from examples.bank.domain import AccountId, BankAccount
from examples.bank.wiring import bank_store
from invariant.application import Aggregates, Repository, SnapshotPolicy, UnitOfWork
from invariant.domain import AggregateRoot, ConfigurationError, DomainEvent
from invariant.store import Commit, SnapshotRecord, SnapshotTailReader
from tests.money import usd


@pytest.mark.parametrize(
    ("last", "new", "due"),
    [(0, 99, False), (0, 100, True), (0, 103, True), (100, 199, False), (98, 198, True)],
)
def test_the_policy_counts_events_crossed_since_the_last_snapshot(
    last: int, new: int, due: bool
) -> None:
    assert SnapshotPolicy(100).due(last, new) is due


@pytest.mark.parametrize("every", [0, -5])
def test_a_non_positive_interval_is_refused(every: int) -> None:
    with pytest.raises(ConfigurationError, match="snapshot interval"):
        SnapshotPolicy(every)


class Plain(AggregateRoot[str]):
    def apply(self, event: DomainEvent) -> None:
        return None


def test_a_policy_on_an_aggregate_without_snapshot_support_is_refused() -> None:
    from invariant.store import MemoryStorage

    with pytest.raises(ConfigurationError, match="does not implement to_snapshot"):
        Repository(bank_store(MemoryStorage()), Plain, snapshots=SnapshotPolicy(10))


async def seed_account(storage: Any, bogus_snapshot: SnapshotRecord | None) -> AccountId:
    """An account with 5 events (balance 1040.00) and optionally a planted snapshot."""
    aggs = Aggregates(bank_store(storage), cache_size=0)
    account_id = AccountId("ACC-S")

    async def open_and_deposit(uow: UnitOfWork) -> None:
        account = BankAccount.open(account_id, "U", usd(1000))
        for _ in range(4):
            account.deposit(usd(10))
        uow.add(account)

    await aggs.run(open_and_deposit)
    if bogus_snapshot is not None:
        await storage.commit(Commit(appends=(), snapshots=(bogus_snapshot,)))
    return account_id


def snapshot(schema: int, aggregate_type: str = "account", version: int = 3) -> SnapshotRecord:
    # Deliberately wrong figures: if this snapshot were used, the balance would show it.
    state = {"owner_id": "U", "balances": {"USD": "999999.00"}, "transactions": 3}
    return SnapshotRecord("account-ACC-S", aggregate_type, version, schema, state)


def account_class(schema_version: int, name: str = "BankAccount") -> type[BankAccount]:
    return type(name, (BankAccount,), {"category": "account",
                                       "snapshot_schema_version": schema_version})


async def load(storage: Any, cls: type[BankAccount], account_id: AccountId,
               upcasters: Any = None) -> tuple[BankAccount, int]:
    store = bank_store(storage)
    if upcasters is not None:
        upcasters(store.upcasters)
    repo = Repository(store, cls, snapshots=SnapshotPolicy(100))
    loaded = await repo.load_tracked(account_id)
    assert loaded is not None
    return loaded.aggregate, loaded.snapshot_version


async def test_a_current_snapshot_is_used(any_storage: Any) -> None:
    account_id = await seed_account(any_storage, snapshot(1))
    account, used = await load(any_storage, BankAccount, account_id)
    assert used == 3
    assert account.balance() == usd(999999 + 20)  # snapshot state plus the 2-event tail
    assert account.version == 5


async def test_a_snapshot_of_an_older_schema_without_upcaster_is_ignored(any_storage: Any) -> None:
    account_id = await seed_account(any_storage, snapshot(1))
    account, used = await load(any_storage, account_class(2), account_id)
    assert used == 0
    assert account.balance() == usd(1040)
    assert account.version == 5


async def test_a_snapshot_of_a_newer_schema_is_ignored(any_storage: Any) -> None:
    account_id = await seed_account(any_storage, snapshot(3))
    account, used = await load(any_storage, account_class(2), account_id)
    assert (used, account.balance()) == (0, usd(1040))


async def test_a_snapshot_of_another_aggregate_type_is_ignored(any_storage: Any) -> None:
    account_id = await seed_account(any_storage, snapshot(1, aggregate_type="Ledger"))
    account, used = await load(any_storage, BankAccount, account_id)
    assert (used, account.balance()) == (0, usd(1040))


async def test_an_older_snapshot_is_upcast_when_an_upcaster_exists(any_storage: Any) -> None:
    account_id = await seed_account(any_storage, snapshot(1))

    def register(ups: Any) -> None:
        ups.register_snapshot("account", 1, lambda s: {**s, "balances": {"USD": "1.00"}})

    account, used = await load(any_storage, account_class(2), account_id, register)
    assert used == 3
    assert account.balance() == usd(21)


async def test_temporal_loads_only_use_snapshots_at_or_before_the_version(
    any_storage: Any,
) -> None:
    account_id = await seed_account(any_storage, snapshot(1, version=4))
    store = bank_store(any_storage)
    repo = Repository(store, BankAccount, snapshots=SnapshotPolicy(100))
    at_3 = await repo.load_at(account_id, version=3)
    assert at_3.balance() == usd(1020) and at_3.version == 3


async def test_snapshots_are_written_in_the_commit_that_crosses_the_threshold(
    any_storage: Any,
) -> None:
    aggs = Aggregates(bank_store(any_storage), snapshots={BankAccount: 3})
    account_id = AccountId("ACC-T")

    async def open_account(uow: UnitOfWork) -> None:
        uow.add(BankAccount.open(account_id, "U", usd(1)))

    async def deposit(uow: UnitOfWork) -> None:
        (await uow.get(BankAccount, account_id)).deposit(usd(1))

    await aggs.run(open_account)
    await aggs.run(deposit)
    assert await any_storage.read_snapshot("account-ACC-T") is None
    await aggs.run(deposit)
    first = await any_storage.read_snapshot("account-ACC-T")
    assert first is not None and first.version == 3
    await aggs.run(deposit)
    await aggs.run(deposit)
    still = await any_storage.read_snapshot("account-ACC-T")
    assert still is not None and still.version == 3
    await aggs.run(deposit)
    latest = await any_storage.read_snapshot("account-ACC-T")
    assert latest is not None and latest.version == 6
    assert latest.state["balances"] == {"USD": "6.00"}




# -- snapshots are named by the category, so a renamed class keeps them ------------------------


async def test_snapshots_are_stored_under_the_category(any_storage: Any) -> None:
    aggs = Aggregates(bank_store(any_storage), snapshots={BankAccount: 5})
    await seed_account(any_storage, None)
    account_id = AccountId("ACC-S")

    async def deposit(uow: UnitOfWork) -> None:
        (await uow.get(BankAccount, account_id)).deposit(usd(1))

    await aggs.run(deposit)
    stored = await any_storage.read_snapshot("account-ACC-S")
    assert (stored.aggregate_type, stored.version) == ("account", 6)


async def test_a_renamed_class_still_finds_its_snapshots(any_storage: Any) -> None:
    aggs = Aggregates(bank_store(any_storage), snapshots={BankAccount: 5}, cache_size=0)
    account_id = await seed_account(any_storage, None)

    async def deposit(uow: UnitOfWork) -> None:
        (await uow.get(BankAccount, account_id)).deposit(usd(1))

    await aggs.run(deposit)  # snapshot at version 6, written by BankAccount
    renamed = account_class(1, name="CurrentAccount")
    account, used = await load(any_storage, renamed, account_id)
    assert (used, account.version, account.balance()) == (6, 6, usd(1041))


async def test_a_renamed_class_still_upcasts_its_older_snapshots(any_storage: Any) -> None:
    account_id = await seed_account(any_storage, snapshot(1))

    def register(ups: Any) -> None:
        ups.register_snapshot("account", 1, lambda s: {**s, "balances": {"USD": "1.00"}})

    renamed = account_class(2, name="CurrentAccount")
    account, used = await load(any_storage, renamed, account_id, register)
    assert (used, account.balance()) == (3, usd(21))


async def test_a_snapshot_stored_under_the_class_name_still_loads(any_storage: Any) -> None:
    # Written before snapshots were named by the category: the class name is read as well.
    account_id = await seed_account(any_storage, snapshot(1, aggregate_type="BankAccount"))
    account, used = await load(any_storage, BankAccount, account_id)
    assert (used, account.balance()) == (3, usd(999999 + 20))


async def test_an_old_snapshot_under_a_former_class_name_is_replayed_around(
    any_storage: Any,
) -> None:
    # The class was renamed before its old-style snapshot was replaced: the name no longer
    # says whose it is, so the stream is replayed (the next snapshot is named "account").
    account_id = await seed_account(any_storage, snapshot(1, aggregate_type="BankAccount"))
    account, used = await load(any_storage, account_class(1, name="CurrentAccount"),
                               account_id)
    assert (used, account.balance()) == (0, usd(1040))


def test_a_snapshot_upcaster_under_the_class_name_is_refused_naming_the_category() -> None:
    from invariant.store import MemoryStorage

    store = bank_store(MemoryStorage())
    store.upcasters.register_snapshot("BankAccount", 1, dict)
    with pytest.raises(ConfigurationError, match=r"register_snapshot\('account', \.\.\.\)"):
        Repository(store, BankAccount, snapshots=SnapshotPolicy(10))


def test_two_aggregate_types_snapshotting_one_category_are_refused() -> None:
    from invariant.store import MemoryStorage

    with pytest.raises(ConfigurationError, match="both take snapshots of the 'account' streams"):
        Aggregates(bank_store(MemoryStorage()),
                   snapshots={BankAccount: 10, account_class(2, name="CurrentAccount"): 10})


class WithoutTails:
    """A real adapter seen through a wrapper that lacks ``read_snapshot_tail``: what a
    third-party adapter without :class:`SnapshotTailReader` looks like to the repository."""

    def __init__(self, storage: Any) -> None:
        self._storage = storage

    def __getattr__(self, name: str) -> Any:
        if name == "read_snapshot_tail":
            raise AttributeError(name)
        return getattr(self._storage, name)


@pytest.mark.parametrize(("planted", "cls", "expected"), [
    (None, BankAccount, (0, 1040)),
    (snapshot(1), BankAccount, (3, 999999 + 20)),
    (snapshot(1, version=5), BankAccount, (5, 999999)),
    (snapshot(3), account_class(2), (0, 1040)),
    (snapshot(1, aggregate_type="Ledger"), BankAccount, (0, 1040)),
])
async def test_adapters_with_and_without_snapshot_tails_load_the_same(
    any_storage: Any, planted: SnapshotRecord | None, cls: type[BankAccount],
    expected: tuple[int, int],
) -> None:
    assert isinstance(any_storage, SnapshotTailReader)
    assert not isinstance(WithoutTails(any_storage), SnapshotTailReader)
    account_id = await seed_account(any_storage, planted)
    for storage in (any_storage, WithoutTails(any_storage)):
        account, used = await load(storage, cls, account_id)
        assert (used, account.balance(), account.version) == (
            expected[0], usd(expected[1]), 5)


async def test_a_snapshotted_aggregate_loads_in_one_read(any_storage: Any) -> None:
    """The repository asks once (the adapter may read twice inside: memory and SQLite are
    in-process); PostgreSQL answers in one statement, one round trip."""
    account_id = await seed_account(any_storage, snapshot(1))
    calls: list[str] = []
    depth = [0]
    names = ["read_snapshot", "read_stream_data", "read_snapshot_tail"]
    if hasattr(any_storage, "_fetch"):
        names.append("_fetch")  # PostgreSQL's statements
    for name in names:
        real = getattr(any_storage, name)

        async def counted(*args: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            if depth[0] == 0 or _name == "_fetch":
                calls.append(_name)
            depth[0] += 1
            try:
                return await _real(*args, **kw)
            finally:
                depth[0] -= 1

        setattr(any_storage, name, counted)
    account, used = await load(any_storage, BankAccount, account_id)
    assert (used, account.version) == (3, 5)
    expected = ["read_snapshot_tail"]
    assert calls == ([*expected, "_fetch"] if "_fetch" in names else expected)

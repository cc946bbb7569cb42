"""The seed's read models (examples 65 and 68), built by the runner on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Connection, select

from examples.bank.projections import (
    AccountActivity,
    AccountList,
    AccountSearch,
    AccountSummary,
    accounts_of_owner,
    active_accounts,
    bank_projections,
    get_summary,
    search_accounts,
    total_volume,
)
from invariant.domain import ConfigurationError
from invariant.projections import Projection, ReadModelDatabase
from tests.projections.conftest import Bank


async def dump(database: ReadModelDatabase, projections: list[Projection]) -> dict[str, list]:
    """Every row of every read-model table, in key order."""

    def read(conn: Connection) -> dict[str, list]:
        return {
            t.name: [tuple(r) for r in conn.execute(
                select(t).order_by(*t.primary_key.columns)
            )]
            for p in projections for t in p.tables
        }

    return await database.run(read, write=False)


async def test_the_account_summary_shows_the_seeds_figures(bank: Bank) -> None:
    await bank.seed_scenario()
    runner = bank.runner(bank_projections())
    await runner.setup()

    await runner.catch_up()

    summary = await get_summary(bank.database, "ACC-001")
    assert summary is not None
    assert (summary.account_id, summary.owner_id) == ("ACC-001", "USER-001")
    assert summary.total_deposits == Decimal("1500.00")
    assert summary.total_withdrawals == Decimal("200.00")
    assert summary.current_balance == Decimal("1300.00")
    assert summary.transaction_count == 3
    assert summary.last_activity == bank.clock.now
    second = await get_summary(bank.database, "ACC-002")
    assert second is not None
    assert (second.current_balance, second.transaction_count) == (Decimal("2300.00"), 2)
    since = bank.clock.now - timedelta(seconds=1)
    assert await active_accounts(bank.database, since) == ["ACC-001", "ACC-002"]
    assert await total_volume(bank.database) == {
        "deposits": Decimal("3800.00"), "withdrawals": Decimal("200.00"),
    }
    assert await get_summary(bank.database, "ACC-404") is None


async def test_list_and_search_models_are_built_from_the_same_stream(bank: Bank) -> None:
    await bank.open("ACC-001", "15000", "USER-001")
    await bank.deposit("ACC-001", "5000")
    await bank.open("ACC-002", "20", "USER-001")
    await bank.open("ACC-003", "30", "USER-002")
    runner = bank.runner(bank_projections())
    await runner.setup()

    await runner.catch_up()

    owned = await accounts_of_owner(bank.database, "USER-001")
    assert [(a["account_id"], a["balance"]) for a in owned] == [
        ("ACC-001", Decimal("20000.00")), ("ACC-002", Decimal("20.00")),
    ]
    assert await search_accounts(bank.database, "high-balance") == ["ACC-001"]
    assert await search_accounts(bank.database, "user user-002") == ["ACC-003"]
    assert await search_accounts(bank.database, "new-account") == [
        "ACC-001", "ACC-002", "ACC-003",
    ]


async def test_a_rebuild_from_zero_gives_an_identical_read_model(bank: Bank) -> None:
    await bank.seed_scenario()
    projections = bank_projections()
    runner = bank.runner(projections, page_size=2)
    await runner.setup()
    await runner.catch_up()
    before = await dump(bank.database, projections)
    seen: list[tuple[int, int]] = []

    for p in projections:
        await runner.rebuild(p.name, progress=lambda at, head: seen.append((at, head)))

    assert await dump(bank.database, projections) == before
    assert seen[-1] == (5, 5)
    assert {s.state for s in await runner.status()} == {"running"}


async def test_a_rebuild_from_a_position_replays_only_later_events(bank: Bank) -> None:
    await bank.seed_scenario()
    activity, summary = AccountActivity(), AccountSummary()
    runner = bank.runner([activity, summary])
    await runner.setup()
    await runner.catch_up()
    before = await dump(bank.database, [activity])

    await runner.rebuild("account_activity", from_position=3)

    assert await dump(bank.database, [activity]) == before
    # The summary cannot tell which rows later events made: refused, nothing changed.
    summary_before = await dump(bank.database, [summary])
    with pytest.raises(ConfigurationError, match="cannot rebuild from position 3"):
        await runner.rebuild("account_summary", from_position=3)
    assert await dump(bank.database, [summary]) == summary_before
    assert all(s.checkpoint == 5 for s in await runner.status())


async def test_a_new_version_is_built_beside_the_old_one_then_switched_atomically(
    bank: Bank,
) -> None:
    await bank.seed_scenario()
    v1 = AccountSummary()
    runner = bank.runner([v1])
    await runner.setup()
    await runner.catch_up()
    await bank.deposit("ACC-001", "1")

    v2 = AccountSummary(version=2)
    both = bank.runner([v1, v2])
    await both.setup()
    states = {(s.version, s.active, s.state) for s in await both.status()}
    assert states == {(1, True, "running"), (2, False, "rebuilding")}
    # Version 2 may not serve before it has caught up with version 1.
    await both.catch_up("account_summary")  # both versions, v1 first, then v2
    summary = await get_summary(bank.database, "ACC-001")
    assert summary is not None and summary.current_balance == Decimal("1301.00")
    serving = await bank.database.run(AccountSummary.serving, write=False)
    assert serving.version == 1

    await both.switch("account_summary", 2)
    serving = await bank.database.run(AccountSummary.serving, write=False)
    assert serving.version == 2 and serving.accounts.name == v2.accounts.name
    assert await bank.database.run(AccountSummary.serving, write=False) is serving  # kept

    states = {(s.version, s.active, s.state) for s in await both.status()}
    assert states == {(1, False, "running"), (2, True, "running")}
    assert await dump(bank.database, [v2]) != {}
    rows_v1 = (await dump(bank.database, [v1]))[v1.accounts.name]
    rows_v2 = (await dump(bank.database, [v2]))[v2.accounts.name]
    assert rows_v1 == rows_v2
    summary = await get_summary(bank.database, "ACC-001")  # now read from v2
    assert summary is not None and summary.current_balance == Decimal("1301.00")

    await both.retire("account_summary", 1)
    assert [(s.version, s.active) for s in await both.status()] == [(2, True)]
    with pytest.raises(ConfigurationError, match="active version"):
        await both.retire("account_summary", 2)


async def test_switching_to_a_version_that_is_behind_is_refused(bank: Bank) -> None:
    await bank.seed_scenario()
    v1, v2 = AccountList(), AccountList(version=2)
    runner = bank.runner([v1, v2])
    await runner.setup()
    await bank.runner([v1]).catch_up()

    with pytest.raises(Exception, match="behind version 1 at 5"):
        await runner.switch("account_list", 2)
    assert [s.active for s in await runner.status()] == [True, False]


async def test_live_follow_wakes_on_commits_without_polling(bank: Bank) -> None:
    # Periodic re-checks far beyond the test's time: only the commit notification can wake.
    bank.storage.commit_recheck_seconds = 600  # type: ignore[attr-defined]
    runner = bank.runner([AccountSummary(), AccountSearch()], idle_recheck=600)
    await runner.setup()
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.sleep(0.2)  # the runner is idle, waiting for a commit
        position = await bank.open("ACC-009", "75")

        await runner.wait_until("account_summary", position, timeout=5)

        summary = await get_summary(bank.database, "ACC-009")
        assert summary is not None and summary.current_balance == Decimal("75.00")
        position = await bank.deposit("ACC-009", "5")
        await runner.wait_until("account_search", position, timeout=5)
        assert await search_accounts(bank.database, "ACC-009") == ["ACC-009"]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_events_of_other_types_move_the_checkpoint_without_being_handled(
    bank: Bank,
) -> None:
    class Openings(AccountActivity):
        name = "openings"
        event_types = ("AccountOpened",)

    openings = Openings()
    await bank.seed_scenario()
    runner = bank.runner([openings], page_size=1)
    await runner.setup()

    assert await runner.catch_up() == 2

    [status] = await runner.status()
    assert (status.checkpoint, status.lag_events) == (5, 0)
    rows = (await dump(bank.database, [openings]))[openings.movements.name]
    assert [r[0] for r in rows] == [1, 4]

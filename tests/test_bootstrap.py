"""One bootstrap wires an application from settings; nothing is global."""

from __future__ import annotations

from pathlib import Path

import pytest

from examples.bank.application import (
    COMMAND_HANDLERS,
    COMMANDS,
    DepositMoney,
    GetAccountSummary,
    OpenAccount,
    query_handlers,
)
from examples.bank.domain import EVENTS
from examples.bank.wiring import upcasters
from invariant import App, Settings, bootstrap
from invariant.domain import ConfigurationError, Money
from invariant.sql.database import SQLiteReadModels
from invariant.store import MemoryStorage, SQLiteStorage


def build(settings: Settings, **extra: object) -> App:
    return bootstrap(settings, events=EVENTS, upcasters=upcasters(),
                     command_handlers=COMMAND_HANDLERS, commands=COMMANDS,
                     query_handlers=lambda app: query_handlers(app.aggregates),
                     queries=[GetAccountSummary], **extra)  # type: ignore[arg-type]


async def test_settings_choose_the_store_and_the_app_runs_commands_and_queries(
    tmp_path: Path,
) -> None:
    settings = Settings.from_env({"INVARIANT_STORE": "sqlite",
                                  "INVARIANT_SQLITE_PATH": str(tmp_path / "app.db")})
    async with build(settings) as app:
        assert isinstance(app.storage, SQLiteStorage)
        await app.commands.dispatch(OpenAccount(account_id="A1", owner_id="U1",
                                                initial_deposit=Money.of(5, "USD")))
        await app.commands.dispatch(DepositMoney(account_id="A1", amount=Money.of(7, "USD")))
        summary = await app.queries.ask(GetAccountSummary("A1"))
    assert summary.balances["USD"] == Money.of(12, "USD").amount
    assert (tmp_path / "app.db").exists()


async def test_two_apps_share_nothing() -> None:
    first = build(Settings(store="memory"))
    second = build(Settings(store="memory"))
    assert first.storage is not second.storage
    assert first.aggregates.cache is not second.aggregates.cache
    async with first, second:
        await first.commands.dispatch(OpenAccount(account_id="A1", owner_id="U1",
                                                  initial_deposit=Money.of(1, "USD")))
        assert await second.storage.stream_version("account-A1") == 0


async def test_a_passed_storage_is_left_open_for_its_owner() -> None:
    storage = MemoryStorage()
    async with build(Settings(store="memory"), storage=storage) as app:
        assert app.storage is storage and not app.owns_storage


class CountedCloses(SQLiteReadModels):
    closed = 0

    async def close(self) -> None:
        self.closed += 1
        await super().close()


async def test_passed_read_models_serve_the_projections_and_stay_open_for_their_owner(
    tmp_path: Path,
) -> None:
    from examples.bank.projections import bank_projections

    settings = Settings(store="sqlite", sqlite_path=tmp_path / "app.db")
    read_models = CountedCloses(tmp_path / "app.db")
    async with build(settings, projections=bank_projections(),
                     read_models=read_models) as app:
        assert app.read_models is read_models and not app.owns_read_models
        result = await app.commands.dispatch(OpenAccount(
            account_id="A1", owner_id="U1", initial_deposit=Money.of(5, "USD")))
        assert app.projections is not None
        await app.projections.wait_until("account_summary", result.position, timeout=10)
    assert read_models.closed == 0
    await read_models.close()

    # Without one, the App opens its own (and closes it).
    own = build(Settings(store="sqlite", sqlite_path=tmp_path / "other.db"),
                projections=bank_projections())
    assert own.read_models is not None and own.owns_read_models


def test_projections_on_the_memory_store_are_refused_with_advice() -> None:
    from examples.bank.projections import bank_projections

    with pytest.raises(ConfigurationError, match="INVARIANT_STORE=sqlite or postgres"):
        build(Settings(store="memory"), projections=bank_projections())

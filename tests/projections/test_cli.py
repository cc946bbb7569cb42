"""``invariant projections status|rebuild``, configured by INVARIANT_* variables."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from typer.testing import CliRunner, Result

from examples.bank.projections import get_summary
from invariant.cli import app
from tests.projections.conftest import Bank


def settings(bank: Bank, **extra: str) -> dict[str, str]:
    env = {"INVARIANT_PROJECTIONS": "examples.bank.projections:setup", **extra}
    if bank.backend == "sqlite":
        env |= {"INVARIANT_STORE": "sqlite",
                "INVARIANT_SQLITE_PATH": bank.url.removeprefix("sqlite:///")}
    else:
        assert bank.schema is not None
        env |= {"INVARIANT_STORE": "postgres", "INVARIANT_POSTGRES_DSN": bank.url,
                "INVARIANT_POSTGRES_SCHEMA": bank.schema}
    return env


async def invariant(env: dict[str, str], *args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def test_status_lists_every_projection_with_its_lag(bank: Bank) -> None:
    await bank.seed_scenario()

    result = await invariant(settings(bank), "projections", "status")

    assert result.exit_code == 0, result.output
    for name in ("account_summary", "account_list", "account_search", "account_activity"):
        assert name in result.output
    row = next(line for line in result.output.splitlines() if "account_summary" in line)
    assert [c.strip() for c in row.split("│")[3:7]] == ["running", "0", "5", "5"]


async def test_rebuild_builds_the_read_model_and_reports_the_position(bank: Bank) -> None:
    await bank.seed_scenario()

    result = await invariant(settings(bank), "projections", "rebuild", "account_summary")

    assert result.exit_code == 0, result.output
    assert "account_summary rebuilt up to position 5" in result.output
    summary = await get_summary(bank.database, "ACC-001")
    assert summary is not None and summary.current_balance == Decimal("1300.00")
    status = await invariant(settings(bank), "projections", "status")
    row = next(line for line in status.output.splitlines() if "account_summary" in line)
    assert [c.strip() for c in row.split("│")[3:7]] == ["running", "5", "5", "0"]


async def test_rebuild_from_a_position_where_the_model_cannot_is_a_clear_error(
    bank: Bank,
) -> None:
    await bank.seed_scenario()
    assert (await invariant(settings(bank), "projections", "rebuild", "account_activity",
                            "--from", "2")).exit_code == 0

    result = await invariant(settings(bank), "projections", "rebuild", "account_summary",
                             "--from", "2")

    assert result.exit_code == 2
    assert "cannot rebuild from position 2" in result.output


async def test_a_missing_projections_setting_says_what_to_set(bank: Bank) -> None:
    env = settings(bank)
    env["INVARIANT_PROJECTIONS"] = ""

    result = await invariant(env, "projections", "status")

    assert result.exit_code == 2
    assert "set INVARIANT_PROJECTIONS=package.module:factory" in result.output

"""``invariant projections status|rebuild|pause|resume`` on the bank (INVARIANT_APP names it)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from typer.testing import CliRunner, Result

from examples.bank.projections import AccountActivity, get_summary
from invariant.cli import app
from invariant.errors import ProjectionFailedError
from tests.projections.conftest import Bank


def settings(bank: Bank, **extra: str) -> dict[str, str]:
    env = {"INVARIANT_APP": "examples.bank.projections:operations", **extra}
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
    assert row.split("\t")[2:6] == ["running", "0", "5", "5"]


async def test_rebuild_builds_the_read_model_and_reports_the_position(bank: Bank) -> None:
    await bank.seed_scenario()

    result = await invariant(settings(bank), "projections", "rebuild", "account_summary")

    assert result.exit_code == 0, result.output
    assert "account_summary rebuilt up to position 5" in result.output
    summary = await get_summary(bank.database, "ACC-001")
    assert summary is not None and summary.current_balance == Decimal("1300.00")
    status = await invariant(settings(bank), "projections", "status")
    row = next(line for line in status.output.splitlines() if "account_summary" in line)
    assert row.split("\t")[2:6] == ["running", "5", "5", "0"]


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


async def test_without_an_application_it_says_what_to_set(bank: Bank) -> None:
    env = settings(bank)
    env["INVARIANT_APP"] = ""

    result = await invariant(env, "projections", "status")

    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: projections come from the application: set "
        "INVARIANT_APP=package.module:attribute (or pass --app), the object describing the "
        "application (e.g. shop.operations:app; see invariant.operable)")


async def test_an_unknown_projection_name_lists_the_known_ones(bank: Bank) -> None:
    for command in ("rebuild", "resume"):
        result = await invariant(settings(bank), "projections", command, "acount_summary")

        assert result.exit_code == 2
        assert result.stderr.strip() == (
            "error: no projection 'acount_summary' in "
            "INVARIANT_APP=examples.bank.projections:operations; known: account_activity, "
            "account_list, account_search, account_summary")


async def test_resume_of_a_projection_that_has_not_failed_changes_nothing(bank: Bank) -> None:
    await bank.seed_scenario()

    result = await invariant(settings(bank), "projections", "resume", "account_summary")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip() == ("account_summary has not failed (running, at 0 of 5): "
                                     "nothing to resume")


async def test_a_failed_projection_is_reported_then_resumed(bank: Bank) -> None:
    await bank.seed_scenario()
    activity = AccountActivity()
    runner = bank.runner([activity])
    await runner.setup()
    stray = {"position": 1, "account_id": "ACC-001", "kind": "deposit", "currency": "USD",
             "amount": 1, "recorded_at": 0}
    await bank.database.run(lambda conn: conn.execute(activity.movements.insert(), stray))
    with pytest.raises(ProjectionFailedError):
        await runner.catch_up()

    status = await invariant(settings(bank), "projections", "status")
    assert status.exit_code == 1, status.output
    row = next(line for line in status.stdout.splitlines() if "account_activity" in line)
    assert row.split("\t")[2] == "failed" and row.split("\t")[7].startswith("at 1: ")

    await bank.database.run(lambda conn: conn.execute(activity.movements.delete()))
    resumed = await invariant(settings(bank), "projections", "resume", "account_activity")
    assert resumed.exit_code == 0, resumed.output
    assert resumed.stdout.strip() == ("account_activity resumed: its worker retries the event "
                                      "at position 1")
    assert await runner.catch_up() == 5
    again = await invariant(settings(bank), "projections", "status")
    assert again.exit_code == 0, again.output


async def test_rebuild_shows_plain_progress_lines_when_not_on_a_terminal(bank: Bank) -> None:
    await bank.seed_scenario()

    result = await invariant(settings(bank), "projections", "rebuild", "account_activity")

    assert result.exit_code == 0, result.output
    assert result.stdout == "account_activity rebuilt up to position 5\n"
    (line,) = result.stderr.splitlines()
    assert line.startswith("rebuilding account_activity: 5/5 events (100%)")
    assert "\x1b" not in result.stderr  # no terminal control codes in a pipe


async def test_a_projection_is_paused_then_resumed_from_where_it_was(bank: Bank) -> None:
    await bank.seed_scenario()

    paused = await invariant(settings(bank), "projections", "pause", "account_summary")
    assert paused.exit_code == 0, paused.output
    assert paused.stdout.startswith("account_summary paused")
    again = await invariant(settings(bank), "projections", "pause", "account_summary")
    assert again.exit_code == 1
    assert "paused already" in again.stderr
    status = await invariant(settings(bank), "projections", "status")
    row = next(line for line in status.stdout.splitlines() if "account_summary" in line)
    assert row.split("\t")[2] == "paused"

    resumed = await invariant(settings(bank), "projections", "resume", "account_summary")
    assert resumed.exit_code == 0, resumed.output
    assert resumed.stdout.strip() == "account_summary resumed from position 0"

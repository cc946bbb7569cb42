"""Lists give whole ids, as ``show`` and ``resume`` take them: tab-separated lines when the
output is not a terminal, a table whose id column never shrinks on one."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from invariant.cli import app
from invariant.processes import NEEDS_ATTENTION, ProcessRecord, setup_tables
from invariant.processes import persistence as process_state
from invariant.sql.database import SQLiteReadModels
from tests.cli.terminal import on_terminal

LONG_ID = "checkout-7f3a9c2e-4b1d-4e8f-9a6b-2c5d8e1f0a3b-retry-2"
ERROR = ("ConnectionError: the payment provider did not answer within 30 s after three "
         "attempts; the refund of order 7f3a9c2e is parked until an operator resumes it")


def stuck_process(path: Path) -> None:
    """A needs-attention saga with a long id and a long error, in ``path``."""
    async def work() -> None:
        db = SQLiteReadModels(path)
        await setup_tables(db)
        record = ProcessRecord(LONG_ID, "checkout", "order-7f3a9c2e-4b1d-4e8f-9a6b", {},
                               status=NEEDS_ATTENTION, error=ERROR)
        await db.run(lambda conn: process_state.write(conn, record, datetime.now(UTC)))
        await db.close()

    asyncio.run(work())


def test_a_pipe_gets_whole_ids_one_row_a_line(tmp_path: Path) -> None:
    stuck_process(tmp_path / "app.db")
    unset = dict.fromkeys(k for k in os.environ if k.startswith("INVARIANT_"))

    result = CliRunner().invoke(app, ["processes", "list"], env={
        **unset, "INVARIANT_SQLITE_PATH": str(tmp_path / "app.db")})

    assert result.exit_code == 1  # one needs attention
    header, row = result.stdout.splitlines()
    assert header.split("\t") == ["id", "kind", "correlation", "status", "step", "version",
                                  "deadline", "updated", "error"]
    fields = row.split("\t")
    assert fields[:4] == [LONG_ID, "checkout", "order-7f3a9c2e-4b1d-4e8f-9a6b", NEEDS_ATTENTION]
    assert fields[8] == ERROR
    assert "…" not in result.stdout
    shown = CliRunner().invoke(app, ["processes", "show", fields[0]], env={
        **unset, "INVARIANT_SQLITE_PATH": str(tmp_path / "app.db")})
    assert shown.exit_code == 0, shown.output


def test_a_narrow_terminal_wraps_the_error_not_the_id(tmp_path: Path) -> None:
    stuck_process(tmp_path / "app.db")

    code, screen = on_terminal(["processes", "list"],
                               {"INVARIANT_SQLITE_PATH": str(tmp_path / "app.db")}, columns=100)

    assert code == 1, screen
    assert "│" in screen  # a table
    assert LONG_ID in screen  # on one line, whole
    assert "…" not in screen

"""Long work shows its progress: a Rich bar with the rate and the time left on a terminal,
plain lines (at most one a second, and the last) anywhere else."""

from __future__ import annotations

import io
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from sqlalchemy import Connection

from invariant.cli.progress import PlainLines, progress
from invariant.messaging import deadletters
from invariant.messaging.port import Message
from invariant.sql.database import SQLiteReadModels
from tests.cli.terminal import on_terminal


def test_a_terminal_gets_a_bar_with_count_rate_and_time_left() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)

    with progress("rebuilding orders", "events", console=console) as report:
        for done in range(0, 3001, 1000):
            report(done, 3000)

    text = out.getvalue()
    assert "\x1b[" in text  # drawn with terminal control codes
    last = text.rsplit("\r", 1)[-1]
    assert "rebuilding orders" in last and "━" in last
    assert "3000/3000" in last and "events/s" in last
    assert "0:00:00" in last  # the time-left column, at the end of the work


def test_elsewhere_plain_lines_at_most_one_a_second_and_the_last() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    now = [0.0]
    lines = PlainLines("rebuilding orders", "events", console, clock=lambda: now[0])

    for at, done in ((0.0, 0), (0.5, 60), (1.2, 120), (1.9, 200), (2.5, 400)):
        now[0] = at
        lines.report(done, 400)
    lines.finish()

    assert out.getvalue().splitlines() == [
        "rebuilding orders: 0/400 events (0%)",
        "rebuilding orders: 120/400 events (30%), 100 events/s, about 0:00:03 left",
        "rebuilding orders: 400/400 events (100%), 160 events/s",
    ]


def test_plain_lines_say_where_unfinished_work_stopped() -> None:
    out = io.StringIO()
    lines = PlainLines("replaying", "messages", Console(file=out), clock=lambda: 0.0)
    lines.report(3, 10)
    lines.report(4, 10)
    lines.finish()
    assert out.getvalue().splitlines() == ["replaying: 3/10 messages (30%)",
                                           "replaying: 4/10 messages (40%)"]


def park(path: Path, count: int) -> None:
    """``count`` messages parked by the ``effects`` consumer of tests.messaging.cli_app."""
    import asyncio

    async def work() -> None:
        db = SQLiteReadModels(path)
        await db.run(deadletters.create)
        now = datetime.now(UTC)

        def insert(conn: Connection) -> None:
            for n in range(count):
                message = Message(f"m-{n}", "order.placed", f"order-{n}", 1, {"n": n})
                deadletters.park(conn, "effects", message, "ValueError: down", 5, now)
        await db.run(insert)
        await db.close()

    asyncio.run(work())


def test_a_replay_on_a_terminal_draws_the_bar(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    park(db, 300)
    env = {"INVARIANT_SQLITE_PATH": str(db), "INVARIANT_APP": "tests.messaging.cli_app:app",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}

    code, screen = on_terminal(["deadletters", "replay", "--all"], env)

    assert code == 0, screen
    assert "replaying dead letters" in screen and "━" in screen
    assert "300/300" in screen and "messages/s" in screen
    assert "replayed 300 of 300 dead letter(s)" in screen
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM invariant_dead_letters").fetchone() == (0,)

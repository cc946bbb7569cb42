"""SQLite read models checkpoint their WAL between two commits, on a thread, as the event
store's writer does: not inside the commit (on the loop) that crosses SQLite's mark."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from invariant.domain.errors import ConfigurationError
from invariant.projections import SQLiteReadModels
from invariant.sqlite_wal import WalCheckpoints, backstop_pages
from tests.wal import FRAME, MARK, checkpoint_threads, wal_bytes

ROW = "x" * 3000  # most of a page: each row written dirties a page of its own

pytestmark = pytest.mark.usefixtures("quick_first_checkpoint")


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[SQLiteReadModels]:
    database = SQLiteReadModels(tmp_path / "rm.db", checkpoint_pages=MARK)
    await database.run(lambda c: c.execute(text(
        "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")))
    yield database
    await database.close()


def _checkpoints(database: SQLiteReadModels) -> WalCheckpoints:
    assert database._gate is not None
    return database._gate.checkpoints


def _upsert(keys: range) -> Callable[[Connection], None]:
    def work(conn: Connection) -> None:
        for k in keys:
            conn.execute(text("INSERT INTO t VALUES (:k, :v) ON CONFLICT (k) DO UPDATE"
                              " SET v = excluded.v"), {"k": k, "v": f"{ROW}{k}"})
    return work


async def test_the_wal_stays_bounded_while_a_catch_up_writes_page_after_page(
        database: SQLiteReadModels) -> None:
    peaks: list[int] = []
    for page in range(300):  # 8 rows a page, over 400 rows: pages rewritten again and again
        await database.run(_upsert(range(page * 8 % 400, page * 8 % 400 + 8)))
        await asyncio.sleep(0.0005)  # the thread gets its turns
        peaks.append(wal_bytes(database.path))
    checks = _checkpoints(database)
    assert checks.checkpoints > 0, "the thread never checkpointed"
    assert checks.last_error is None
    # Written: ten times the backstop at least; the WAL stays under it.
    assert 10 * backstop_pages(MARK) < 300 * 8
    assert max(peaks) < backstop_pages(MARK) * FRAME
    rows = await database.run(lambda c: c.execute(text("SELECT count(*) FROM t")).scalar(),
                              write=False)
    assert rows == 400


async def test_the_writer_keeps_sqlite_checkpoint_as_a_backstop(
        database: SQLiteReadModels) -> None:
    pages = await database.run(
        lambda c: c.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar())
    assert pages == backstop_pages(MARK)


async def test_writes_that_arrive_during_a_checkpoint_wait_for_its_end_then_land_in_order(
        database: SQLiteReadModels, monkeypatch: pytest.MonkeyPatch) -> None:
    await database.run(_upsert(range(1)))
    checks = _checkpoints(database)
    await asyncio.sleep(0.05)  # the first commit's checkpoint has come and gone
    await asyncio.to_thread(checks._executor.submit(lambda: None).result)
    running, release = threading.Event(), threading.Event()
    real = WalCheckpoints._checkpoint

    def slow(self: WalCheckpoints, since: float) -> None:
        running.set()
        release.wait(10)
        real(self, since)

    monkeypatch.setattr(WalCheckpoints, "_checkpoint", slow)
    monkeypatch.setattr(checks, "wait", 0.0)  # due after the next commit
    await database.run(_upsert(range(1, 2)))  # commits, then the checkpoint starts
    assert await asyncio.to_thread(running.wait, 5)
    order: list[int] = []

    def write(k: int) -> Callable[[Connection], None]:
        def work(conn: Connection) -> None:
            order.append(k)
            _upsert(range(k, k + 1))(conn)
        return work

    waiting = [asyncio.ensure_future(database.run(write(k))) for k in (10, 11, 12)]
    turns = 0
    for _ in range(20):  # the loop keeps turning, and nothing commits
        await asyncio.sleep(0.005)
        turns += 1
    assert turns == 20 and order == [] and not any(w.done() for w in waiting)
    # reads do not wait: they take no write lock
    count = await database.run(lambda c: c.execute(text("SELECT count(*) FROM t")).scalar(),
                               write=False)
    assert count == 2
    release.set()
    await asyncio.wait_for(asyncio.gather(*waiting), 5)
    assert order == [10, 11, 12]
    assert checks.checkpoints >= 1


async def test_a_checkpoint_due_when_the_writes_stop_runs_from_a_timer(
        database: SQLiteReadModels) -> None:
    checks = _checkpoints(database)
    await asyncio.sleep(0.05)
    await asyncio.to_thread(checks._executor.submit(lambda: None).result)
    before = checks.checkpoints
    await database.run(_upsert(range(5)))  # one burst, then nothing
    for _ in range(100):
        await asyncio.sleep(0.02)
        if checks.checkpoints > before:
            break
    assert checks.checkpoints == before + 1, "no checkpoint after the burst"


async def test_close_waits_for_a_checkpoint_under_way_and_ends_the_thread(
        tmp_path: Path) -> None:
    database = SQLiteReadModels(tmp_path / "rm.db", checkpoint_pages=MARK)
    await database.run(lambda c: c.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY)")))
    for _ in range(100):  # the first commit's checkpoint starts the thread
        await asyncio.sleep(0.01)
        if _checkpoints(database).checkpoints:
            break
    assert checkpoint_threads(), "no checkpoint thread after a commit"
    await database.close()
    assert not [t for t in checkpoint_threads() if t.is_alive()]


async def test_without_checkpoint_pages_sqlite_checkpoints_in_the_commits(
        tmp_path: Path) -> None:
    database = SQLiteReadModels(tmp_path / "rm.db", checkpoint_pages=None)
    try:
        pages = await database.run(
            lambda c: c.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar())
        assert pages == 1000 and database._gate is None
    finally:
        await database.close()


async def test_read_models_in_a_thread_of_their_own_keep_sqlite_checkpoints(
        tmp_path: Path) -> None:
    database = SQLiteReadModels(tmp_path / "rm.db", in_thread=True)
    try:
        await database.run(lambda c: c.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY)")))
        assert database._gate is None
    finally:
        await database.close()


@pytest.mark.parametrize("pages", [0, -5])
def test_a_mark_under_one_page_is_refused(tmp_path: Path, pages: int) -> None:
    with pytest.raises(ConfigurationError, match="checkpoint_pages must be at least 1"):
        SQLiteReadModels(tmp_path / "rm.db", checkpoint_pages=pages)

"""SQLite's WAL is checkpointed between the writer's commits, on a thread of the storage's
own: never inside a commit on the event loop, never beside one."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from invariant.domain.errors import ConfigurationError, StoreError
from invariant.sqlite_wal import (
    LONGEST_WAIT,
    SHORTEST_WAIT,
    WalCheckpoints,
    backstop_pages,
    next_wait,
)
from invariant.store import SQLiteStorage
from invariant.store.sqlite.writer import LoopWriter
from invariant.testing.event_storage_contract import append, new_event
from tests.wal import FRAME, MARK, checkpoint_threads, wal_bytes

pytestmark = pytest.mark.usefixtures("quick_first_checkpoint")


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SQLiteStorage]:
    storage = SQLiteStorage(tmp_path / "events.db", checkpoint_pages=MARK)
    await storage.setup()
    yield storage
    await storage.close()


def _checkpoints(storage: SQLiteStorage) -> WalCheckpoints:
    writer = storage._writer
    assert isinstance(writer, LoopWriter) and writer.checkpoints is not None
    return writer.checkpoints


async def _idle(checks: WalCheckpoints) -> None:
    """Until a checkpoint under way (which sets the next wait) is over."""
    await asyncio.to_thread(checks._executor.submit(lambda: None).result)


async def _settled(storage: SQLiteStorage) -> WalCheckpoints:
    """Until no checkpoint runs or waits to run (the first commits' one included)."""
    checks = _checkpoints(storage)
    writer = storage._writer
    assert isinstance(writer, LoopWriter)
    for _ in range(250):
        await asyncio.sleep(0.02)
        await _idle(checks)
        if checks.remaining() is None and not writer._held:
            break
    assert checks.remaining() is None and not writer._held
    return checks


async def _write(storage: SQLiteStorage, streams: int, events: int, *,
                 wal_peak: list[int] | None = None) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(streams)]

    async def one(stream: uuid.UUID) -> None:
        for version in range(events):
            # a payload of ~4 KiB: each commit writes pages of its own
            await storage.commit(append(f"acct-{stream}", version, new_event(pad="x" * 4000)))
            await asyncio.sleep(0.0005)  # sustained, not one burst
            if wal_peak is not None:
                wal_peak.append(wal_bytes(storage.path))

    await asyncio.gather(*(one(s) for s in ids))
    return ids


async def test_the_wal_stays_bounded_under_sustained_writes(storage: SQLiteStorage) -> None:
    peaks: list[int] = []
    await _write(storage, streams=8, events=300, wal_peak=peaks)
    checks = _checkpoints(storage)
    assert checks.checkpoints > 0, "the thread never checkpointed"
    assert checks.last_error is None
    # What was written would make a WAL ten times the backstop if nothing started it over;
    # the checkpoints keep it under the backstop, where SQLite would step in itself.
    assert 10 * backstop_pages(MARK) * FRAME < 8 * 300 * 4000
    assert max(peaks) < backstop_pages(MARK) * FRAME


async def test_the_writer_keeps_sqlite_checkpoints_as_a_backstop(storage: SQLiteStorage) -> None:
    await _write(storage, streams=1, events=1)
    writer_conn = storage._writer._conn  # type: ignore[union-attr]
    assert writer_conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == backstop_pages(MARK)


async def test_commits_that_arrive_during_a_checkpoint_wait_for_its_end_and_all_land(
        storage: SQLiteStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    await _write(storage, streams=1, events=1)  # the writer exists
    checks = _checkpoints(storage)
    running, release = threading.Event(), threading.Event()
    real = WalCheckpoints._checkpoint

    def slow(self: WalCheckpoints, since: float) -> None:
        running.set()
        release.wait(10)
        real(self, since)

    await _settled(storage)  # no checkpoint of the first commits comes in between
    monkeypatch.setattr(WalCheckpoints, "_checkpoint", slow)
    monkeypatch.setattr(checks, "wait", 0.0)  # due after the next batch
    await storage.commit(append("acct-first", 0, new_event()))  # its batch starts one
    assert await asyncio.to_thread(running.wait, 10)
    held = [asyncio.ensure_future(storage.commit(append(f"acct-{i}", 0, new_event())))
            for i in range(20)]
    await asyncio.sleep(0.05)  # the loop turns many times: nothing commits while it runs
    assert not any(t.done() for t in held)
    assert await storage.head_position() == 2
    monkeypatch.setattr(checks, "wait", 60.0)
    release.set()
    results = await asyncio.wait_for(asyncio.gather(*held), 10)
    # the held commits went in one batch, in the order they came
    assert [r.position for r in results] == list(range(3, 23))
    assert {r.batch_size for r in results} == {20}


async def test_a_burst_that_stops_before_the_checkpoint_is_due_gets_it_when_due(
        storage: SQLiteStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    await _write(storage, streams=1, events=1)
    checks = _checkpoints(storage)
    await _settled(storage)  # the first commits' checkpoint has run: nothing waits for one
    monkeypatch.setattr(checks, "wait", 0.2)
    before = checks.checkpoints
    # a commit, then nothing: it is not due at the commit, so the commit does not run it
    await storage.commit(append("acct-burst", 0, new_event(pad="x" * 4000)))
    assert checks.checkpoints == before
    assert checks.remaining() is not None
    for _ in range(250):
        await asyncio.sleep(0.02)
        if checks.checkpoints > before:
            break
    await _idle(checks)
    assert checks.checkpoints == before + 1, "no checkpoint after the burst"
    assert checks.frames > 0  # it found the burst's frames
    await asyncio.sleep(0.5)
    assert checks.checkpoints == before + 1, "an idle store is checkpointed once, not polled"
    assert checks.remaining() is None


async def test_a_failing_checkpoint_is_logged_once_and_commits_go_on(
        storage: SQLiteStorage, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def refuse(self: WalCheckpoints) -> sqlite3.Connection:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(WalCheckpoints, "_connect", refuse)
    with caplog.at_level(logging.WARNING, logger="invariant.store"):
        await _write(storage, streams=4, events=60)
    checks = _checkpoints(storage)
    assert isinstance(checks.last_error, sqlite3.OperationalError)
    assert checks.checkpoints == 0
    warnings = [r for r in caplog.records if "WAL checkpoint" in r.getMessage()]
    assert len(warnings) == 1 and "disk I/O error" in warnings[0].getMessage()
    assert await storage.head_position() == 4 * 60


async def test_without_a_mark_sqlite_checkpoints_in_the_commits(tmp_path: Path) -> None:
    before = len(checkpoint_threads())
    storage = SQLiteStorage(tmp_path / "events.db", checkpoint_pages=None)
    await storage.setup()
    try:
        await _write(storage, streams=1, events=1)
        assert isinstance(storage._writer, LoopWriter)
        assert storage._writer.checkpoints is None
        assert len(checkpoint_threads()) == before
        writer_conn = storage._writer._conn
        assert writer_conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    finally:
        await storage.close()


async def test_a_writer_in_a_thread_checkpoints_there_at_the_mark(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "events.db", checkpoint_pages=MARK, commit_in_thread=True)
    await storage.setup()
    try:
        peaks: list[int] = []
        await _write(storage, streams=4, events=100, wal_peak=peaks)
        assert max(peaks) < 2 * MARK * FRAME + 200 * 4096  # the mark, plus one batch
        assert await storage.head_position() == 400
    finally:
        await storage.close()


async def test_the_thread_ends_when_the_store_closes(tmp_path: Path) -> None:
    before = len(checkpoint_threads())
    storage = SQLiteStorage(tmp_path / "events.db", checkpoint_pages=MARK)
    await storage.setup()
    await _write(storage, streams=2, events=40)
    assert _checkpoints(storage).checkpoints > 0
    assert len(checkpoint_threads()) == before + 1
    await storage.close()
    assert len(checkpoint_threads()) == before
    await storage.close()  # twice is fine


async def test_closing_during_a_checkpoint_waits_for_it(
        storage: SQLiteStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    await _write(storage, streams=1, events=1)
    checks = _checkpoints(storage)
    running = threading.Event()
    finished: list[bool] = []
    real = WalCheckpoints._checkpoint

    def slow(self: WalCheckpoints, since: float) -> None:
        running.set()
        threading.Event().wait(0.2)
        real(self, since)
        finished.append(True)

    await _settled(storage)  # no checkpoint of the first commits comes in between
    monkeypatch.setattr(WalCheckpoints, "_checkpoint", slow)
    monkeypatch.setattr(checks, "wait", 0.0)
    await storage.commit(append("acct-last", 0, new_event()))
    assert await asyncio.to_thread(running.wait, 10)
    await storage.close()
    assert finished == [True]


async def test_writes_and_reads_stay_correct_while_it_checkpoints(
        storage: SQLiteStorage) -> None:
    ids = await _write(storage, streams=6, events=80)
    checks = _checkpoints(storage)
    assert checks.checkpoints > 0 and checks.last_error is None
    assert await storage.head_position() == 6 * 80
    positions: list[int] = []
    while page := await storage.read_all(after_position=positions[-1] if positions else 0):
        positions += [r.position for r in page]
    assert positions == list(range(1, 6 * 80 + 1))
    for stream in ids:
        versions = [r.stream_version for r in await storage.read_stream(f"acct-{stream}")]
        assert versions == list(range(1, 81))
    # what the thread copied is in the database file itself, read by a fresh connection
    await storage.close()
    with sqlite3.connect(storage.path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert conn.execute("SELECT count(*) FROM invariant_events").fetchone()[0] == 6 * 80


def test_the_wait_follows_the_rate_at_which_frames_are_written() -> None:
    # 4,000 frames in 0.1 s: the mark of 1,000 takes 25 ms; half way from 50 ms
    assert next_wait(0.05, 0.1, 4000, 1000) == pytest.approx(0.0375)
    wait = 0.05
    for _ in range(30):
        wait = next_wait(wait, wait, int(wait * 40_000), 1000)  # 40,000 frames a second
    assert wait == pytest.approx(0.025, rel=0.01)
    assert next_wait(0.05, 0.1, 0, 1000) == 0.05  # nothing written: nothing learnt
    assert next_wait(0.001, 0.0, 10**9, 1000) == SHORTEST_WAIT
    assert next_wait(0.9, 100.0, 1, 1000) == LONGEST_WAIT


def test_checkpoint_pages_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        SQLiteStorage(tmp_path / "events.db", checkpoint_pages=0)


_OTHER_PROCESS = """
import sqlite3, sys
path, rounds = sys.argv[1], int(sys.argv[2])
seen = 0
for _ in range(rounds):
    conn = sqlite3.connect(path, timeout=10)  # a new connection maps the shared memory anew
    count = conn.execute("SELECT count(*) FROM invariant_events").fetchone()[0]
    assert count >= seen, (count, seen)
    seen = count
    conn.close()
print(seen)
"""


async def test_other_processes_opening_the_store_meanwhile_see_it_whole(
        storage: SQLiteStorage) -> None:
    """Nothing the thread does drops the locks of SQLite's own connections (closing any
    descriptor of the ``-shm`` file would): another process opening the store while it runs
    would reset the shared memory under this one's connections."""
    other = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _OTHER_PROCESS, str(storage.path), "400",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    ids = await _write(storage, streams=4, events=100)
    out, err = await other.communicate()
    assert other.returncode == 0, err.decode()
    assert int(out) <= 4 * 100
    for stream in ids:
        versions = [r.stream_version for r in await storage.read_stream(f"acct-{stream}")]
        assert versions == list(range(1, 101))
    assert _checkpoints(storage).checkpoints > 0


def test_a_checkpoint_of_a_missing_file_fails_and_makes_no_new_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    checks = WalCheckpoints(path, mark_pages=MARK)
    checks.committed()
    checks.start().result()  # never raises: the error is kept and logged
    checks.close()
    assert isinstance(checks.last_error, sqlite3.OperationalError)
    assert checks.checkpoints == 0
    assert not path.exists()


async def test_a_store_whose_directory_is_gone_says_so(tmp_path: Path) -> None:
    path = tmp_path / "gone" / "events.db"
    storage = SQLiteStorage(path, checkpoint_pages=MARK)
    await storage.setup()
    await _write(storage, streams=1, events=2)
    await storage.close()
    before = len(checkpoint_threads())
    for leftover in path.parent.iterdir():
        leftover.unlink()
    path.parent.rmdir()
    with pytest.raises(StoreError, match=str(path.parent)):
        await _write(storage, streams=1, events=1)
    assert len(checkpoint_threads()) == before
    await storage.close()

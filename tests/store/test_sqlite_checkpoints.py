"""SQLite's WAL is checkpointed by a thread of the storage's own, off the writers' path."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from invariant.domain.errors import ConfigurationError, StoreError
from invariant.store import SQLiteStorage
from invariant.store.sqlite import checkpoints
from invariant.store.sqlite.checkpoints import Checkpointer, backstop_pages, wal_bytes
from invariant.testing.event_storage_contract import append, new_event

MARK = 50  # pages: small, so that a test crosses it many times


def _checkpointers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "invariant-sqlite-checkpoint"]


def _wal_bytes(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoints, "POLL_SECONDS", 0.005)


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SQLiteStorage]:
    storage = SQLiteStorage(tmp_path / "events.db", checkpoint_pages=MARK)
    await storage.setup()
    yield storage
    await storage.close()


async def _write(storage: SQLiteStorage, streams: int, events: int, *,
                 wal_peak: list[int] | None = None) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(streams)]

    async def one(stream: uuid.UUID) -> None:
        for version in range(events):
            # a payload of ~2 KiB: each commit writes pages of its own
            await storage.commit(append(f"acct-{stream}", version, new_event(pad="x" * 4000)))
            await asyncio.sleep(0.0005)  # sustained, not one burst
            if wal_peak is not None:
                wal_peak.append(_wal_bytes(storage.path))

    await asyncio.gather(*(one(s) for s in ids))
    return ids


async def test_the_wal_stays_bounded_under_sustained_writes(storage: SQLiteStorage) -> None:
    peaks: list[int] = []
    await _write(storage, streams=8, events=300, wal_peak=peaks)
    checkpointer = storage._checkpointer
    assert checkpointer is not None
    assert checkpointer.checkpoints > 0, "the thread never checkpointed"
    assert checkpointer.truncations > 0, "the thread never started the WAL over"
    assert checkpointer.last_error is None
    frame = 4096 + 24
    # What was written would make a WAL ten times its bound if nothing started it over.
    assert 10 * backstop_pages(MARK) * frame < 8 * 300 * 4000
    assert max(peaks) < 2 * backstop_pages(MARK) * frame


async def test_the_writer_keeps_sqlite_checkpoints_as_a_backstop(storage: SQLiteStorage) -> None:
    await _write(storage, streams=1, events=1)
    writer_conn = storage._writer._conn  # type: ignore[union-attr]
    assert writer_conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == backstop_pages(MARK)


async def test_without_the_thread_sqlite_checkpoints_as_usual(tmp_path: Path) -> None:
    before = len(_checkpointers())  # other tests' stores that were never closed
    storage = SQLiteStorage(tmp_path / "events.db", checkpoint_pages=None)
    await storage.setup()
    try:
        await _write(storage, streams=1, events=1)
        assert storage._checkpointer is None
        assert len(_checkpointers()) == before
        writer_conn = storage._writer._conn  # type: ignore[union-attr]
        assert writer_conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    finally:
        await storage.close()


async def test_the_thread_stops_when_the_store_closes(tmp_path: Path) -> None:
    before = len(_checkpointers())
    for commit_in_thread in (False, True):
        storage = SQLiteStorage(tmp_path / f"events-{commit_in_thread}.db",
                                checkpoint_pages=MARK, commit_in_thread=commit_in_thread)
        await storage.setup()
        await _write(storage, streams=2, events=20)
        checkpointer = storage._checkpointer
        assert checkpointer is not None and checkpointer.is_alive()
        await storage.close()
        assert not checkpointer.is_alive()
        assert len(_checkpointers()) == before
        await storage.close()  # twice is fine


async def test_writes_and_reads_stay_correct_while_it_checkpoints(
        storage: SQLiteStorage) -> None:
    ids = await _write(storage, streams=6, events=80)
    checkpointer = storage._checkpointer
    assert checkpointer is not None and checkpointer.checkpoints > 0
    assert checkpointer.last_error is None
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


def test_an_overgrown_wal_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode = WAL")
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("CREATE TABLE t (x BLOB)")
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()  # holds its snapshot: the WAL grows
    for _ in range(300):
        writer.execute("INSERT INTO t VALUES (randomblob(4000))")
    reader.execute("COMMIT")
    grown = _wal_bytes(path)
    assert grown > 300 * 4096
    checkpointer = Checkpointer(path, mark_pages=10, truncate_pages=20, poll_seconds=0.01)
    checkpointer.open()
    try:
        for _ in range(500):
            if checkpointer.truncations:
                break
            threading.Event().wait(0.01)
    finally:
        checkpointer.stop()
    assert checkpointer.truncations > 0
    assert _wal_bytes(path) == 0
    assert writer.execute("SELECT count(*) FROM t").fetchone()[0] == 300
    writer.close()
    reader.close()


async def test_wal_bytes_is_the_wal_files_size(storage: SQLiteStorage) -> None:
    await _write(storage, streams=1, events=3)
    assert wal_bytes(storage.path) == _wal_bytes(storage.path) > 0
    assert wal_bytes(storage.path.parent / "missing.db") == 0


def test_a_checkpointer_on_a_missing_path_says_so(tmp_path: Path) -> None:
    checkpointer = Checkpointer(tmp_path / "nowhere" / "events.db")
    with pytest.raises(StoreError, match="nowhere"):
        checkpointer.open()
    assert not checkpointer.is_alive()


def test_a_checkpointer_on_a_database_not_in_wal_mode_says_so(tmp_path: Path) -> None:
    path = tmp_path / "rollback.db"
    sqlite3.connect(path).close()
    with pytest.raises(StoreError, match="not in WAL mode"):
        Checkpointer(path).open()


def test_checkpoint_pages_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        SQLiteStorage(tmp_path / "events.db", checkpoint_pages=0)


async def test_a_store_whose_checkpointer_cannot_open_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Checkpointer) -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(Checkpointer, "_connect", refuse)
    before = len(_checkpointers())
    storage = SQLiteStorage(tmp_path / "events.db", checkpoint_pages=MARK)
    with pytest.raises(StoreError, match=r"cannot checkpoint SQLite database .*events\.db"):
        await storage.setup()
    assert storage._writer is None
    assert len(_checkpointers()) == before
    await storage.close()


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
    assert storage._checkpointer is not None and storage._checkpointer.checkpoints > 0


async def test_a_store_whose_directory_is_gone_says_so_and_starts_no_thread(
        tmp_path: Path) -> None:
    path = tmp_path / "gone" / "events.db"
    storage = SQLiteStorage(path, checkpoint_pages=MARK)
    await storage.setup()
    await _write(storage, streams=1, events=2)
    await storage.close()
    before = len(_checkpointers())
    for leftover in path.parent.iterdir():
        leftover.unlink()
    path.parent.rmdir()
    with pytest.raises(StoreError, match=str(path.parent)):
        await _write(storage, streams=1, events=1)
    assert storage._checkpointer is None
    assert len(_checkpointers()) == before
    await storage.close()

"""SQLite event storage: the embedded default, and the rooms it is made of.

* Durable by default: WAL journal with ``synchronous=FULL``.
* Writes are **group-committed**: the commits that reach the writer during one turn of the
  event loop are written in one transaction, so many concurrent commands share one fsync.
  Each commit checks its expected versions before it writes, so one refused commit never
  affects the others; the common one-event commits of a batch are inserted with a single
  ``executemany``.
* Reads run on the calling thread (SQLite reads take microseconds, less than a thread hop),
  in bounded keyset pages that yield to the event loop between pages.
* Positions come from SQLite's single-writer lock, so commit order is position order and a
  follower never skips an event.
* The WAL is checkpointed between commits, once ``checkpoint_pages`` frames were written:
  with the writer on the event loop, on a thread while the writer holds its next batch
  (see :mod:`~invariant.sqlite_wal`), so the loop runs on meanwhile.

Rooms: :mod:`~invariant.store.sqlite.schema` (the tables, as data),
:mod:`~invariant.store.sqlite.writer` (group commit on the loop or a thread),
:mod:`~invariant.store.sqlite.commits` (checks and inserts of one commit),
:mod:`~invariant.store.sqlite.batch_insert` (a batch's one-event commits at once),
:mod:`~invariant.store.sqlite.reads` (reads),
:mod:`~invariant.sqlite_wal` (the WAL's checkpoints); this module holds the lifecycle.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from invariant.clock import Clock, micros_of, utc_now
from invariant.domain.errors import ConfigurationError, StoreError
from invariant.files import private_file
from invariant.sql import outbox
from invariant.sqlite_wal import DEFAULT_MARK_PAGES, WalCheckpoints, backstop_pages
from invariant.store.records import Commit, CommitResult, validate_append
from invariant.store.signal import CommitSignal, wait_for_head
from invariant.store.sqlite.catalog import SQLiteCatalog
from invariant.store.sqlite.commits import Job, PreparedCommit
from invariant.store.sqlite.schema import SCHEMA
from invariant.store.sqlite.writer import LoopWriter, ThreadWriter

_MARK_PUBLISHED = outbox.mark_published(outbox.SQLITE, "", ids="(?)", now="?")


class SQLiteStorage(SQLiteCatalog):
    """Event storage in one SQLite file (``":memory:"`` is refused: use MemoryStorage).

    ``checkpoint_pages``: the WAL frames written between two checkpoints (4,000 by default;
    SQLite's own mark is 1,000). With the writer on the event loop a checkpoint runs on a
    thread between two batches, the writer's own SQLite checkpoint staying as a backstop at
    four times the mark; with ``commit_in_thread`` the writer's thread checkpoints after
    the commit that crosses the mark. ``None`` leaves checkpoints to SQLite as it comes,
    inside the commits at its 1,000 frames.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Clock = utc_now,
        synchronous: str = "FULL",
        max_batch: int = 512,
        busy_timeout_ms: int = 10_000,
        commit_in_thread: bool = False,
        checkpoint_pages: int | None = DEFAULT_MARK_PAGES,
    ) -> None:
        if str(path) == ":memory:":
            raise ConfigurationError(
                "SQLiteStorage needs a file (readers and the writer share it); "
                "use MemoryStorage for an in-memory store"
            )
        if synchronous.upper() not in ("FULL", "EXTRA", "NORMAL", "OFF"):
            raise ConfigurationError(f"unknown SQLite synchronous mode {synchronous!r}")
        if checkpoint_pages is not None and checkpoint_pages < 1:
            raise ConfigurationError(
                f"checkpoint_pages must be at least 1, or None (got {checkpoint_pages})")
        self.path = Path(path)
        self._now = micros_of(clock)
        self._synchronous = synchronous.upper()
        self._max_batch = max_batch
        self._busy_timeout_ms = busy_timeout_ms
        self._commit_in_thread = commit_in_thread
        self._checkpoint_pages = checkpoint_pages
        self._writer: LoopWriter | ThreadWriter | None = None
        self._writer_loop: asyncio.AbstractEventLoop | None = None
        self._local = threading.local()
        self._committed = CommitSignal()

    # -- lifecycle -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"could not switch {self.path} to WAL mode (got {mode})")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        return conn

    async def setup(self) -> None:
        private_file(self.path)  # 0600 (and 0700 directories) before SQLite creates it

        def create(conn: sqlite3.Connection) -> None:
            for statement in SCHEMA:
                conn.execute(statement)

        await self._write(create)

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if isinstance(writer, ThreadWriter):
            await asyncio.get_running_loop().run_in_executor(None, writer.close)
        elif writer is not None:
            await writer.aclose()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _ensure_writer(self, loop: asyncio.AbstractEventLoop) -> LoopWriter | ThreadWriter:
        writer = self._writer
        if writer is None:
            mark = self._checkpoint_pages
            if self._commit_in_thread:
                thread = ThreadWriter(lambda: self._autocheckpoint(self._connect(), mark),
                                      self._max_batch)
                thread.start()
                thread.ready.wait()
                if thread.start_error is not None:
                    raise StoreError(
                        f"cannot open SQLite database {self.path}: {thread.start_error}"
                    ) from thread.start_error
                writer = thread
            else:
                try:
                    conn = self._connect()
                except sqlite3.Error as exc:
                    raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc
                checkpoints = None
                if mark is not None:
                    self._autocheckpoint(conn, backstop_pages(mark))
                    checkpoints = WalCheckpoints(self.path, mark_pages=mark,
                                                 busy_timeout_ms=self._busy_timeout_ms)
                writer = LoopWriter(conn, self._max_batch, checkpoints)
            self._writer, self._writer_loop = writer, loop
        elif loop is not self._writer_loop and not self._commit_in_thread:
            raise ConfigurationError(
                "this SQLiteStorage commits on the event loop it was first used on; create one "
                "storage per event loop, or pass commit_in_thread=True"
            )
        return writer

    @staticmethod
    def _autocheckpoint(conn: sqlite3.Connection, pages: int | None) -> sqlite3.Connection:
        if pages is not None:
            conn.execute(f"PRAGMA wal_autocheckpoint = {int(pages)}")
        return conn

    async def _write(self, work: Callable[[sqlite3.Connection], Any],
                     commit: PreparedCommit | None = None) -> Any:
        """Run ``work`` in the next group-commit transaction; resolves once it is durable."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._ensure_writer(loop).submit(Job(work, loop, future, commit))
        return await future

    # -- writing ---------------------------------------------------------------------------

    async def commit(self, commit: Commit) -> CommitResult:
        for request in commit.appends:
            validate_append(request)
        prepared = PreparedCommit(commit, self._now())
        result: CommitResult = await self._write(prepared.work, prepared)
        self._committed.notify()
        outbox.COMMITTED.wake()  # its events' (and messages') outbox rows
        return result

    # Commits of other processes wake nobody here: they are seen by the periodic re-check.
    commit_recheck_seconds = 2.0

    async def wait_for_commit(self, after_position: int, timeout: float) -> None:  # noqa: ASYNC109
        await wait_for_head(self.head_position, self._committed, after_position, timeout,
                            recheck=self.commit_recheck_seconds)

    async def mark_published(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        await self._write(
            lambda conn: conn.executemany(_MARK_PUBLISHED, [(i,) for i in ids])
        )

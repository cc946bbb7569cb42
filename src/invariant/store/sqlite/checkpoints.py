"""WAL checkpoints off the writer's path: a thread with its own connection.

SQLite checkpoints its WAL automatically, by default whenever a commit leaves more than
1,000 pages in it, and it does so *inside that commit*, on the writer's connection: the
command whose commit crossed the mark waits while pages are copied into the database file
and both files are synced. In a small store that is cheap; in a large one each checkpoint
touches pages scattered over a big file, and the commits that pay for it set the pace of
every writer.

:class:`Checkpointer` moves that work to a thread of its own. It watches the WAL file grow
and once ``mark_pages`` pages were added since its last checkpoint it runs ``PRAGMA
wal_checkpoint(PASSIVE)``, which never blocks writers or readers; it also runs one at least
every :data:`MAX_WAIT_SECONDS`, for the pages a writer wrote over the start of a WAL that
SQLite started over (the file does not grow then; a checkpoint with nothing to copy costs
next to nothing). SQLite starts the WAL over only when a writer finds all of it copied and
no reader in it; when writers never pause, or readers hold old snapshots, that may not
happen, so once the file holds ``truncate_pages`` pages the thread runs
``wal_checkpoint(TRUNCATE)`` without waiting for the write lock (a TRUNCATE that waits would
hold off the writer's own checkpoint while writers keep the lock busy); if a writer has it,
it tries again at the next poll.

The thread only ever calls ``stat`` on the WAL file: it never opens it, nor the ``-shm``
file, itself. Closing a file descriptor drops every POSIX lock the process holds on that
file, the locks of SQLite's own connections included, and another process would then take
the shared memory for unused and reset it under their feet.

The writer keeps SQLite's own checkpoint as a backstop at :func:`backstop_pages`: if this
thread dies or falls behind, the WAL still cannot grow without bound.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

from invariant.domain.errors import StoreError

_log = logging.getLogger("invariant.store")

DEFAULT_MARK_PAGES = 4_000
"""Frames waiting in the WAL before the checkpointer copies them (SQLite's own: 1,000)."""

TRUNCATE_FACTOR = 2
"""A WAL of this many times the mark is started over (TRUNCATE) if SQLite has not done so."""

BACKSTOP_FACTOR = 4
"""The writer's own automatic checkpoint runs at this many times the mark."""

POLL_SECONDS = 0.05
"""How often the checkpointer looks at the WAL file's size (a ``stat``)."""

MAX_WAIT_SECONDS = 1.0
"""The longest time between two checkpoints while the store is open."""

TRUNCATE_BUSY_MS = 0
"""How long a TRUNCATE checkpoint may wait for the write lock and readers: not at all."""


def backstop_pages(mark_pages: int) -> int:
    """The writer connection's ``wal_autocheckpoint`` while a checkpointer runs."""
    return mark_pages * BACKSTOP_FACTOR


def wal_bytes(path: Path) -> int:
    """The size of ``path``'s WAL file (0 if there is none), without opening it."""
    try:
        return os.stat(f"{path}-wal").st_size
    except OSError:
        return 0


class Checkpointer(threading.Thread):
    """Checkpoints ``path``'s WAL from a thread of its own until :meth:`stop`."""

    def __init__(self, path: Path, *, mark_pages: int = DEFAULT_MARK_PAGES,
                 truncate_pages: int | None = None, busy_timeout_ms: int = 10_000,
                 poll_seconds: float | None = None) -> None:
        super().__init__(name="invariant-sqlite-checkpoint", daemon=True)
        self.path = path
        self.mark_pages = mark_pages
        self.truncate_pages = truncate_pages or mark_pages * TRUNCATE_FACTOR
        self._busy_timeout_ms = busy_timeout_ms
        self._poll = POLL_SECONDS if poll_seconds is None else poll_seconds
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self.checkpoints = 0
        """Checkpoints run so far (PASSIVE and TRUNCATE)."""
        self.truncations = 0
        self.last_error: BaseException | None = None
        self._frame_bytes = 4096 + 24
        self._pages_then = 0  # the WAL file's size in pages at the last checkpoint
        self._when = 0.0  # time.monotonic() of the last checkpoint

    def open(self) -> None:
        """Start the thread once its connection is open; :class:`StoreError` if it cannot."""
        self.start()
        self._ready.wait()
        if self._start_error is not None:
            self.join()
            raise StoreError(
                f"cannot checkpoint SQLite database {self.path}: {self._start_error}"
            ) from self._start_error

    def stop(self) -> None:
        """Stop the thread and wait for it (a checkpoint under way runs to its end)."""
        self._stopping.set()
        if self.is_alive():
            self.join()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"the database is not in WAL mode ({mode})")
            conn.execute("PRAGMA wal_autocheckpoint = 0")  # it never commits anyway
        except BaseException:
            conn.close()
            raise
        return conn

    def run(self) -> None:
        """The thread: watch the WAL, checkpoint it when it passes the mark."""
        try:
            conn = self._connect()
            self._frame_bytes = int(conn.execute("PRAGMA page_size").fetchone()[0]) + 24
        except BaseException as exc:  # reported by open()
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stopping.wait(self._poll):
                try:
                    self._turn(conn)
                except sqlite3.Error as exc:  # the writer's backstop covers for us meanwhile
                    if self.last_error is None or str(exc) != str(self.last_error):
                        _log.warning("WAL checkpoint of %s failed: %s", self.path, exc)
                    self.last_error = exc
        finally:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def _turn(self, conn: sqlite3.Connection) -> None:
        pages = wal_bytes(self.path) // self._frame_bytes
        now = time.monotonic()
        if pages < self._pages_then:  # truncated meanwhile (by us or another process)
            self._pages_then = 0
        if pages - self._pages_then >= self.mark_pages or now - self._when >= MAX_WAIT_SECONDS:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.checkpoints += 1
            self._pages_then, self._when = pages, now
        if pages < self.truncate_pages:
            return
        # SQLite starts the WAL over only when a writer finds it all copied and unread; with
        # writers always at work it may never do so. Make it, without waiting for others.
        conn.execute(f"PRAGMA busy_timeout = {TRUNCATE_BUSY_MS}")
        try:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            self.checkpoints += 1
            if not busy:
                self.truncations += 1
                self._pages_then = 0
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")

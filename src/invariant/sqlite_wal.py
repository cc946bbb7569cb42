"""WAL checkpoints between a writer's commits, on a thread, never beside them: for the event
store's writer and for the SQLite read models' (whose transactions write the same kind of
scattered index pages, and in a one-file application the same WAL).

SQLite copies its WAL back into the database file (a *checkpoint*) inside the commit that
leaves more than ``wal_autocheckpoint`` pages in it (1,000 by default): the commit's caller
waits while pages are written to the database file and that file is synced. Two things
make that dear in a large store:

* **Each checkpoint's writes.** A commit to a store of many streams dirties a leaf of the
  stream index for each stream it appends to, scattered over the file; a checkpoint writes
  every page the WAL holds once, however many commits wrote it. The more frames wait, the
  more commits' writes of one page are folded into one: measured on a 200,000-event store
  (20,000 one-event commits to new streams from 64 senders), a mark of 4,000 pages halved
  the bytes written to the disk per commit (62 KiB with SQLite's 1,000, 24 to 31 KiB).
* **Where it runs.** :class:`~invariant.store.sqlite.writer.LoopWriter` commits on the
  event loop, so every command of the process stands still for a checkpoint, though it
  needs nothing from the disk to go on with its own work (load its aggregate, decide).

:class:`WalCheckpoints` moves the checkpoint out of the commit and off the loop, but not
beside the commits: when one is due, the writer finishes its batch, *holds* the commits
that arrive meanwhile and runs ``PRAGMA wal_checkpoint(PASSIVE)`` on a thread with a
connection of its own; once it is done, the held commits go in one batch. The loop keeps
running commands meanwhile, and the checkpoint's sync of the database file never runs
while the writer syncs the WAL. (A thread that checkpointed freely beside the commits was
tried first: each commit then waited behind the checkpoint's syncs, and sequential
commits were a third slower.)

When is one due? SQLite's own rule counts the WAL's frames, and Python's ``sqlite3`` cannot
see that count without running a checkpoint. So the rule here is by time, adjusted to the
frames (:func:`next_wait`): each checkpoint reports the frames it found, the rate at which
the commits since the last one wrote them gives the time in which ``mark_pages`` frames are
written, and the next checkpoint is due that long after the first commit that follows this
one (a burst after a quiet while is timed from its own first commit); when the commits
stop before it is due, the writer runs it once it is, so a burst does not leave its frames
in the WAL for every later read to look through. The writer's
connection keeps SQLite's automatic checkpoint as a backstop at :func:`backstop_pages`, for
a WAL that grows faster than the estimate.

The thread never opens the WAL or its ``-shm`` file itself: closing any descriptor of a
file drops every POSIX lock the process holds on it, SQLite's own connections' included,
and another process would then take the shared memory for unused and reset it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

_log = logging.getLogger("invariant.store")

DEFAULT_MARK_PAGES = 4_000
"""WAL frames written between two checkpoints (SQLite's own mark is 1,000)."""

BACKSTOP_FACTOR = 4
"""The writer's own automatic checkpoint runs at this many times the mark."""

FIRST_WAIT = 0.05
"""Seconds from the first commit to the first checkpoint, before any rate is known."""

SHORTEST_WAIT = 0.002
LONGEST_WAIT = 1.0

THREAD_NAME = "invariant-sqlite-checkpoint"


def backstop_pages(mark_pages: int) -> int:
    """The writer connection's ``wal_autocheckpoint`` while checkpoints run between commits."""
    return mark_pages * BACKSTOP_FACTOR


def next_wait(wait: float, elapsed: float, frames: int, mark_pages: int) -> float:
    """The time to the next checkpoint, after one that found ``frames`` frames written in
    ``elapsed`` seconds: the time ``mark_pages`` frames take at that rate, moved to half
    way from ``wait`` (one odd batch does not swing it), within bounds."""
    if frames <= 0:
        return wait
    wanted = max(elapsed, 1e-6) * mark_pages / frames
    return min(LONGEST_WAIT, max(SHORTEST_WAIT, (wait + wanted) / 2))


class WalCheckpoints:
    """When a checkpoint is due, and the thread that runs it.

    Used by one writer from one thread (the event loop's): :meth:`committed` after each
    batch, :meth:`due` to ask, :meth:`start` to run one (the writer holds its commits until
    the returned future is done), :meth:`close` at the end.
    """

    def __init__(self, path: Path, *, mark_pages: int = DEFAULT_MARK_PAGES,
                 busy_timeout_ms: int = 10_000) -> None:
        self.path = path
        self.mark_pages = mark_pages
        self._busy_timeout_ms = busy_timeout_ms
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=THREAD_NAME)
        self._conn: sqlite3.Connection | None = None  # made and used on the thread only
        self.wait = FIRST_WAIT
        """Seconds from the first commit after a checkpoint to the next checkpoint."""
        self._since: float | None = None  # the first commit since the last checkpoint
        self.checkpoints = 0
        """Checkpoints run so far."""
        self.frames = 0
        """Frames the last checkpoint found in the WAL."""
        self.last_error: BaseException | None = None

    def committed(self) -> None:
        """A batch was committed: start the clock if it is the first since a checkpoint."""
        if self._since is None:
            self._since = time.monotonic()

    def due(self) -> bool:
        """Whether a checkpoint should run before the next batch."""
        since = self._since
        return since is not None and time.monotonic() - since >= self.wait

    def remaining(self) -> float | None:
        """Seconds until a checkpoint is due; None while nothing was committed since the last."""
        since = self._since
        if since is None:
            return None
        return max(0.0, since + self.wait - time.monotonic())

    def start(self) -> Future[None]:
        """Run a checkpoint on the thread; the future is done when it is (it never fails:
        an error is logged and kept in :attr:`last_error`, the backstop covers for it)."""
        since = self._since if self._since is not None else time.monotonic()
        self._since = None
        return self._executor.submit(self._checkpoint, since)

    def close(self) -> None:
        """Wait for a checkpoint under way, close the thread's connection, end the thread."""
        with contextlib.suppress(RuntimeError):  # closed before
            self._executor.submit(self._close)
        self._executor.shutdown(wait=True)

    # -- on the thread ---------------------------------------------------------------------

    def _checkpoint(self, since: float) -> None:
        try:
            conn = self._conn
            if conn is None:
                conn = self._conn = self._connect()
            _busy, frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            if self.last_error is None or str(exc) != str(self.last_error):
                _log.warning("WAL checkpoint of %s failed (SQLite's own checkpoint in the "
                             "commits covers for it): %s", self.path, exc)
            self.last_error = exc
            return
        self.checkpoints += 1
        self.frames = frames
        self.wait = next_wait(self.wait, time.monotonic() - since, frames, self.mark_pages)

    def _connect(self) -> sqlite3.Connection:
        # mode=rw: a store whose file is gone is an error here, not a new empty database
        conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=rw", uri=True,
                               isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA wal_autocheckpoint = 0")  # it never commits anyway
        except BaseException:
            conn.close()
            raise
        return conn

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()


class BetweenBatches:
    """Runs :class:`WalCheckpoints` between the batches of a writer on the event loop.

    The writer calls :meth:`after_batch` once each batch has committed and, while
    :attr:`held` is true, flushes nothing: its batches wait for the checkpoint's end, when
    ``resume`` is called (on the loop) to flush what arrived meanwhile. A checkpoint that
    comes due while the writer is idle runs from a timer, unless ``busy()`` says a flush is
    on its way (that flush looks for itself).
    """

    def __init__(self, checkpoints: WalCheckpoints, *, resume: Callable[[], None],
                 busy: Callable[[], bool]) -> None:
        self.checkpoints = checkpoints
        self.held = False
        """A checkpoint runs: the writer's batches wait for its end."""
        self._resume = resume
        self._busy = busy
        self._timer: asyncio.TimerHandle | None = None

    def after_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        """A batch committed: run a checkpoint now if one is due, else look again when it is."""
        checkpoints = self.checkpoints
        checkpoints.committed()
        if checkpoints.due():
            self._hold(loop)
        elif self._timer is None:
            self._arm(loop)

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        remaining = self.checkpoints.remaining()
        if remaining is not None:
            self._timer = loop.call_later(remaining, self._on_timer, loop)

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        if self.held or self._busy():
            return
        if self.checkpoints.due():
            self._hold(loop)
        else:
            self._arm(loop)

    def _hold(self, loop: asyncio.AbstractEventLoop) -> None:
        self.held = True

        def resume() -> None:
            self.held = False
            self._resume()

        def done(_: object) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
                loop.call_soon_threadsafe(resume)

        self.checkpoints.start().add_done_callback(done)

    async def aclose(self) -> None:
        """No checkpoint from now on; wait for one under way and end the thread."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        await asyncio.get_running_loop().run_in_executor(None, self.checkpoints.close)

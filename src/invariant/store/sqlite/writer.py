"""Group commit: the writer that runs the commits of many commands in one transaction,
on the event loop's thread (:class:`LoopWriter`) or a thread of its own (:class:`ThreadWriter`).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from invariant.domain.errors import InvariantError, StoreError
from invariant.sqlite_wal import BetweenBatches, WalCheckpoints
from invariant.store.records import CommitResult
from invariant.store.sqlite.batch_insert import insert_singles
from invariant.store.sqlite.commits import Job, Refused


def _run_batch(conn: sqlite3.Connection, batch: list[Job]) -> None:
    """Run every job of ``batch`` in one transaction (one fsync for all of them).

    Jobs check everything that can refuse them (expected versions) before they write, so a
    refused job leaves nothing behind and the others commit as usual. If a job fails while
    writing, or the transaction itself fails, the batch is rolled back and its jobs are run
    again one transaction each, so every job gets its own outcome.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
        for job in insert_singles(conn, batch) if len(batch) > 1 else batch:
            try:
                job.result = job.work(conn)
                job.error = None
            except Refused as refusal:  # raised before the job wrote anything
                job.error = refusal.error
        conn.execute("COMMIT")
    except Exception:
        _rollback(conn)
        if len(batch) == 1:
            _run_alone(conn, batch[0])
        else:
            for job in batch:
                _run_alone(conn, job)


def _run_alone(conn: sqlite3.Connection, job: Job) -> None:
    try:
        conn.execute("BEGIN IMMEDIATE")
        job.result = job.work(conn)
        job.error = None
        conn.execute("COMMIT")
    except Exception as exc:
        _rollback(conn)
        job.result = None
        job.error = exc.error if isinstance(exc, Refused) else _translate(exc)


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _translate(exc: BaseException) -> BaseException:
    if isinstance(exc, InvariantError):
        return exc
    if isinstance(exc, sqlite3.Error):
        err = StoreError(f"SQLite failed: {exc}")
        err.__cause__ = exc
        return err
    return exc


def _settle(jobs: list[Job]) -> None:
    for job in jobs:
        if job.future.done():
            continue
        if job.error is not None:
            job.future.set_exception(job.error)
        else:
            job.future.set_result(_in_batch(job.result, len(jobs)))


def _in_batch(result: object, size: int) -> object:
    if size > 1 and isinstance(result, CommitResult):
        return replace(result, batch_size=size)
    return result


class LoopWriter:
    """Group commit on the event loop thread.

    A commit enqueues its job and schedules one flush with ``call_soon``; every command
    that reaches its commit during the same loop iteration joins that flush, so they share
    one transaction and one fsync, with no thread hop at all. The loop is blocked for the
    duration of that fsync.

    When nothing else is queued on the loop (asyncio's ``_ready`` is empty), no command can
    join a flush scheduled now, so a lone commit is flushed at once and its command goes on
    without waiting for a turn of the loop. At most ``_DIRECT_STREAK`` in a row: then a
    flush is scheduled again, so that a sequential writer still lets I/O and timers run.
    """

    _DIRECT_STREAK = 16

    def __init__(self, conn: sqlite3.Connection, max_batch: int,
                 checkpoints: WalCheckpoints | None = None) -> None:
        self._conn = conn
        self._max_batch = max_batch
        self._pending: list[Job] = []
        self._scheduled = False
        self._direct = 0
        self._gate = None if checkpoints is None else BetweenBatches(
            checkpoints, resume=self._resume, busy=lambda: self._scheduled or bool(self._pending))

    @property
    def _held(self) -> bool:
        """A checkpoint runs: commits wait for it."""
        return self._gate is not None and self._gate.held

    def submit(self, job: Job) -> None:
        """Queue ``job`` for the next flush (or flush it at once, see above)."""
        self._pending.append(job)
        if self._scheduled or self._held:
            return
        loop = job.loop
        ready = getattr(loop, "_ready", None)  # other loops (uvloop) always schedule
        if type(ready) is deque and not ready and self._direct < self._DIRECT_STREAK:
            self._direct += 1
            try:
                self._flush()
            except Exception as exc:  # the job has its error; report the bug as a flush would
                loop.call_exception_handler({"message": "SQLite commit failed unexpectedly",
                                             "exception": exc})
            return
        self._direct = 0
        self._scheduled = True
        loop.call_soon(self._flush)

    def _flush(self) -> None:
        if self._held:  # the checkpoint's end schedules the next flush
            self._scheduled = False
            return
        batch = self._pending[: self._max_batch]
        del self._pending[: self._max_batch]
        loop = batch[0].loop
        if self._pending:
            loop.call_soon(self._flush)
        else:
            self._scheduled = False
        try:
            _run_batch(self._conn, batch)
        except BaseException as exc:  # a bug here must not leave a command waiting forever
            for job in batch:
                if job.error is None and job.result is None:
                    job.error = StoreError(f"SQLite commit failed unexpectedly: {exc!r}")
            raise
        finally:
            _settle(batch)
            if self._gate is not None:
                self._gate.after_batch(loop)

    def _resume(self) -> None:
        """The checkpoint ended: flush the commits that waited for it."""
        if self._pending and not self._scheduled:
            self._scheduled = True
            self._direct = 0
            self._pending[0].loop.call_soon(self._flush)

    @property
    def checkpoints(self) -> WalCheckpoints | None:
        """The checkpoints run between this writer's batches, if any."""
        return None if self._gate is None else self._gate.checkpoints

    async def aclose(self) -> None:
        """End the checkpoint thread (after a checkpoint under way), close the connection."""
        gate, self._gate = self._gate, None  # no new checkpoint
        if gate is not None:
            await gate.aclose()
        self._conn.close()


_STOP = object()


class ThreadWriter(threading.Thread):
    """Group commit on a dedicated thread: the loop never blocks, each batch costs a hop."""

    def __init__(self, conn_factory: Callable[[], sqlite3.Connection], max_batch: int) -> None:
        super().__init__(name="invariant-sqlite-writer", daemon=True)
        self._connect = conn_factory
        self._max_batch = max_batch
        self.jobs: queue.SimpleQueue[Job | object] = queue.SimpleQueue()
        self.ready = threading.Event()
        self.start_error: BaseException | None = None

    def submit(self, job: Job) -> None:
        """Queue ``job`` for the thread's next batch."""
        self.jobs.put(job)

    def run(self) -> None:
        """The thread: open the connection, then run batches until closed."""
        try:
            conn = self._connect()
        except BaseException as exc:  # reported to the caller
            self.start_error = exc
            self.ready.set()
            return
        self.ready.set()
        try:
            stop = False
            while not stop:
                first = self.jobs.get()
                if first is _STOP:
                    return
                batch: list[Job] = [first]  # type: ignore[list-item]
                while len(batch) < self._max_batch:
                    try:
                        nxt = self.jobs.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        stop = True
                        break
                    batch.append(nxt)  # type: ignore[arg-type]
                _run_batch(conn, batch)
                by_loop: dict[asyncio.AbstractEventLoop, list[Job]] = {}
                for job in batch:
                    by_loop.setdefault(job.loop, []).append(job)
                for loop, jobs in by_loop.items():
                    # RuntimeError: that loop closed, so nobody waits for these jobs.
                    with contextlib.suppress(RuntimeError):
                        loop.call_soon_threadsafe(_settle, jobs)
        finally:
            conn.close()

    def close(self) -> None:
        """Stop the thread after the jobs queued before, and wait for it."""
        self.jobs.put(_STOP)
        self.join()

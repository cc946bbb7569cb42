"""The database handle of everything above the event store: read models and their
checkpoints, the outbox relay, consumers' inboxes, jobs, the SQL broker, process state and
state-stored aggregates, all in the event store's own database.

Work is written as *synchronous* SQLAlchemy Core against a ``Connection`` and run in one
transaction by :meth:`ReadModelDatabase.run`:

* **SQLite**: on the event loop's thread, like the event store's own group commit: no
  thread hop per transaction. Write transactions asked for during one turn of the loop are
  run together at the start of the next, each in a savepoint of one SQLite transaction (a
  failing one rolls back alone and its caller gets the error), and committed once: one
  fsync for all of them. Every caller suspends until that commit, so a worker with a
  backlog gives the loop back at every transaction and HTTP requests and the other workers
  run between its transactions (see ``docs/explanation/pipeline.md``). The work never
  waits for the loop while it holds the write lock (it is synchronous), so it cannot stall
  the event store's writer, which commits on the same thread. ``SQLiteReadModels(path,
  in_thread=True)`` runs the transactions in a thread of their own instead, for handlers
  too slow to block the loop.
* **PostgreSQL**: on asyncpg through SQLAlchemy's ``run_sync``, in the event store's schema.

A transaction can ask for a :class:`~invariant.wakeups.Wakeups` to be woken once it has
committed (:func:`wake_after_commit`): the outbox relays are woken so by transactions that
wrote outbox rows, after the commit, never before it (a relay woken before would find
nothing and sleep until its next poll).

Leases (:meth:`try_lease`) keep one worker per projection: a session-level advisory lock on
PostgreSQL, held by a dedicated connection, released by the server when the holder dies.
SQLite needs none: its single writer lock plus the checkpoint check in every transaction
already make a second worker harmless (it applies nothing twice; see the runner).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import time
from collections.abc import Callable, Mapping
from contextvars import copy_context
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import Connection, Engine, Executable, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from invariant.domain.errors import ConfigurationError, StoreError
from invariant.extras import needs_extra
from invariant.files import private_file
from invariant.sql.direct import use_direct_connections
from invariant.sql.engine import create_engine as create_async_engine
from invariant.sqlite_wal import DEFAULT_MARK_PAGES, BetweenBatches, WalCheckpoints, backstop_pages
from invariant.wakeups import Wakeups

T = TypeVar("T")

DEFAULT_POOL = 15
"""PostgreSQL read models' connections at most when no ``pool`` is given."""

_BEGIN = "invariant_begin"
_AFTER_COMMIT = "invariant_wake_after_commit"


def wake_after_commit(conn: Connection, wakeups: Wakeups) -> None:
    """Wake ``wakeups`` once the transaction of ``conn`` has committed (one run by
    :meth:`ReadModelDatabase.run`, or followed by :func:`committed`); not at all if it is
    rolled back."""
    info = conn.info
    info[_AFTER_COMMIT] = info.get(_AFTER_COMMIT, frozenset()) | {wakeups}  # never changed
    # in place: a savepoint rolled back puts back the set it began with


def _forget(conn: Connection) -> None:
    """At a transaction's start: what a rolled-back one asked for is not woken."""
    conn.info.pop(_AFTER_COMMIT, None)


def committed(conn: Connection) -> None:
    """After a commit on ``conn``: wake what its transaction asked for (done by
    :meth:`ReadModelDatabase.run`; call it after transactions of your own)."""
    woken = conn.info.pop(_AFTER_COMMIT, None)
    if woken is not None:
        for wakeups in woken:
            wakeups.wake()


class Lease(Protocol):
    """The right to run one projection, held until released or lost."""

    def held(self) -> bool:
        """False once the lease is lost (its connection died): stop working then."""

    async def release(self) -> None:
        """Give the lease back."""


class _LocalLease:
    def held(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class ReadModelDatabase:
    """Runs read-model transactions on SQLite or PostgreSQL (see the module docstring)."""

    dialect: str

    @staticmethod
    def for_url(url: str, *, schema: str | None = None, in_thread: bool = False,
                pool: int | None = None) -> ReadModelDatabase:
        """``sqlite:///path.db`` or ``postgresql://user@host/db`` (with ``schema``);
        ``in_thread`` runs SQLite transactions in a thread of their own (see
        :class:`SQLiteReadModels`); ``pool`` bounds PostgreSQL's connections."""
        name = make_url(url).get_backend_name()
        if name == "sqlite":
            if schema is not None:
                raise ConfigurationError("schema= applies to PostgreSQL only")
            database = make_url(url).database
            if not database or database == ":memory:":
                raise ConfigurationError("read models on SQLite need a file: sqlite:///path.db")
            return SQLiteReadModels(database, in_thread=in_thread)
        if name == "postgresql":
            return PostgresReadModels(url, schema=schema or "public", pool=pool)
        raise ConfigurationError(
            f"unsupported database URL {url!r}: use sqlite:///path.db or postgresql://..."
        )

    async def run(self, work: Callable[[Connection], T], *, write: bool = True) -> T:
        """Run ``work`` in one transaction, committed when it returns (rolled back if it
        raises). ``write=False`` for reads: no write lock on SQLite; on PostgreSQL no
        transaction block, each statement its own snapshot, as under READ COMMITTED in
        one (so a read that needs one snapshot for several statements is a write)."""
        raise NotImplementedError

    async def execute(self, statement: Executable,
                      parameters: Mapping[str, Any] | None = None) -> int:
        """Run one write ``statement``, atomic on its own (a ``DELETE`` of a row that is
        done with, say), and return the number of rows it matched. SQLite runs it as a write
        transaction (in the turn's shared commit); PostgreSQL without a transaction block,
        one round trip instead of three (``BEGIN``, the statement, ``COMMIT``)."""
        return await self.run(lambda conn: _rowcount(conn, statement, parameters))

    async def try_lease(self, key: str) -> Lease | None:
        """The lease named ``key``, or None when another worker holds it."""
        return _LocalLease()

    async def close(self) -> None:
        """Release connections and threads."""


class SQLiteReadModels(ReadModelDatabase):
    """Read models in the SQLite file of the event store, written on the loop's thread
    (or, ``in_thread=True``, from a thread of their own).

    On the loop's thread, the WAL is checkpointed between two commits on a thread of its
    own once ``checkpoint_pages`` frames were written (:mod:`invariant.sqlite_wal`, as the
    event store's writer does), instead of inside the commit that crosses SQLite's 1,000:
    a catch-up's page transaction writes a leaf of the read model's index per row it
    touches, so in a large read model nearly every tenth commit held up the loop while it
    copied pages to the database file and synced it. ``checkpoint_pages=None`` leaves
    SQLite's own checkpoint in the commits (as ``in_thread=True`` does: that thread is
    not the loop's)."""

    dialect = "sqlite"

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000,
                 in_thread: bool = False,
                 checkpoint_pages: int | None = DEFAULT_MARK_PAGES) -> None:
        if checkpoint_pages is not None and checkpoint_pages < 1:
            raise ConfigurationError(
                f"checkpoint_pages must be at least 1, or None (got {checkpoint_pages})")
        self.path = Path(path)
        self._busy_timeout_ms = busy_timeout_ms
        self.in_thread = in_thread
        self._checkpoint_pages = None if in_thread else checkpoint_pages
        self._gate: BetweenBatches | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="invariant-read-models"
        ) if in_thread else None
        self._engine: Engine | None = None
        self._writer: Connection | None = None
        self._reader: Connection | None = None
        self._turns: dict[asyncio.AbstractEventLoop, list[_Turn[Any]]] = {}
        self.max_turn = 200
        """At most this many write transactions share one commit (the rest the next)."""

    def _get_engine(self) -> Engine:
        if self._engine is None:
            private_file(self.path)  # 0600 (and 0700 directories) before SQLite creates it
            # The pool hands a connection to one user at a time, whichever thread it runs on.
            engine = create_engine(f"sqlite:///{self.path}",
                                   connect_args={"check_same_thread": False})
            # Plain statements on the driver's cursor: SQLAlchemy's per-execution work
            # cost several times SQLite's on the per-message paths (see sql.direct).
            use_direct_connections(engine)
            timeout = int(self._busy_timeout_ms)
            mark = self._checkpoint_pages
            if mark is not None:
                self._gate = BetweenBatches(
                    WalCheckpoints(self.path, mark_pages=mark, busy_timeout_ms=timeout),
                    resume=self._resume, busy=lambda: any(self._turns.values()))

            @event.listens_for(engine, "connect")
            def on_connect(dbapi_connection: Any, record: Any) -> None:
                dbapi_connection.isolation_level = None  # we say BEGIN ourselves
                for pragma in ("journal_mode=WAL", "synchronous=FULL",
                               f"busy_timeout={timeout}"):
                    dbapi_connection.execute(f"PRAGMA {pragma}")
                if mark is not None:  # SQLite's own stays as a backstop
                    dbapi_connection.execute(
                        f"PRAGMA wal_autocheckpoint={backstop_pages(mark)}")

            @event.listens_for(engine, "begin")
            def on_begin(conn: Connection) -> None:
                # On the driver's connection: a statement through SQLAlchemy costs as much
                # as the driver's work in a catch-up's page transaction.
                mode = conn.get_execution_options().get(_BEGIN)
                conn.connection.dbapi_connection.execute(f"BEGIN {mode}")  # type: ignore[union-attr]
                _forget(conn)

            self._engine = engine
        return self._engine

    def _run(self, work: Callable[[Connection], T], write: bool) -> T:
        engine = self._get_engine()
        with engine.connect() as conn:
            # IMMEDIATE takes the write lock up front: no deadlock upgrading a read lock.
            conn = conn.execution_options(**{_BEGIN: "IMMEDIATE" if write else "DEFERRED"})
            with conn.begin():
                result = work(conn)
            committed(conn)
            return result

    def _writer_connection(self) -> Connection:
        # Write transactions on the loop's thread never overlap (each flush runs to its end
        # synchronously), so they share one connection, kept open between them.
        conn = self._writer
        if conn is None:
            conn = self._writer = self._get_engine().connect().execution_options(
                **{_BEGIN: "IMMEDIATE"})
        return conn

    def _drop_writer(self, conn: Connection) -> None:
        if conn.invalidated or conn.in_transaction():
            self._writer = None
            conn.close()

    def _run_read(self, work: Callable[[Connection], T]) -> T:
        # Reads on the loop's thread never overlap either: one kept connection, no pool
        # checkout per read.
        conn = self._reader
        if conn is None:
            conn = self._reader = self._get_engine().connect().execution_options(
                **{_BEGIN: "DEFERRED"})
        try:
            with conn.begin():
                return work(conn)
        except BaseException:
            if conn.invalidated or conn.in_transaction():
                self._reader = None
                conn.close()
            raise

    def _run_write(self, work: Callable[[Connection], T]) -> T:
        conn = self._writer_connection()
        try:
            with conn.begin():
                result = work(conn)
        except BaseException:
            self._drop_writer(conn)
            raise
        committed(conn)
        return result

    def _run_turn(self, batch: list[_Turn[Any]]) -> None:
        """One transaction for the write transactions of one turn, each in a savepoint;
        if the transaction itself fails, each is run again alone for its own outcome."""
        batch = [t for t in batch if not t.future.done()]  # a caller cancelled: not run
        if len(batch) == 1:
            batch[0].run_alone(self._run_write)
            return
        if not batch:
            return
        conn = self._writer_connection()
        try:
            with conn.begin():
                for turn in batch:
                    turn.run_in_savepoint(conn)
        except Exception:
            self._drop_writer(conn)
            for turn in batch:
                turn.run_alone(self._run_write)
            return
        committed(conn)
        for turn in batch:
            turn.settle()

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._gate is not None and self._gate.held:  # the checkpoint's end flushes what waits
            return
        queued = self._turns.pop(loop, [])
        batch, rest = queued[:self.max_turn], queued[self.max_turn:]
        if rest:  # the rest in the next turn: I/O and other callbacks run in between
            self._turns[loop] = rest
            loop.call_soon(self._flush, loop)
        try:
            self._run_turn(batch)
        except BaseException as exc:  # a bug here must not leave a caller waiting forever
            for turn in batch:
                turn.fail(StoreError(f"SQLite read-model commit failed: {exc!r}"))
            raise
        finally:
            gate = self._gate  # made with the engine, by the first transaction
            if gate is not None and batch:
                gate.after_batch(loop)

    def _resume(self) -> None:
        """A checkpoint ended: flush the write transactions that waited for it."""
        for loop, queued in list(self._turns.items()):
            if queued and not loop.is_closed():
                loop.call_soon_threadsafe(self._flush, loop)

    async def run(self, work: Callable[[Connection], T], *, write: bool = True) -> T:
        if self._executor is None:
            if not write:
                return self._run_read(work)
            loop = asyncio.get_running_loop()
            turn: _Turn[T] = _Turn(work, loop.create_future())
            queued = self._turns.setdefault(loop, [])
            if not queued:
                loop.call_soon(self._flush, loop)
            queued.append(turn)
            return await turn.future
        loop = asyncio.get_running_loop()
        # The work sees the caller's context variables (its trace span, its correlation id),
        # as it would with asyncio.to_thread.
        return await loop.run_in_executor(self._executor, copy_context().run, self._run, work,
                                          write)

    async def close(self) -> None:
        gate, self._gate = self._gate, None  # no new checkpoint
        if gate is not None:
            await gate.aclose()
        for kept in (self._writer, self._reader):
            if kept is not None:
                kept.close()
        self._writer = self._reader = None
        engine, self._engine = self._engine, None
        if self._executor is None:
            if engine is not None:
                engine.dispose()
            return
        if engine is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, engine.dispose)
        self._executor.shutdown(wait=True)


class _Turn(Generic[T]):
    """A write transaction waiting for the next flush of its loop, and its caller. The work
    runs in its caller's context variables (its trace span, its correlation id), not in the
    flush's, as it would had the caller run it itself."""

    __slots__ = ("error", "future", "result", "work")

    def __init__(self, work: Callable[[Connection], T], future: asyncio.Future[T]) -> None:
        self.future = future
        context = copy_context()  # a local: a lambda holding self would make a cycle per turn
        self.work: Callable[[Connection], T] = lambda conn: context.run(work, conn)
        self.result: T | None = None
        self.error: BaseException | None = None

    def run_in_savepoint(self, conn: Connection) -> None:
        # The savepoint is said to SQLite directly: SQLAlchemy's nested transactions cost
        # more Python than the work of a small transaction. The work must not manage
        # transactions itself (none does: it runs inside run()'s transaction).
        driver = conn.connection.dbapi_connection
        assert driver is not None
        asked = conn.info.get(_AFTER_COMMIT)
        driver.execute("SAVEPOINT invariant_turn")
        try:
            self.result = self.work(conn)
        except Exception as exc:
            driver.execute("ROLLBACK TO invariant_turn")
            if asked is None:  # what it asked to wake is rolled back with it
                conn.info.pop(_AFTER_COMMIT, None)
            else:
                conn.info[_AFTER_COMMIT] = asked
            self.error = exc
        driver.execute("RELEASE invariant_turn")

    def run_alone(self, run: Callable[[Callable[[Connection], T]], T]) -> None:
        try:
            self.future.set_result(run(self.work))
        except Exception as exc:
            self.fail(exc)

    def settle(self) -> None:
        if self.error is not None:
            self.fail(self.error)
        elif not self.future.done():
            self.future.set_result(self.result)  # type: ignore[arg-type]

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


class PostgresReadModels(ReadModelDatabase):
    """Read models in the PostgreSQL schema of the event store."""

    dialect = "postgresql"

    def __init__(self, dsn: str, *, schema: str = "public", connect_timeout: float = 10.0,
                 idle_ping: float = 1.0, pool: int | None = None) -> None:
        self.dsn = make_url(dsn).set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        self.schema = schema
        self.pool = pool
        """The most connections at once (None: 15), each kept once opened."""
        self.idle_ping = idle_ping
        self._timeout = connect_timeout
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        """The async engine (``search_path`` = the schema), also for read-side queries."""
        if self._engine is None:
            # Every connection within the bound is kept: an "overflow" connection beyond a
            # smaller pool_size would be opened for one transaction and closed at its
            # checkin, a new session (and its round trips) per transaction under load.
            self._engine = create_async_engine(
                self.dsn, schema=self.schema, pool_size=self.pool or DEFAULT_POOL,
                max_overflow=0)
            # Plain statements on the driver's cursor, as on SQLite (see sql.direct).
            use_direct_connections(self._engine.sync_engine)
            _ping_when_idle(self._engine, self.idle_ping)
        return self._engine

    async def run(self, work: Callable[[Connection], T], *, write: bool = True) -> T:
        # Checkout, begin, work, commit and checkin in one trip into the synchronous world:
        # the async connection's connect(), run_sync() and close() take one greenlet each
        # (~45 us of CPU per transaction more, measured on a catch-up's page transaction).
        if not write:
            return await greenlet_spawn(_pooled_read, self.engine.sync_engine, work)
        return await greenlet_spawn(_pooled_transaction, self.engine.sync_engine, work)

    async def execute(self, statement: Executable,
                      parameters: Mapping[str, Any] | None = None) -> int:
        return await greenlet_spawn(_pooled_statement, self.engine.sync_engine, statement,
                                    parameters)

    async def try_lease(self, key: str) -> Lease | None:
        with needs_extra("postgres"):
            import asyncpg

        try:
            conn = await asyncpg.connect(self.dsn, timeout=self._timeout)
        except (OSError, asyncpg.PostgresError) as exc:
            raise StoreError(f"cannot connect to PostgreSQL for a projection lease: {exc}"
                             ) from exc
        try:
            granted = await conn.fetchval("SELECT pg_try_advisory_lock($1)",
                                          lease_key(self.schema, key))
        except BaseException:
            await conn.close()
            raise
        if not granted:
            await conn.close()
            return None
        return _AdvisoryLease(conn)

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()


def dialect_insert(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An ``INSERT`` into ``table`` in the flavour of ``dialect`` (``postgresql`` or
    ``sqlite``), which has ``on_conflict_do_update`` and ``excluded``: an upsert."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _pooled_transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.connect() as conn:
        _forget(conn)
        with conn.begin():
            result = work(conn)
        committed(conn)
        return result


def _pooled_read(engine: Engine, work: Callable[[Connection], T]) -> T:
    # Without BEGIN and COMMIT: two round trips of three for a one-statement read. Under
    # READ COMMITTED, PostgreSQL's default, each statement of a transaction takes a new
    # snapshot anyway, so several statements see the same states as in one.
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        with conn.begin():
            return work(conn)


def _pooled_statement(engine: Engine, statement: Executable,
                      parameters: Mapping[str, Any] | None) -> int:
    # One statement commits by itself in autocommit: the same outcome as in a transaction
    # block of its own, without the BEGIN and COMMIT round trips.
    with engine.connect() as conn:
        _forget(conn)
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        with conn.begin():
            count = _rowcount(conn, statement, parameters)
        committed(conn)
        return count


def _rowcount(conn: Connection, statement: Executable,
              parameters: Mapping[str, Any] | None) -> int:
    return int(conn.execute(statement, dict(parameters or {})).rowcount)


def _ping_when_idle(engine: AsyncEngine, idle: float) -> None:
    """Pre-ping pooled connections that sat idle for ``idle`` seconds or more.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: a round trip per transaction,
    one per page of events when catching up. A connection taken back at once needs none: it
    just worked. One that waited may have been dropped (a server restart): it is pinged,
    and replaced when the ping fails.
    """
    used = "invariant_used"

    def used_now(dbapi_connection: Any, record: Any) -> None:
        record.info[used] = time.monotonic()

    event.listen(engine.sync_engine, "connect", used_now)
    event.listen(engine.sync_engine, "checkin", used_now)

    @event.listens_for(engine.sync_engine, "checkout")
    def on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if time.monotonic() - record.info.get(used, 0.0) < idle:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool closes this connection and checks out (or opens) another one.
            raise DisconnectionError(f"idle connection failed its ping: {exc}") from exc
        record.info[used] = time.monotonic()


class _AdvisoryLease:
    """A session-level advisory lock: the server drops it when the connection dies."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def held(self) -> bool:
        return not self._conn.is_closed()

    async def release(self) -> None:
        # Closing the session releases the lock, whatever state the connection is in.
        with contextlib.suppress(Exception):
            await self._conn.close(timeout=5)


def lease_key(schema: str, key: str) -> int:
    """The advisory lock key of a projection's lease (signed 64 bits)."""
    digest = hashlib.blake2b(f"invariant-projection:{schema}:{key}".encode(),
                             digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)

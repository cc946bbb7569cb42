"""Persisted process state: one row per saga or process manager, with optimistic locking.

``invariant_processes`` lives in the event store's database (the SQLite file or the
PostgreSQL schema) and is written with synchronous SQLAlchemy Core through a
:class:`~invariant.projections.ReadModelDatabase`. Every write names the version it read
(``WHERE id = :id AND version = :read``); a write that finds another version raises
:class:`~invariant.errors.ConcurrencyError` and changes nothing, so two workers racing on
one process (or a timeout racing with the awaited event) end in exactly one outcome.

``invariant_process_commands`` is the processes' outbox: commands decided by a process are
inserted in the same transaction as its new state, then dispatched and deleted.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    func,
    select,
    update,
)

from invariant.clock import from_micros, to_micros
from invariant.domain.errors import ConcurrencyError, ConfigurationError
from invariant.sql.database import dialect_insert

RUNNING = "running"
COMPENSATING = "compensating"
COMPLETED = "completed"
FAILED = "failed"
NEEDS_ATTENTION = "needs-attention"
STATUSES = (RUNNING, COMPENSATING, COMPLETED, FAILED, NEEDS_ATTENTION)
ACTIVE = (RUNNING, COMPENSATING)
"""Statuses of a process that still has work to do."""
ENDED = (COMPLETED, FAILED)

metadata = MetaData()
processes = Table(
    "invariant_processes", metadata,
    Column("id", String(200), primary_key=True),
    Column("kind", String(100), nullable=False),
    Column("correlation", String(200), nullable=False),
    Column("state", JSON, nullable=False),
    Column("status", String(20), nullable=False),
    Column("step", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("error", Text),
    Column("deadline", BigInteger),  # earliest pending deadline, microseconds since the epoch
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("kind", "correlation", name="uq_invariant_processes_correlation"),
    Index("ix_invariant_processes_status_deadline", "status", "deadline"),
)
process_commands = Table(
    "invariant_process_commands", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("command_id", String(36), nullable=False, unique=True),
    Column("process_id", String(200), nullable=False),
    Column("command_type", String(200), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
process_checkpoints = Table(
    "invariant_process_checkpoints", metadata,
    Column("name", String(100), primary_key=True),
    Column("position", BigInteger, nullable=False),
)


@dataclass(slots=True)
class ProcessRecord:
    """A process's row. ``state`` is the process's own JSON data; ``version`` is the one read
    (``0`` for a process not stored yet)."""

    id: str
    kind: str
    correlation: str
    state: dict[str, Any]
    status: str = RUNNING
    step: int = 0
    version: int = 0
    error: str | None = None
    deadline: datetime | None = None
    updated_at: datetime | None = None
    deadlines: dict[str, datetime] = field(default_factory=dict)

    @property
    def ended(self) -> bool:
        return self.status in ENDED


@dataclass(frozen=True, slots=True)
class PendingCommand:
    """A command in the processes' outbox, not dispatched yet."""

    seq: int
    command_id: str
    process_id: str
    command_type: str
    payload: dict[str, Any]


# The statements of the per-event paths, built once: building a Core statement and its
# cache key costs several times what SQLite takes to run it (W6's process manager).
_BY_ID = select(processes).where(processes.c.id == bindparam("id"))
_BY_CORRELATION = select(processes).where(processes.c.kind == bindparam("kind"),
                                          processes.c.correlation == bindparam("correlation"))
_READ = {False: _BY_ID, True: _BY_ID.with_for_update()}
_FIND = {False: _BY_CORRELATION, True: _BY_CORRELATION.with_for_update()}
_TAKEN = select(processes.c.version).where(
    (processes.c.id == bindparam("id"))
    | ((processes.c.kind == bindparam("kind"))
       & (processes.c.correlation == bindparam("correlation"))))
_BY_CORRELATIONS = select(processes).where(
    processes.c.kind == bindparam("kind"),
    processes.c.correlation.in_(bindparam("correlations", expanding=True))
).order_by(processes.c.id)
_FIND_MANY = {False: _BY_CORRELATIONS, True: _BY_CORRELATIONS.with_for_update()}
_INSERT = processes.insert()
_STORED = ("state", "status", "step", "error", "deadline", "updated_at", "version")


def _upsert(dialect: str) -> Any:
    insert = dialect_insert(dialect, processes)
    return insert.on_conflict_do_update(
        index_elements=["id"], set_={name: insert.excluded[name] for name in _STORED})


_UPSERT = {dialect: _upsert(dialect) for dialect in ("sqlite", "postgresql")}
_UPDATE = update(processes).where(processes.c.id == bindparam("read_id"),
                                  processes.c.version == bindparam("read_version"))
DISPATCHED = process_commands.delete().where(process_commands.c.seq == bindparam("seq"))
"""Deletes a dispatched command (``seq``): one statement, atomic on its own (see
:meth:`~invariant.sql.database.ReadModelDatabase.execute`)."""
_CHECKPOINT_OF = select(process_checkpoints.c.position).where(
    process_checkpoints.c.name == bindparam("name"))
_CHECKPOINT = {False: _CHECKPOINT_OF, True: _CHECKPOINT_OF.with_for_update()}
_MOVE_CHECKPOINT = update(process_checkpoints).where(
    process_checkpoints.c.name == bindparam("checkpoint"))


def _record(row: Any) -> ProcessRecord:
    r = row._mapping
    stored = dict(r["state"])
    deadlines = {k: from_micros(v) for k, v in stored.pop("__deadlines__", {}).items()}
    return ProcessRecord(
        r["id"], r["kind"], r["correlation"], stored, r["status"], r["step"], r["version"],
        r["error"], None if r["deadline"] is None else from_micros(r["deadline"]),
        from_micros(r["updated_at"]), deadlines,
    )


def read(conn: Connection, process_id: str, *, lock: bool = False) -> ProcessRecord | None:
    """The row of ``process_id``; ``lock`` holds it for the transaction (PostgreSQL)."""
    row = conn.execute(_READ[lock], {"id": process_id}).first()
    return None if row is None else _record(row)


def find(conn: Connection, kind: str, correlation: str, *, lock: bool = False
         ) -> ProcessRecord | None:
    """The process of ``kind`` correlated by ``correlation``."""
    row = conn.execute(_FIND[lock], {"kind": kind, "correlation": correlation}).first()
    return None if row is None else _record(row)


def listing(conn: Connection, *, status: str | None = None, kind: str | None = None,
            limit: int = 1000) -> list[ProcessRecord]:
    query = select(processes).order_by(processes.c.updated_at, processes.c.id).limit(limit)
    if status is not None:
        query = query.where(processes.c.status == status)
    if kind is not None:
        query = query.where(processes.c.kind == kind)
    return [_record(r) for r in conn.execute(query)]


def due(conn: Connection, now: datetime, kinds: Sequence[str], *, limit: int = 100
        ) -> list[str]:
    """Ids of active processes of ``kinds`` whose earliest deadline has passed."""
    return [r[0] for r in conn.execute(_DUE, {"now": to_micros(now), "kinds": list(kinds),
                                              "limit": limit})]


_DUE = (select(processes.c.id)
        .where(processes.c.status.in_(ACTIVE), processes.c.deadline <= bindparam("now"),
               processes.c.kind.in_(bindparam("kinds", expanding=True)))
        .order_by(processes.c.deadline).limit(bindparam("limit")))
_NEXT_DEADLINE = (select(processes.c.deadline)
                  .where(processes.c.status.in_(ACTIVE), processes.c.deadline.is_not(None),
                         processes.c.kind.in_(bindparam("kinds", expanding=True)))
                  .order_by(processes.c.deadline).limit(1))


def next_deadline(conn: Connection, kinds: Sequence[str]) -> datetime | None:
    """The earliest pending deadline of an active process of ``kinds``."""
    row = conn.execute(_NEXT_DEADLINE, {"kinds": list(kinds)}).first()
    return None if row is None else from_micros(row[0])


def find_many(conn: Connection, kind: str, correlations: Collection[str], *,
              lock: bool = False) -> dict[str, ProcessRecord]:
    """The processes of ``kind`` correlated by any of ``correlations``, by correlation, in
    one statement; ``lock`` holds their rows for the transaction (PostgreSQL; taken in the
    order of their ids, as every caller takes them, so two callers cannot deadlock)."""
    rows = conn.execute(_FIND_MANY[lock], {"kind": kind, "correlations": list(correlations)})
    return {record.correlation: record for record in map(_record, rows)}


def _values(record: ProcessRecord, now: datetime, version: int) -> dict[str, Any]:
    """The columns that store ``record`` as ``version``."""
    state = dict(record.state)
    state["__deadlines__"] = {k: to_micros(v) for k, v in record.deadlines.items()}
    deadline = min(record.deadlines.values()) if record.deadlines else None
    return {
        "state": state, "status": record.status, "step": record.step, "error": record.error,
        "deadline": None if deadline is None else to_micros(deadline),
        "updated_at": to_micros(now), "version": version,
    }


def advance(record: ProcessRecord, now: datetime) -> ProcessRecord:
    """``record`` as its next version: once stored by :func:`write`, or before
    :func:`write_many` stores it (several steps of one process in one transaction are
    stored once, at their last version)."""
    record.version += 1
    record.deadline = min(record.deadlines.values()) if record.deadlines else None
    record.updated_at = now
    return record


def write_many(conn: Connection, read: Mapping[str, int], records: Sequence[ProcessRecord],
               now: datetime) -> None:
    """Store ``records`` (each moved on by :func:`advance`) in at most two statements: one
    insert for those new (``read[id]`` 0: a process stored meanwhile fails it on its
    keys), one upsert for those read at ``read[id]``, which the caller holds locked (a
    row read ``FOR UPDATE`` on PostgreSQL, SQLite's write lock)."""
    new: list[dict[str, Any]] = []
    known: list[dict[str, Any]] = []
    for record in records:
        values = _values(record, now, record.version)  # advanced already
        row = {"id": record.id, "kind": record.kind, "correlation": record.correlation,
               **values}
        (known if read.get(record.id, 0) else new).append(row)
    if new:
        conn.execute(_INSERT, new)
    if known:
        statement = _UPSERT.get(conn.dialect.name)
        if statement is None:  # another database: one update per process
            for row in known:
                conn.execute(update(processes).where(processes.c.id == row["id"]), row)
        else:
            conn.execute(statement, known)


def write(conn: Connection, record: ProcessRecord, now: datetime) -> ProcessRecord:
    """Insert (version 0) or update the row if still at ``record.version``; the record's
    version becomes the new one. Raises :class:`ConcurrencyError` when someone wrote first."""
    values = _values(record, now, record.version + 1)
    if record.version == 0:
        exists = conn.execute(_TAKEN, {"id": record.id, "kind": record.kind,
                                       "correlation": record.correlation}).first()
        if exists is not None:
            raise ConcurrencyError(f"process-{record.id}", 0, int(exists[0]))
        conn.execute(_INSERT, {"id": record.id, "kind": record.kind,
                               "correlation": record.correlation, **values})
    else:
        done = conn.execute(_UPDATE, {"read_id": record.id, "read_version": record.version,
                                      **values})
        if done.rowcount != 1:
            current = read(conn, record.id)
            raise ConcurrencyError(f"process-{record.id}", record.version,
                                   0 if current is None else current.version)
    return advance(record, now)


_ENQUEUE = {dialect: dialect_insert(dialect, process_commands).on_conflict_do_nothing(
    index_elements=["command_id"]) for dialect in ("sqlite", "postgresql")}


def enqueue_many(conn: Connection, commands: Sequence[Mapping[str, Any]]) -> None:
    """Put ``commands`` (rows of :func:`command_row`) in the outbox in one statement, in
    their order, each unless a command with its id is already there."""
    statement = _ENQUEUE.get(conn.dialect.name)
    if statement is None:
        for row in commands:
            enqueue(conn, row["process_id"], row["command_id"], row["command_type"],
                    row["payload"], from_micros(row["created_at"]))
    elif commands:
        conn.execute(statement, list(commands))


def command_row(process_id: str, command_id: str, command_type: str,
                payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A command for the outbox, as :func:`enqueue_many` takes it."""
    return {"command_id": command_id, "process_id": process_id,
            "command_type": command_type, "payload": payload, "created_at": to_micros(now)}


def enqueue(conn: Connection, process_id: str, command_id: str, command_type: str,
            payload: dict[str, Any], now: datetime) -> None:
    """Put a command in the outbox unless a command with that id is already there (one
    ``INSERT ... ON CONFLICT DO NOTHING``)."""
    row = command_row(process_id, command_id, command_type, payload, now)
    statement = _ENQUEUE.get(conn.dialect.name)
    if statement is not None:
        conn.execute(statement, row)
        return
    exists = conn.execute(select(process_commands.c.seq)
                          .where(process_commands.c.command_id == command_id)).first()
    if exists is None:
        conn.execute(process_commands.insert(), row)


def pending(conn: Connection, *, process_id: str | None = None, limit: int = 100,
            parked: bool = True) -> list[PendingCommand]:
    """Commands not dispatched yet, oldest first; ``parked=False`` leaves out those of
    processes waiting for an operator."""
    values: dict[str, Any] = {"limit": limit}
    if process_id is not None:
        values["process_id"] = process_id
    query = _PENDING[process_id is not None, parked]
    return [PendingCommand(r.seq, r.command_id, r.process_id, r.command_type, dict(r.payload))
            for r in conn.execute(query, values)]


def _pending(of_process: bool, parked: bool) -> Any:
    query = select(process_commands).order_by(process_commands.c.seq).limit(
        bindparam("limit"))
    if of_process:
        query = query.where(process_commands.c.process_id == bindparam("process_id"))
    if not parked:
        query = query.where(process_commands.c.process_id.not_in(
            select(processes.c.id).where(processes.c.status == NEEDS_ATTENTION)))
    return query


_PENDING = {(of_process, parked): _pending(of_process, parked)
            for of_process in (False, True) for parked in (False, True)}


def checkpoint(conn: Connection, name: str, *, lock: bool = False) -> int:
    row = conn.execute(_CHECKPOINT[lock], {"name": name}).first()
    if row is None:
        raise ConfigurationError(
            f"process manager {name!r} is not set up; call ProcessRunner.setup() first")
    return int(row[0])


def register(conn: Connection, name: str) -> None:
    """Create the checkpoint of the process manager ``name`` at 0, unless it exists."""
    exists = conn.execute(select(process_checkpoints.c.position)
                          .where(process_checkpoints.c.name == name)).first()
    if exists is None:
        conn.execute(process_checkpoints.insert().values(name=name, position=0))


_RUNNABLE = process_commands.c.process_id.not_in(
    select(processes.c.id).where(processes.c.status == NEEDS_ATTENTION))
"""Commands a worker will dispatch: those of processes parked for an operator left out."""


def backlog(conn: Connection, names: Sequence[str]) -> tuple[dict[str, int], int]:
    """The checkpoints of the managers ``names`` and the commands not dispatched (those of
    processes parked for an operator left out: no worker will run them)."""
    checkpoints = {str(name): int(position) for name, position in conn.execute(
        _CHECKPOINTS, {"names": list(names)})}
    commands = conn.execute(_NOT_DISPATCHED).scalar_one()
    return checkpoints, int(commands)


def waiting(conn: Connection, names: Sequence[str]
            ) -> tuple[dict[str, int], int, datetime | None]:
    """:func:`backlog`, and when the oldest of those commands was decided (None: none)."""
    checkpoints = {str(name): int(position) for name, position in conn.execute(
        _CHECKPOINTS, {"names": list(names)})}
    count, oldest = conn.execute(_OLDEST_NOT_DISPATCHED).one()
    return checkpoints, int(count), None if oldest is None else from_micros(int(oldest))


_CHECKPOINTS = select(process_checkpoints.c.name, process_checkpoints.c.position).where(
    process_checkpoints.c.name.in_(bindparam("names", expanding=True)))
_NOT_DISPATCHED = select(func.count()).select_from(process_commands).where(_RUNNABLE)
_OLDEST_NOT_DISPATCHED = select(
    func.count(), func.min(process_commands.c.created_at)).where(_RUNNABLE)


def move_checkpoint(conn: Connection, name: str, position: int) -> None:
    conn.execute(_MOVE_CHECKPOINT, {"checkpoint": name, "position": position})

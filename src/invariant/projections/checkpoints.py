"""Checkpoints: how far each projection version has applied the log, and its state.

One row per ``(name, version)`` in ``invariant_projections``, in the read models' database,
written in the same transaction as the read-model changes it accounts for. Exactly one
version of a name is *active*: the one queries read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    case,
    select,
    update,
)

from invariant.clock import from_micros, to_micros
from invariant.domain.errors import ConfigurationError
from invariant.sql.direct import first_row

RUNNING = "running"
REBUILDING = "rebuilding"
FAILED = "failed"
PAUSED = "paused"
"""Stopped by an operator: no worker applies events to it until it is resumed."""
STOPPED = (FAILED, PAUSED)
"""The states in which no worker moves a projection."""

metadata = MetaData()
checkpoints = Table(
    "invariant_projections", metadata,
    Column("name", String(100), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("error", Text),
    Column("error_position", BigInteger),
    Column("attempts", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("updated_at", BigInteger, nullable=False),  # microseconds since the epoch, UTC
)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A projection version's row."""

    name: str
    version: int
    position: int
    state: str
    error: str | None
    error_position: int | None
    attempts: int
    active: bool
    updated_at: datetime


def _row(row: object) -> Checkpoint:
    r = row._mapping  # type: ignore[attr-defined]
    return Checkpoint(r["name"], r["version"], r["position"], r["state"], r["error"],
                      r["error_position"], r["attempts"], r["active"],
                      from_micros(r["updated_at"]))


def register(conn: Connection, name: str, version: int, now: datetime) -> Checkpoint:
    """The version's row, created at position 0 if new (active if no version of the name
    is; a later version starts inactive and rebuilding, beside the active one)."""
    found = read(conn, name, version)
    if found is not None:
        return found
    active = conn.execute(
        select(checkpoints.c.version).where(checkpoints.c.name == name, checkpoints.c.active)
    ).first()
    conn.execute(checkpoints.insert().values(
        name=name, version=version, position=0, state=RUNNING if active is None else REBUILDING,
        error=None, error_position=None, attempts=0, active=active is None,
        updated_at=to_micros(now),
    ))
    created = read(conn, name, version)
    assert created is not None
    return created


# Built once: the runner reads and moves a checkpoint in every page's transaction.
_KEY = (checkpoints.c.name == bindparam("_name")) & (checkpoints.c.version == bindparam("_version"))
_READ = select(checkpoints).where(_KEY)
_READ_LOCKED = _READ.with_for_update()
_CLAIM = (
    update(checkpoints)
    .where(_KEY, checkpoints.c.position == bindparam("_expected"),
           checkpoints.c.state != FAILED, checkpoints.c.state != PAUSED)
    .values(position=bindparam("_position"),
            state=case((checkpoints.c.state == bindparam("_finishing"), RUNNING),
                       else_=checkpoints.c.state),
            attempts=0, error=None, error_position=None, updated_at=bindparam("_updated_at"))
    .returning(checkpoints.c.state)
)


def read(conn: Connection, name: str, version: int, *, lock: bool = False
         ) -> Checkpoint | None:
    """The row of ``(name, version)``; ``lock`` holds it for this transaction (PostgreSQL)."""
    row = conn.execute(_READ_LOCKED if lock else _READ,
                       {"_name": name, "_version": version}).first()
    return None if row is None else _row(row)


def claim(conn: Connection, name: str, version: int, now: datetime, expected: int,
          position: int, *, caught_up: bool) -> str | None:
    """Move the checkpoint from ``expected`` to ``position`` (a page about to be applied in
    this transaction), clearing any error; a rebuilding version that ``caught_up`` is
    running again. Returns the new state, or None when the checkpoint is not at
    ``expected``, is failed or paused, or does not exist (nothing changed then).

    One statement, which also locks the row until the transaction ends: a second worker or
    a rebuild waits for it, then finds the checkpoint moved.
    """
    values = {
        "_name": name, "_version": version, "_expected": expected, "_position": position,
        "_finishing": REBUILDING if caught_up else "", "_updated_at": to_micros(now),
    }
    row = first_row(conn, _CLAIM, values)
    return None if row is None else str(row[0])


def read_all(conn: Connection) -> list[Checkpoint]:
    rows = conn.execute(select(checkpoints).order_by(checkpoints.c.name, checkpoints.c.version))
    return [_row(r) for r in rows]


def active_version(conn: Connection, name: str) -> int:
    """The version of ``name`` that queries should read."""
    row = conn.execute(
        select(checkpoints.c.version).where(checkpoints.c.name == name, checkpoints.c.active)
    ).first()
    if row is None:
        raise ConfigurationError(
            f"no projection named {name!r} is registered; run its ProjectionRunner.setup()"
        )
    return int(row[0])


def change(conn: Connection, name: str, version: int, now: datetime, **values: object) -> None:
    conn.execute(
        update(checkpoints)
        .where(checkpoints.c.name == name, checkpoints.c.version == version)
        .values(updated_at=to_micros(now), **values)
    )


def activate(conn: Connection, name: str, version: int, now: datetime) -> None:
    """Make ``version`` the one queries read, in the caller's transaction."""
    conn.execute(
        update(checkpoints).where(checkpoints.c.name == name)
        .values(active=checkpoints.c.version == version, updated_at=to_micros(now))
    )


def forget(conn: Connection, name: str, version: int) -> None:
    conn.execute(checkpoints.delete().where(checkpoints.c.name == name,
                                            checkpoints.c.version == version))

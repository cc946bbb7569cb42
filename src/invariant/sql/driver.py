"""Core statements run on the driver's own cursor: compiled once per dialect and set of
bound names, then executed without SQLAlchemy's per-execution work.

A projection catching up runs the same few statements in every page's transaction (its
checkpoint's claim, an upsert of the page's rows). Through ``Connection.execute`` each
costs SQLAlchemy's execution context, parameter processing and result set-up, which for a
page of small rows is as much as the driver's own work. Here the statement is compiled
once, and each call binds its values in the compiled order and hands them to the cursor.

Only statements whose values go to the driver unchanged take this path: one with a
type that converts bound values (a bind processor), Python-side column defaults, expanding
``IN`` parameters or a schema translation goes through ``Connection.execute`` as usual,
with the same result.
"""

from __future__ import annotations

import operator
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from sqlalchemy import Connection
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.crud import REQUIRED

_Binder = Callable[[Mapping[str, Any]], tuple[Any, ...]]
_Plan = tuple[str, _Binder] | None
"""The compiled SQL and what makes its parameters from one call's values; None when the
statement must go through SQLAlchemy (see the module docstring)."""

_PLANS: weakref.WeakKeyDictionary[Executable, dict[tuple[str, tuple[str, ...]], _Plan]] = (
    weakref.WeakKeyDictionary()
)


def first_row(conn: Connection, statement: Executable, values: Mapping[str, Any]) -> Any:
    """The first row ``statement`` returns with ``values`` (None if none), in ``conn``'s
    transaction."""
    plan = _plan(conn, statement, tuple(values))
    if plan is None:
        return conn.execute(statement, dict(values)).first()
    sql, bind = plan
    params = bind(values)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, params)
        return cursor.fetchone()
    except conn.dialect.loaded_dbapi.Error as exc:
        _raise_as_sqlalchemy(conn, exc, sql, params, cursor)
    finally:
        cursor.close()


def execute_many(conn: Connection, statement: Executable,
                 rows: Sequence[Mapping[str, Any]]) -> None:
    """Run ``statement`` once per row of ``rows`` (dicts with the same keys), in ``conn``'s
    transaction: ``conn.execute(statement, rows)`` without SQLAlchemy's per-execution work
    where the statement allows it."""
    if not rows:
        return
    plan = _plan(conn, statement, tuple(rows[0]))
    if plan is None:
        conn.execute(statement, [dict(r) for r in rows])
        return
    sql, bind = plan
    try:
        params = list(map(bind, rows))
    except KeyError:  # a row lacks a value the first one has: SQLAlchemy says which
        conn.execute(statement, [dict(r) for r in rows])
        return
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, params)
    except conn.dialect.loaded_dbapi.Error as exc:
        _raise_as_sqlalchemy(conn, exc, sql, params, cursor)
    finally:
        cursor.close()


def _raise_as_sqlalchemy(conn: Connection, exc: Exception, sql: str, params: Any,
                         cursor: Any) -> NoReturn:
    """The driver's error as ``Connection.execute`` raises it: wrapped in SQLAlchemy's
    exception of the same kind (``IntegrityError``, ...), and the connection invalidated
    when the error says it was lost, so that the pool does not hand it out again."""
    conn._handle_dbapi_exception(exc, sql, params, cursor, None)


def _binder(names: list[str], constants: dict[str, Any]) -> _Binder:
    """The parameters in compiled order: the call's values, the statement's constants."""
    if not constants and len(names) > 1:
        return operator.itemgetter(*names)

    def bind(values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(values[n] if n in values else constants[n] for n in names)

    return bind


def _plan(conn: Connection, statement: Executable, keys: tuple[str, ...]) -> _Plan:
    dialect = conn.dialect
    plans = _PLANS.get(statement)
    if plans is None:
        plans = _PLANS[statement] = {}
    key = (dialect.name, keys)
    if key in plans:
        plan = plans[key]
    else:
        plan = plans[key] = _compile(conn, statement, keys)
    if plan is not None and conn.get_execution_options().get("schema_translate_map"):
        return None
    return plan


def _compile(conn: Connection, statement: Executable, keys: tuple[str, ...]) -> _Plan:
    compiled: Any = statement.compile(  # type: ignore[attr-defined]
        dialect=conn.dialect, column_keys=list(keys))
    names = list(compiled.positiontup or ())
    if (not compiled.positional or (not names and compiled.params)
            or compiled._bind_processors or compiled.insert_prefetch
            or compiled.update_prefetch or compiled.literal_execute_params
            or compiled.post_compile_params):
        return None
    constants = {n: v for n, v in compiled.params.items() if n not in keys}
    if any(n not in keys and (n not in constants or constants[n] is REQUIRED
                              or compiled.binds[n].required) for n in names):
        return None  # a value is missing: SQLAlchemy says which
    return compiled.string, _binder(names, constants)


__all__ = ["execute_many", "first_row"]

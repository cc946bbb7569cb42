"""A SQLAlchemy ``Connection`` whose ``execute`` runs plain Core statements on the driver's
cursor: the read models' connection on SQLite, so every statement of every handler, inbox,
broker, job and process takes this path without being written for it.

``Connection.execute`` costs SQLAlchemy's execution context, parameter processing and
result set-up on every call: for the small statements of the per-message paths (an inbox
row, a delivery claimed, a counter upserted) several times SQLite's own work. Here a
statement executed a second time is compiled once per set of bound names and from then on
bound in the compiled order (with its types' bind processors), handed to the cursor, and its
rows returned as a :class:`~sqlalchemy.engine.Result` of :class:`~sqlalchemy.engine.Row`
objects (with its types' result processors). A statement built per call keeps SQLAlchemy's
path (it is seen once, never compiled here).

Only what behaves the same takes this path: a ``SELECT``, ``INSERT``, ``UPDATE`` or
``DELETE`` without ``RETURNING`` or ``return_defaults()`` (or a textual statement), run
inside a transaction, with no execution options, no Python-side column defaults, no
literal-rendered values, no statement-level event listeners and no schema translation;
expanding ``IN`` parameters are expanded here (an empty one goes through SQLAlchemy).
Anything else goes through ``Connection.execute`` as usual. Driver
errors are raised as SQLAlchemy raises them (``IntegrityError``, ...).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.sql.crud import REQUIRED
from sqlalchemy.sql.elements import ClauseElement

_UNSEEN = object()


class _Plan:
    """A statement compiled for one dialect and one set of bound names."""

    __slots__ = ("bind", "described", "expanding", "insert_pk", "metadata", "names", "splits",
                 "sql", "text")

    def __init__(self, sql: str, names: list[str], bind: Callable[[Mapping[str, Any]], list[Any]],
                 metadata: SimpleResultMetaData | None, insert_pk: Any,
                 expanding: frozenset[str], text: bool) -> None:
        self.sql, self.names, self.bind = sql, names, bind
        self.metadata, self.insert_pk = metadata, insert_pk
        self.expanding = expanding
        self.text = text
        """A textual statement: whether it returns rows, and which, the cursor says."""
        self.splits: dict[tuple[int, ...], str] = {}
        self.described: dict[tuple[str, ...], SimpleResultMetaData] = {}


_PLANS: weakref.WeakKeyDictionary[ClauseElement, dict[tuple[str, tuple[str, ...]], Any]] = (
    weakref.WeakKeyDictionary()
)


class DirectConnection(Connection):
    """A ``Connection`` running plain Core statements on the driver's cursor (see the
    module docstring); everything else as ``Connection`` does."""

    def execute(self, statement: Any, parameters: Any = None, *,
                execution_options: Any = None) -> Any:
        if execution_options is None and isinstance(statement, ClauseElement):
            result = _execute(self, statement, parameters)
            if result is not None:
                return result
        return super().execute(statement, parameters, execution_options=execution_options)


def use_direct_connections(engine: Engine) -> None:
    """Make ``engine.connect()`` hand out :class:`DirectConnection` objects."""
    engine._connection_cls = DirectConnection


class _Rows(IteratorResult[Any]):
    """The rows of a ``SELECT`` run here (``rowcount`` as the driver gives it)."""

    rowcount = -1


class _Done(IteratorResult[Any]):
    """What a statement without rows run here returns: ``rowcount``, and for a single-row
    ``INSERT`` its ``inserted_primary_key`` and ``lastrowid``."""

    def __init__(self, rowcount: int, lastrowid: Any, plan: _Plan,
                 values: Mapping[str, Any] | None) -> None:
        super().__init__(_NO_COLUMNS, iter(()))
        self.rowcount = rowcount
        self.lastrowid = lastrowid
        self._plan, self._values = plan, values

    @property
    def returns_rows(self) -> bool:
        return False

    @property
    def inserted_primary_key(self) -> Any:
        if self._plan.insert_pk is None:
            raise InvalidRequestError("Statement is not an insert() expression construct.")
        if self._values is None:
            raise InvalidRequestError(
                "This statement was an executemany call; if primary key returning is "
                "supported, please use .inserted_primary_key_rows.")
        return self._plan.insert_pk(self.lastrowid, self._values)


_NO_COLUMNS = SimpleResultMetaData([])


def _execute(conn: Connection, statement: Any, parameters: Any) -> Any:
    if (not (statement.is_select or statement.is_dml or statement._is_text_clause)
            or not conn.in_transaction() or conn._echo):
        return None
    if parameters is None:
        values: Mapping[str, Any] | None = _EMPTY
        rows: Sequence[Mapping[str, Any]] | None = None
    elif isinstance(parameters, Mapping):
        values, rows = parameters, None
    elif isinstance(parameters, list | tuple) and parameters and isinstance(
            parameters[0], Mapping):
        values, rows = None, parameters
        if len(rows) == 1:
            values, rows = rows[0], None
    else:
        return None
    plan = _plan(conn, statement, tuple(values if values is not None else rows[0]))  # type: ignore[index]
    if plan is None:
        return None
    dispatch = conn.dispatch
    if (dispatch.before_cursor_execute or dispatch.after_cursor_execute
            or dispatch.before_execute or dispatch.after_execute):
        return None
    try:
        if values is not None:
            params = plan.bind(values)
            sql = plan.sql
            if plan.expanding:
                expanded = _expand(plan, params)
                if expanded is None:
                    return None
                sql, params = expanded
            many = None
        else:
            if plan.expanding or plan.metadata is not None:
                return None
            many = [plan.bind(row) for row in rows]  # type: ignore[union-attr]
    except KeyError:  # a row lacks a value the first one has: SQLAlchemy says which
        return None
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if many is None:
            cursor.execute(sql, params)
            if plan.metadata is not None:
                return _Rows(plan.metadata, iter(cursor.fetchall()))
            if plan.text and cursor.description is not None:
                return _Rows(_described(plan, cursor.description), iter(cursor.fetchall()))
            return _Done(cursor.rowcount, cursor.lastrowid, plan, values)
        cursor.executemany(plan.sql, many)
        return _Done(cursor.rowcount, None, plan, None)
    except conn.dialect.loaded_dbapi.Error as exc:
        conn._handle_dbapi_exception(exc, plan.sql, many if many is not None else params,
                                     cursor, None)
        raise  # not reached: the call above raises
    finally:
        cursor.close()


_EMPTY: Mapping[str, Any] = {}


def _described(plan: _Plan, description: Sequence[Sequence[Any]]) -> SimpleResultMetaData:
    """The columns of a textual statement's rows, from the cursor's description."""
    keys = tuple(d[0] for d in description)
    metadata = plan.described.get(keys)
    if metadata is None:
        metadata = SimpleResultMetaData(keys)
        if len(plan.described) < 16:
            plan.described[keys] = metadata
    return metadata


def _expand(plan: _Plan, params: list[Any]) -> tuple[str, list[Any]] | None:
    """The SQL and parameters with each expanding ``IN`` list spliced in; None when a list
    is empty (SQLAlchemy renders those its own way)."""
    flat: list[Any] = []
    lengths = []
    for name, value in zip(plan.names, params, strict=True):
        if name in plan.expanding:
            if not value:
                return None
            lengths.append(len(value))
            flat.extend(value)
        else:
            flat.append(value)
    key = tuple(lengths)
    sql = plan.splits.get(key)
    if sql is None:
        sql = plan.sql
        counts = iter(lengths)
        for name in plan.names:
            if name in plan.expanding:
                sql = sql.replace(f"__[POSTCOMPILE_{name}]", ", ".join("?" * next(counts)), 1)
        if len(plan.splits) < 64:
            plan.splits[key] = sql
    return sql, flat


def _plan(conn: Connection, statement: ClauseElement, keys: tuple[str, ...]) -> _Plan | None:
    plans = _PLANS.get(statement)
    if plans is None:  # seen once: a statement built per call never gets compiled here
        _PLANS[statement] = {}
        return None
    key = (conn.dialect.name, keys)
    plan = plans.get(key, _UNSEEN)
    if plan is _UNSEEN:
        plan = plans[key] = _compile(conn, statement, keys)
    if plan is not None and conn._execution_options.get("schema_translate_map"):
        return None
    return plan  # type: ignore[no-any-return]


def _compile(conn: Connection, statement: Any, keys: tuple[str, ...]) -> _Plan | None:
    dialect = conn.dialect
    if dialect.paramstyle != "qmark" or getattr(statement, "_return_defaults", False):
        return None  # return_defaults(): SQLAlchemy fetches what the database filled in
    compiled: Any = statement.compile(dialect=dialect, column_keys=list(keys))
    names = list(compiled.positiontup or ())
    if (not compiled.positional or compiled.insert_prefetch or compiled.update_prefetch
            or compiled.literal_execute_params or compiled.effective_returning
            or getattr(compiled, "for_executemany", False)):
        return None
    expanding = frozenset(compiled.bind_names[p] for p in compiled.post_compile_params)
    if any(not p.expanding for p in compiled.post_compile_params):
        return None
    constants = {n: v for n, v in compiled.params.items() if n not in keys}
    if any(n not in keys and (n not in constants or constants[n] is REQUIRED
                              or compiled.binds[n].required) for n in names):
        return None  # a value is missing: SQLAlchemy says which
    processors = compiled._bind_processors
    if any(n in processors for n in expanding):
        return None
    metadata = None
    if statement.is_select and not statement._is_text_clause:
        columns = compiled._result_columns
        column_keys = [c[0] for c in columns]
        if not columns or len(set(column_keys)) != len(column_keys):
            return None
        results = [c[3]._cached_result_processor(dialect, None) for c in columns]
        metadata = SimpleResultMetaData(
            column_keys, [tuple(c[2]) for c in columns],
            _processors=results if any(results) else None)
    insert_pk = None
    if statement.is_insert and not compiled.for_executemany:
        insert_pk = compiled._inserted_primary_key_from_lastrowid_getter
    binder = _binder(names, constants, {n: p for n, p in processors.items() if n in names})
    return _Plan(compiled.string, names, binder, metadata,
                 None if insert_pk is None else _with_constants(insert_pk, constants),
                 expanding, bool(statement._is_text_clause))


def _with_constants(getter: Any, constants: dict[str, Any]) -> Any:
    if not constants:
        return getter
    return lambda lastrowid, values: getter(lastrowid, {**constants, **values})


def _binder(names: list[str], constants: dict[str, Any],
            processors: dict[str, Callable[[Any], Any]]
            ) -> Callable[[Mapping[str, Any]], list[Any]]:
    """The parameters in compiled order: the call's values, the statement's constants,
    each through its type's bind processor."""
    if not constants and not processors:
        def plain(values: Mapping[str, Any]) -> list[Any]:
            return [values[n] for n in names]
        return plain
    steps = [(n, processors.get(n)) for n in names]

    def bind(values: Mapping[str, Any]) -> list[Any]:
        out = []
        for n, process in steps:
            value = values[n] if n in values else constants[n]
            out.append(value if process is None else process(value))
        return out

    return bind


__all__ = ["DirectConnection", "use_direct_connections"]

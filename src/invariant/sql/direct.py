"""Core statements run on the driver's own cursor: compiled once per dialect and set of
bound names, then executed without SQLAlchemy's per-execution work. The one way invariant
skips that work, used two ways:

* :class:`DirectConnection`: the SQLite read models' connection, whose ``execute`` takes
  this path for every plain statement, so every handler, inbox, broker, job and process
  statement takes it without being written for it;
* :func:`first_row` and :func:`execute_many`: chosen statements on any connection, on
  either database: a checkpoint's claim (``UPDATE ... RETURNING``), a page's upsert of many
  rows.

``Connection.execute`` costs SQLAlchemy's execution context, parameter processing and
result set-up on every call: for the small statements of the per-message paths (an inbox
row, a delivery claimed, a counter upserted) and a catch-up's page transaction, as much as
the driver's own work or several times it. Here a statement executed a second time is
compiled once per dialect and set of bound names and from then on bound in the compiled
order (with its types' bind processors), handed to the cursor, and its rows returned as a
:class:`~sqlalchemy.engine.Result` of :class:`~sqlalchemy.engine.Row` objects (with its
types' result processors, chosen by the column types the cursor describes). A statement
built per call keeps SQLAlchemy's path (it is seen once, never compiled here).

Every positional paramstyle SQLAlchemy compiles to works the same (``qmark`` for sqlite3,
``numeric_dollar`` for asyncpg, ``format``, ``numeric``); a dialect with named parameters
keeps SQLAlchemy's path.

Only what behaves the same takes this path: a ``SELECT``, ``INSERT``, ``UPDATE`` or
``DELETE`` (or a textual statement), run inside a transaction, with no execution options,
no ``return_defaults()``, no Python-side column defaults, no literal-rendered values, no
statement-level event listeners, no echo and no schema translation; expanding ``IN``
parameters are expanded here (an empty one goes through SQLAlchemy). A statement with
``RETURNING`` takes it only through :func:`first_row`, one run many times only without
rows to return. Anything else goes through ``Connection.execute`` as usual. Driver errors
are raised as SQLAlchemy raises them: its exception of the same kind (``IntegrityError``,
...), and the connection invalidated when the error says it was lost, so that the pool
does not hand it out again.
"""

from __future__ import annotations

import operator
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.crud import REQUIRED
from sqlalchemy.sql.elements import ClauseElement

_UNSEEN = object()

_Binder = Callable[[Mapping[str, Any]], Sequence[Any]]


class _Plan:
    """A statement compiled for one dialect and one set of bound names."""

    __slots__ = ("bind", "columns", "compiled", "described", "expanding", "insert_pk",
                 "names", "returning", "splits", "sql")

    def __init__(self, compiled: Any, names: list[str], bind: _Binder,
                 columns: tuple[list[str], list[tuple[Any, ...]], list[Any]] | None,
                 insert_pk: Any, expanding: frozenset[str], returning: bool) -> None:
        self.compiled, self.sql, self.names, self.bind = compiled, compiled.string, names, bind
        self.columns = columns
        """The keys, objects and types of the rows it returns (None: a textual statement's
        rows, if any, are as the cursor describes them; or it returns none)."""
        self.insert_pk, self.expanding, self.returning = insert_pk, expanding, returning
        self.splits: dict[tuple[int, ...], tuple[str, list[tuple[int, int | None]]]] = {}
        """Per lengths of the expanding lists: the SQL and where each parameter comes from."""
        self.described: dict[tuple[Any, ...], SimpleResultMetaData] = {}
        """Per cursor description (its type codes, or a textual statement's names)."""


_PLANS: weakref.WeakKeyDictionary[ClauseElement, dict[tuple[Any, ...], Any]] = (
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


def first_row(conn: Connection, statement: Executable, values: Mapping[str, Any]) -> Any:
    """The first row ``statement`` returns with ``values`` (None if none), in ``conn``'s
    transaction: ``conn.execute(statement, values).first()``, on the driver's cursor also
    for a statement with ``RETURNING``."""
    result = _execute(conn, statement, values, returning=True)
    if result is None:
        result = conn.execute(statement, dict(values))
    return result.first()


def execute_many(conn: Connection, statement: Executable,
                 rows: Sequence[Mapping[str, Any]]) -> None:
    """Run ``statement`` once per row of ``rows`` (dicts with the same keys), in ``conn``'s
    transaction: ``conn.execute(statement, rows)``, on the driver's cursor on any
    connection."""
    if rows and _execute(conn, statement, rows if isinstance(rows, list) else list(rows)) is None:
        conn.execute(statement, [dict(r) for r in rows])


class _Rows(IteratorResult[Any]):
    """The rows of a statement run here (``rowcount`` as the driver gives it)."""

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
_EMPTY: Mapping[str, Any] = {}


def _execute(conn: Connection, statement: Any, parameters: Any, *,
             returning: bool = False) -> Any:
    """The result of ``statement`` run on the driver's cursor, or None when it must go
    through SQLAlchemy (see the module docstring); ``returning``: a statement with
    ``RETURNING`` may run here."""
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
    if plan is None or (plan.returning and not (returning and values is not None)):
        return None
    dispatch = conn.dispatch
    if (dispatch.before_cursor_execute or dispatch.after_cursor_execute
            or dispatch.before_execute or dispatch.after_execute):
        return None
    sql = plan.sql
    try:
        if values is not None:
            params = plan.bind(values)
            if plan.expanding:
                expanded = _expand(plan, params)
                if expanded is None:
                    return None
                sql, params = expanded
            many = None
        else:
            if plan.expanding or plan.columns is not None:
                return None
            many = list(map(plan.bind, rows))  # type: ignore[arg-type]
    except KeyError:  # a row lacks a value the first one has: SQLAlchemy says which
        return None
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if many is None:
            cursor.execute(sql, params)
            description = cursor.description
            if description is not None:
                result = _Rows(_described(conn, plan, description), iter(cursor.fetchall()))
                result.rowcount = cursor.rowcount
                return result
            lastrowid = (cursor.lastrowid if conn.dialect.postfetch_lastrowid  # type: ignore[attr-defined]
                         else None)
            return _Done(cursor.rowcount, lastrowid, plan, values)
        cursor.executemany(sql, many)
        return _Done(cursor.rowcount, None, plan, None)
    except conn.dialect.loaded_dbapi.Error as exc:
        conn._handle_dbapi_exception(exc, sql, many if many is not None else params,
                                     cursor, None)
        raise  # not reached: the call above raises
    finally:
        cursor.close()


def _described(conn: Connection, plan: _Plan, description: Sequence[Sequence[Any]]
               ) -> SimpleResultMetaData:
    """The columns of the rows, with their types' result processors for the column types
    the cursor describes (a textual statement's: the cursor's names, unprocessed)."""
    if plan.columns is None:
        key = tuple(d[0] for d in description)
    else:
        key = tuple(d[1] for d in description)
    metadata = plan.described.get(key)
    if metadata is None:
        if plan.columns is None:
            metadata = SimpleResultMetaData(key)
        else:
            keys, objects, types = plan.columns
            dialect = conn.dialect
            processors = [t._cached_result_processor(dialect, code)
                          for t, code in zip(types, key, strict=True)]
            metadata = SimpleResultMetaData(
                keys, objects, _processors=processors if any(processors) else None)
        if len(plan.described) < 16:
            plan.described[key] = metadata
    return metadata


def _expand(plan: _Plan, params: Sequence[Any]) -> tuple[str, list[Any]] | None:
    """The SQL and parameters with each expanding ``IN`` list spliced in, as the dialect
    renders them; None when a list is empty (SQLAlchemy renders those its own way)."""
    params = list(params)
    lengths = []
    for i, name in enumerate(plan.names):
        if name in plan.expanding:
            value = params[i] = list(params[i])
            if not value:
                return None
            lengths.append(len(value))
    key = tuple(lengths)
    split = plan.splits.get(key)
    if split is None:
        state = plan.compiled.construct_expanded_state(dict(zip(plan.names, params, strict=True)))
        first = {n: i for i, n in reversed(list(enumerate(plan.names)))}
        sources = {k: (first[name], j) for name, keys in state.parameter_expansion.items()
                   for j, k in enumerate(keys)}
        split = (state.statement,
                 [sources[n] if n in sources else (first[n], None) for n in state.positiontup])
        if len(plan.splits) < 64:
            plan.splits[key] = split
    sql, sources_in_order = split
    return sql, [params[i] if j is None else params[i][j] for i, j in sources_in_order]


def _plan(conn: Connection, statement: ClauseElement, keys: tuple[str, ...]) -> _Plan | None:
    plans = _PLANS.get(statement)
    if plans is None:  # seen once: a statement built per call never gets compiled here
        _PLANS[statement] = {}
        return None
    dialect = conn.dialect
    key = (type(dialect), dialect.paramstyle, keys)
    plan = plans.get(key, _UNSEEN)
    if plan is _UNSEEN:
        plan = plans[key] = _compile(conn, statement, keys)
    if plan is not None and conn._execution_options.get("schema_translate_map"):
        return None
    return plan  # type: ignore[no-any-return]


def _compile(conn: Connection, statement: Any, keys: tuple[str, ...]) -> _Plan | None:
    dialect = conn.dialect
    if getattr(statement, "_return_defaults", False):
        return None  # return_defaults(): SQLAlchemy fetches what the database filled in
    compiled: Any = statement.compile(dialect=dialect, column_keys=list(keys))
    names = list(compiled.positiontup or ())
    if (not compiled.positional or (not names and compiled.params)
            or compiled.insert_prefetch or compiled.update_prefetch
            or compiled.literal_execute_params):
        return None
    post = compiled.post_compile_params
    if any(not p.expanding or p.type._is_tuple_type for p in post):
        return None
    expanding = frozenset(compiled.bind_names[p] for p in post)
    constants = {n: v for n, v in compiled.params.items() if n not in keys}
    if any(n not in keys and (n not in constants or constants[n] is REQUIRED
                              or compiled.binds[n].required) for n in names):
        return None  # a value is missing: SQLAlchemy says which
    processors = compiled._bind_processors
    if any(n in processors for n in expanding):
        return None
    columns = None
    if not statement._is_text_clause and (statement.is_select or compiled.effective_returning):
        result_columns = compiled._result_columns
        column_keys = [c[0] for c in result_columns]
        if not result_columns or len(set(column_keys)) != len(column_keys):
            return None
        columns = (column_keys, [tuple(c[2]) for c in result_columns],
                   [c[3] for c in result_columns])
    insert_pk = None
    if statement.is_insert:
        insert_pk = compiled._inserted_primary_key_from_lastrowid_getter
    binder = _binder(names, constants, {n: p for n, p in processors.items() if n in names})
    return _Plan(compiled, names, binder, columns,
                 None if insert_pk is None else _with_constants(insert_pk, constants),
                 expanding, bool(compiled.effective_returning))


def _with_constants(getter: Any, constants: dict[str, Any]) -> Any:
    if not constants:
        return getter
    return lambda lastrowid, values: getter(lastrowid, {**constants, **values})


def _binder(names: list[str], constants: dict[str, Any],
            processors: dict[str, Callable[[Any], Any]]) -> _Binder:
    """The parameters in compiled order: the call's values, the statement's constants,
    each through its type's bind processor."""
    if not constants and not processors:
        if len(names) > 1:
            return operator.itemgetter(*names)

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


__all__ = ["DirectConnection", "execute_many", "first_row", "use_direct_connections"]

"""Where the catalog lives: the contract's table ``catalog_products``, its full-text index,
and the outbox its events leave through.

Products are loaded and saved by invariant's
:class:`~invariant.state.StateStoredRepository` (the contract's rows: id, version, the
contract's fields, timestamps; optimistic locking on ``version``; the events a change
records go to ``invariant_outbox`` in the same transaction), run on the shop's
:class:`~invariant.projections.ReadModelDatabase` rather than on an async engine: on SQLite
every other writer of the file (event store, projections, relay, jobs) writes on the event
loop's thread, and a transaction that held the write lock across ``await`` points would
wait for a loop blocked on that very lock. Revisions lock the row (``FOR UPDATE``) on
PostgreSQL, so that concurrent revisions of one product queue rather than conflict.

What the repository does not do lives here: the listing and search queries.

Full-text search:

* SQLite: an FTS5 table ``catalog_products_fts`` kept in step with the products table by
  triggers, so every insert and update re-indexes the product in the same transaction.
  Search terms are quoted, so no user input is ever FTS5 syntax.
* PostgreSQL: a GIN index on ``to_tsvector('english', name || ' ' || description)``,
  searched with ``plainto_tsquery`` (which accepts any text).

The tables are created at start-up with ``metadata.create_all`` (idempotent: only what is
missing is created) rather than an Alembic chain: shop is one process that owns its
database, and the table comes straight from the contract, so ``invariant contracts check``
still reports any drift between the contract and the database. A deployment that must
migrate existing data generates the migration from the same contract.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, func, select, text
from sqlalchemy.exc import DBAPIError

from invariant.clock import Clock, utc_now
from invariant.contracts.sql import contracts_metadata, table_for
from invariant.domain import AggregateNotFoundError, ConcurrencyError, StoreError, UniquenessError
from invariant.projections import ReadModelDatabase
from invariant.state import StateStoredRepository
from shop.catalog.application import ProductView
from shop.catalog.contracts import ProductDetails
from shop.catalog.domain import Product, ProductNotForSale
from shop.kernel import ProductId
from shop.platform.paging import read_page

TSVECTOR = "to_tsvector('english', name || ' ' || description)"
"""The indexed document on PostgreSQL (queries must spell it the same way to use the index)."""
RETRIES = 3

_SQLITE_FTS = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS catalog_products_fts USING fts5("
    "product_id UNINDEXED, name, description, tokenize = 'porter unicode61')",
    "CREATE TRIGGER IF NOT EXISTS catalog_products_fts_insert AFTER INSERT ON catalog_products "
    "BEGIN INSERT INTO catalog_products_fts (product_id, name, description) "
    "VALUES (new.id, new.name, new.description); END",
    "CREATE TRIGGER IF NOT EXISTS catalog_products_fts_update "
    "AFTER UPDATE OF name, description ON catalog_products "
    "BEGIN DELETE FROM catalog_products_fts WHERE product_id = old.id; "
    "INSERT INTO catalog_products_fts (product_id, name, description) "
    "VALUES (new.id, new.name, new.description); END",
    "CREATE TRIGGER IF NOT EXISTS catalog_products_fts_delete AFTER DELETE ON catalog_products "
    "BEGIN DELETE FROM catalog_products_fts WHERE product_id = old.id; END",
)
_SQLITE_REINDEX = (
    "DELETE FROM catalog_products_fts",
    "INSERT INTO catalog_products_fts (product_id, name, description) "
    "SELECT id, name, description FROM catalog_products",
)
_POSTGRES_FTS = (
    f"CREATE INDEX IF NOT EXISTS ix_catalog_products_search ON catalog_products "
    f"USING GIN ({TSVECTOR})",
)


SEARCH_INDEX = {"sqlite": _SQLITE_FTS, "postgresql": _POSTGRES_FTS}
"""The full-text index beside the products table, per dialect (for its migration)."""


class SqlProductCatalog:
    """The catalog in the shop's database (SQLite or PostgreSQL)."""

    def __init__(self, database: Callable[[], ReadModelDatabase], *,
                 clock: Clock = utc_now) -> None:
        self._database = database  # the shop opens its database after the modules exist
        self._clock = clock
        self._products: StateStoredRepository[Product] | None = None
        self._products_on: ReadModelDatabase | None = None
        self.table: Table = table_for(ProductDetails, contracts_metadata())

    @property
    def products(self) -> StateStoredRepository[Product]:
        """The repository of products, on the shop's database."""
        database = self._database()
        if self._products is None or self._products_on is not database:
            self._products = StateStoredRepository(
                database, Product, ProductDetails, id_type=ProductId, clock=self._clock,
                retries=RETRIES, lock_rows=True)
            self._products_on = database
        return self._products

    async def _run(self, work: Callable[[Connection], Any], *, write: bool = True) -> Any:
        try:
            return await self._database().run(work, write=write)
        except DBAPIError as exc:
            raise StoreError(f"the catalog's database failed: {exc.orig}") from exc

    # -- schema ---------------------------------------------------------------------------

    async def setup(self) -> None:
        """Create the products table, its full-text index and the outbox when missing."""
        await self.products.setup()
        await self._run(self._create)

    def _create(self, conn: Connection) -> None:
        self.table.metadata.create_all(conn, tables=[self.table])
        if conn.dialect.name == "sqlite":
            for statement in _SQLITE_FTS:
                conn.exec_driver_sql(statement)
            indexed = conn.exec_driver_sql("SELECT count(*) FROM catalog_products_fts").scalar()
            if indexed != conn.execute(select(func.count()).select_from(self.table)).scalar():
                for statement in _SQLITE_REINDEX:  # rows written before the index existed
                    conn.exec_driver_sql(statement)
        else:
            for statement in _POSTGRES_FTS:
                conn.exec_driver_sql(statement)

    # -- aggregates (invariant's repository) ----------------------------------------------

    async def get(self, product_id: ProductId) -> Product:
        try:
            return await self.products.get(product_id)
        except AggregateNotFoundError:
            raise ProductNotForSale(product_id.value) from None

    async def add(self, product: Product) -> None:
        try:
            await self.products.save(product)
        except ConcurrencyError as exc:
            if exc.expected != 0:
                raise
            raise UniquenessError("product", ("id",)) from None  # the id is taken

    async def revise(self, product_id: ProductId, change: Callable[[Product], None]
                     ) -> Product:
        """Load, change and save in one transaction, retried on conflicts; a change that
        changes nothing writes nothing (the product keeps its version)."""
        try:
            return await self.products.update(product_id, change)
        except AggregateNotFoundError:
            raise ProductNotForSale(product_id.value) from None

    # -- queries --------------------------------------------------------------------------

    async def count(self) -> int:
        return int(await self._run(
            lambda c: c.execute(select(func.count()).select_from(self.table)).scalar_one(),
            write=False))

    async def page(self, *, offset: int, limit: int, active_only: bool
                   ) -> tuple[list[ProductView], int]:
        t = self.table
        where = t.c.active.is_(True) if active_only else None

        def work(conn: Connection) -> tuple[list[ProductView], int]:
            rows, total = read_page(conn, t, where=where, order_by=(t.c.name, t.c.id),
                                    offset=offset, limit=limit)
            return [_view(row) for row in rows], total

        found: tuple[list[ProductView], int] = await self._run(work, write=False)
        return found

    async def search(self, terms: Sequence[str], *, offset: int, limit: int
                     ) -> tuple[list[ProductView], int]:
        found: tuple[list[ProductView], int] = await self._run(
            lambda conn: self._search(conn, terms, offset, limit), write=False)
        return found

    def _search(self, conn: Connection, terms: Sequence[str], offset: int, limit: int
                ) -> tuple[list[ProductView], int]:
        page = {"limit": limit, "offset": offset}
        if conn.dialect.name == "sqlite":
            # Each term becomes a quoted FTS5 string: operators, column filters and stray
            # quotes in user input are plain text, never query syntax.
            params: dict[str, Any] = {
                "match": " ".join('"' + term.replace('"', '""') + '"' for term in terms)}
            found = ("FROM catalog_products_fts f JOIN catalog_products p "
                     "ON p.id = f.product_id WHERE catalog_products_fts MATCH :match "
                     "AND p.active")
            order = "f.rank, p.name, p.id"
        else:
            params = {"q": " ".join(terms)}
            found = (f"FROM catalog_products p, plainto_tsquery('english', :q) query "
                     f"WHERE p.active AND {TSVECTOR} @@ query")
            order = f"ts_rank({TSVECTOR}, query) DESC, p.name, p.id"
        rows_sql = text(f"SELECT p.* {found} ORDER BY {order} LIMIT :limit OFFSET :offset")
        rows = conn.execute(rows_sql.columns(*self.table.columns), {**params, **page})
        total = conn.execute(text(f"SELECT count(*) {found}"), params).scalar_one()
        return [_view(row) for row in rows.mappings().all()], int(total)


def _view(row: Any) -> ProductView:
    return ProductView.of(str(row["id"]), ProductDetails.from_row(dict(row)))

"""The HTTP ceiling beside W6: the least an HTTP endpoint with a durable write can cost here.

``python -m benchmarks.w6_ceiling --port PORT --database PATH`` serves one FastAPI endpoint,
``POST /orders``, on uvicorn (the same server and settings shop uses): each request is one
``INSERT`` into SQLite committed on its own (WAL, ``synchronous=FULL``, as shop's store),
answered 201 with the new row's id. W6 runs its own load script against it, so the figure
beside W6 is what one process can take in when nothing but HTTP and one durable commit is
paid per request.
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import uvicorn
from fastapi import FastAPI, status
from pydantic import BaseModel, Field


class NewOrder(BaseModel):
    """What the load script sends: who orders, and one line."""

    customer: str = Field(max_length=64)
    product_id: str = Field(max_length=64)
    quantity: int = Field(ge=1, le=99)


class Created(BaseModel):
    """The stored row's id."""

    id: int


def open_database(path: Path) -> sqlite3.Connection:
    """One connection, durable as shop's event store: WAL and a full sync on every commit."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                 " customer TEXT NOT NULL, product_id TEXT NOT NULL, quantity INTEGER NOT NULL)")
    return conn


def create_app(conn: sqlite3.Connection) -> FastAPI:
    """The one-endpoint app over ``conn``."""
    app = FastAPI(title="W6 ceiling")

    @app.post("/orders", status_code=status.HTTP_201_CREATED)
    async def place(order: NewOrder) -> Created:
        # On the event loop, like shop's single writer: one commit (one fsync) at a time.
        cursor = conn.execute(
            "INSERT INTO orders (customer, product_id, quantity) VALUES (?, ?, ?)",
            (order.customer, order.product_id, order.quantity))
        row_id = cursor.lastrowid
        assert row_id is not None
        return Created(id=row_id)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def count_rows(path: Path) -> int:
    """How many orders the endpoint stored (the load script checks every 201 is a row)."""
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM orders").fetchone()[0])
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.w6_ceiling", description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--database", type=Path, required=True)
    args = p.parse_args(argv)
    conn = open_database(args.database)
    uvicorn.run(create_app(conn), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()

"""Handing rows over to a broker or queue, at least once: claim, send, then settle.

The outbox relay and the job forwarder move rows out of the database this way: a batch is
*claimed* in one short transaction (claims expire, so a dead worker's rows go to another),
sent outside any transaction, then settled by a write of its own (one statement where
that is enough: see :meth:`~invariant.sql.database.ReadModelDatabase.execute`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from sqlalchemy import Connection

from invariant.sql.database import ReadModelDatabase

T = TypeVar("T")


async def hand_over(
    database: ReadModelDatabase, claim: Callable[[Connection], Sequence[T]],
    send: Callable[[Sequence[T]], Awaitable[object]], *,
    release: Callable[[Connection, Sequence[T]], object],
    settle: Callable[[Sequence[T]], Awaitable[object]],
) -> int:
    """Hand one batch of rows to a broker, at least once; how many rows.

    ``claim`` takes the batch in one transaction (claims that expire: a dead worker's
    rows go to another), ``send`` hands it over, and ``settle`` marks it done in the
    database (a write committed on its own). When sending fails, ``release`` gives the
    claims back (best effort: they expire anyway) and the error is raised. A crash between
    sending and settling sends the batch again later: receivers deduplicate by message id.
    """
    batch = await database.run(claim)
    if not batch:
        return 0
    try:
        await send(batch)
    except BaseException:
        with contextlib.suppress(Exception):
            await database.run(lambda conn: release(conn, batch))
        raise
    await settle(batch)
    return len(batch)

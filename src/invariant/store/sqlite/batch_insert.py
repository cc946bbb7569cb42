"""The one-event commits of a group-commit batch, inserted with one ``executemany``."""

from __future__ import annotations

import sqlite3
from typing import Any

from invariant.store.sqlite.commits import INSERT_CHECKED, INSERT_EVENT, Job, PreparedCommit, dumps

_MAX_VERSIONS = (
    "SELECT s.value, (SELECT max(version) FROM invariant_events WHERE stream_id = s.value)"
    " FROM json_each(?) AS s"
)


def _json_available() -> bool:
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("SELECT value FROM json_each('[1]')").fetchall()
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    return True


_HAS_JSON = _json_available()  # built into SQLite since 3.38; optional before


def insert_singles(conn: sqlite3.Connection, batch: list[Job]) -> list[Job]:
    """Insert the batch's one-event commits with one ``executemany``; the jobs left to run.

    The streams' versions are read in one statement first (SQLite's JSON functions give the
    list of streams as one parameter); a commit whose expectation does not hold is refused
    on the spot, the others are inserted in order, one position after another. Without the
    JSON functions each row checks its own version and the rows inserted count how many
    held. If anything fails (a duplicate event id), the transaction starts over and every
    job runs on its own, to get its own outcome.
    """
    # (job, its commit, the row to insert)
    singles: list[tuple[Job, PreparedCommit, tuple[Any, ...]]] = []
    rest: list[Job] = []
    streams: set[str] = set()
    for job in batch:
        prepared = job.commit
        row = None if prepared is None else prepared.row
        # One row per stream: a second one for the same stream is a conflict in the making
        # (both expected the same version); it runs on its own, after, to be refused there.
        if prepared is None or row is None or row[1] in streams:
            rest.append(job)
            continue
        streams.add(row[1])
        singles.append((job, prepared, row))
    if len(singles) < 2:
        return batch
    if _HAS_JSON:
        # Every stream's version in one statement, then plain inserts for the commits whose
        # expectation held; the others are refused right here.
        versions = dict(conn.execute(_MAX_VERSIONS, (dumps(list(streams)),)).fetchall())
        held: list[tuple[Job, PreparedCommit, tuple[Any, ...]]] = []
        for job, prepared, row in singles:
            actual = versions.get(row[1]) or 0
            if actual == row[10]:
                held.append((job, prepared, row[:9]))
            else:
                job.error = prepared.conflict(actual)
        singles = held
        statement = INSERT_EVENT
    else:  # each row checks its own version: the rows inserted count how many held
        statement = INSERT_CHECKED
    rows = [row for _, _, row in singles]
    try:
        inserted = conn.executemany(statement, rows).rowcount
    except sqlite3.IntegrityError:  # a duplicate event id: find whose, one by one
        inserted = -1
    if inserted != len(rows):
        conn.execute("ROLLBACK")
        conn.execute("BEGIN IMMEDIATE")
        for job in batch:
            job.error = None
        return batch
    position = conn.execute("SELECT last_insert_rowid()").fetchone()[0] - len(rows)
    for job, prepared, _ in singles:
        position += 1
        job.result = prepared.result_at(position)
    return rest

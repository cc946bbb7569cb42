"""The processes page: sagas and process managers by status, one process's state, pending
deadlines, undispatched commands and the events of its flow; resume a parked one."""

from __future__ import annotations

from starlette.responses import Response

from invariant.clock import utc_now
from invariant.console.desk import Desk
from invariant.domain.errors import ConfigurationError
from invariant.operations.processes import process_details, status_counts
from invariant.processes import STATUSES, resume_parked, setup_tables
from invariant.processes import persistence as process_state
from invariant.store.catalog import StreamCatalog

SHOWN = 200


async def processes_page(desk: Desk) -> Response:
    status = desk.query("status") or None
    if status is not None and status not in STATUSES:
        raise ConfigurationError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    database = desk.operated.database
    await setup_tables(database)
    rows = await database.run(
        lambda c: process_state.listing(c, status=status, limit=SHOWN), write=False)
    counts = await database.run(status_counts, write=False)
    return desk.render("processes.html", rows=rows, status=status, statuses=STATUSES,
                       counts=counts)


async def process_page(desk: Desk) -> Response:
    process_id = desk.param("process_id")
    database = desk.operated.database
    await setup_tables(database)
    details = await database.run(lambda c: process_details(c, process_id), write=False)
    storage = desk.operated.storage
    history = (await storage.read_correlated(details["correlation"], limit=100)
               if isinstance(storage, StreamCatalog) else [])
    return desk.render("process.html", process=details, history=history,
                       parked=details["status"] == process_state.NEEDS_ATTENTION)


async def resume(desk: Desk) -> Response:
    process_id = desk.param("process_id")
    database = desk.operated.database
    await setup_tables(database)
    record = await database.run(lambda c: resume_parked(c, process_id, utc_now()),
                                write=True)
    outcome = f"resumed: {record.status} (version {record.version})"
    await desk.audit("process resume", process_id, outcome)
    return desk.redirect(f"/processes/{process_id}", notice=outcome)

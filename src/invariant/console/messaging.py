"""The messaging page: the outbox backlog and its oldest row's age, the consumers and
their inboxes, dead letters (inspect, replay, discard) and jobs (pending, dead, retry)."""

from __future__ import annotations

from starlette.responses import Response

from invariant.console.desk import Desk
from invariant.domain.errors import ConfigurationError
from invariant.messaging import deadletters, inbox
from invariant.messaging import jobs as job_table
from invariant.messaging.brokers.inprocess import InProcessBroker
from invariant.messaging.relay import OutboxRelay
from invariant.operations.deadletters import discard, parked, replay_letter
from invariant.operations.jobs import discard_dead_job, pending_jobs, retry_dead_job
from invariant.operations.messaging import inbox_counts
from invariant.sql.locks import create_tables


async def _setup(desk: Desk) -> None:
    database = desk.operated.database
    await database.run(deadletters.create)
    await database.run(lambda conn: create_tables(conn, database, job_table.create))


async def messaging_page(desk: Desk) -> Response:
    await _setup(desk)
    database = desk.operated.database
    relay = OutboxRelay(database, InProcessBroker())
    await relay.setup()
    lag = await relay.lag()
    await database.run(inbox.create)
    handled = await database.run(inbox_counts, write=False)
    consumers = sorted({c.name for c in desk.operated.parts.consumers} | set(handled))
    letters = await database.run(deadletters.list_parked, write=False)
    waiting, pending = await database.run(pending_jobs, write=False)
    dead = await database.run(job_table.dead_jobs, write=False)
    return desk.render("messaging.html", lag=lag, consumers=consumers, handled=handled,
                       letters=letters, waiting=waiting, pending=pending, dead=dead)


def _id(desk: Desk, name: str) -> int:
    text = desk.param(name)
    if not text.isdigit() or len(text) > 18:
        raise ConfigurationError(f"{text!r} is not an id")
    return int(text)


async def letter_page(desk: Desk) -> Response:
    await _setup(desk)
    letter_id = _id(desk, "letter_id")
    letter = await desk.operated.database.run(lambda c: parked(c, letter_id), write=False)
    return desk.render("letter.html", letter=letter)


async def replay(desk: Desk) -> Response:
    await _setup(desk)
    letter_id = _id(desk, "letter_id")
    letter = await desk.operated.database.run(lambda c: parked(c, letter_id), write=False)
    consumers = {c.name: c for c in desk.operated.parts.consumers}
    consumer = consumers.get(letter.consumer)
    if consumer is None:
        raise ConfigurationError(
            f"dead letter {letter_id} belongs to consumer {letter.consumer!r}, which "
            f"{desk.operated.name} does not have; it has {', '.join(sorted(consumers))}")
    await consumer.setup()
    failure = await replay_letter(consumer, letter)
    outcome = failure or f"replayed: {letter.consumer} handled it"
    await desk.audit("dead letter replay", f"{letter_id} ({letter.message.message_type})",
                     outcome)
    return desk.redirect("/messaging", **({"error": failure} if failure else
                                          {"notice": f"dead letter {letter_id} {outcome}"}))


async def discard_letter(desk: Desk) -> Response:
    await _setup(desk)
    letter_id = _id(desk, "letter_id")
    letter = await desk.operated.database.run(lambda c: discard(c, letter_id))
    await desk.audit("dead letter discard", f"{letter_id} ({letter.message.message_type})",
                     f"discarded; {letter.consumer} never handles it")
    return desk.redirect("/messaging", notice=f"dead letter {letter_id} discarded")


async def discard_job(desk: Desk) -> Response:
    await _setup(desk)
    job_id = _id(desk, "job_id")
    job = await desk.operated.database.run(lambda c: discard_dead_job(c, job_id))
    await desk.audit("job discard", f"{job_id} ({job.name})", "discarded; it never runs")
    return desk.redirect("/messaging", notice=f"dead job {job_id} discarded")


async def retry_job(desk: Desk) -> Response:
    await _setup(desk)
    job_id = _id(desk, "job_id")
    await desk.operated.database.run(lambda c: retry_dead_job(c, job_id))
    await desk.audit("job retry", str(job_id), "due again with fresh attempts")
    return desk.redirect("/messaging", notice=f"job {job_id} is due again")

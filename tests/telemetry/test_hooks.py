"""The hooks one by one, on a real database (a SQLite file and a PostgreSQL schema): the
consumer's handler runs in the consume span (on SQLite's worker thread too), a job queued
there carries that span's context and runs as its child, and a message whose trace fields
are not text is handled as any other."""

from __future__ import annotations

import uuid
from pathlib import Path

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Connection

from invariant.messaging import jobs
from invariant.messaging.consumer import HANDLED, Consumer
from invariant.messaging.jobs import Job, JobWorker
from invariant.messaging.port import Message
from invariant.sql.database import ReadModelDatabase, SQLiteReadModels
from invariant.telemetry import tracing

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _message(metadata: dict[str, object]) -> Message:
    return Message(str(uuid.uuid4()), "Happened", "s-1", 1, {"n": 1}, metadata, 1)


async def test_a_job_queued_by_a_consumer_continues_the_message_s_trace(
        db: ReadModelDatabase, spans: InMemorySpanExporter) -> None:
    await _consume_then_run_the_job(db, spans)


async def test_the_trace_reaches_a_handler_on_the_read_models_own_thread(
        tmp_path: Path, spans: InMemorySpanExporter) -> None:
    threaded = SQLiteReadModels(tmp_path / "threaded.db", in_thread=True)
    try:
        await _consume_then_run_the_job(threaded, spans)
    finally:
        await threaded.close()


async def _consume_then_run_the_job(database: ReadModelDatabase,
                                    spans: InMemorySpanExporter) -> None:
    seen: list[tuple[str, str] | None] = []

    def handler(conn: Connection, message: Message) -> None:
        seen.append(tracing.current_ids())
        jobs.enqueue(conn, "mail", {"to": "ada@example.com"})

    ran: list[Job] = []

    async def mail(job: Job) -> None:
        ran.append(job)

    consumer = Consumer("effects", database, handler)
    worker = JobWorker(database, {"mail": mail})
    await consumer.setup()
    await worker.setup()
    assert await consumer.handle(_message({"traceparent": TRACEPARENT})) == HANDLED
    assert await worker.run_once() == 1

    consume, job = spans.get_finished_spans()
    assert consume.name == "consume effects" and consume.parent is not None
    assert f"{consume.parent.trace_id:032x}" == TRACEPARENT.split("-")[1]
    assert seen == [(f"{consume.context.trace_id:032x}", f"{consume.context.span_id:016x}")]
    assert job.name == "job mail"
    assert job.parent is not None and job.parent.span_id == consume.context.span_id
    assert ran[0].payload["to"] == "ada@example.com"


async def test_trace_fields_that_are_not_text_do_not_stop_a_message(
        db: ReadModelDatabase, spans: InMemorySpanExporter) -> None:
    consumer = Consumer("effects", db, lambda conn, message: None)
    await consumer.setup()
    for odd in ({"traceparent": 5}, {"traceparent": ["x"], "tracestate": {}},
                {"traceparent": "garbage"}, {"correlation_id": {"a": 1}}):
        assert await consumer.handle(_message(odd)) == HANDLED
    assert [s.parent for s in spans.get_finished_spans()] == [None] * 4
    assert _message({"traceparent": 5, "tracestate": "a=1"}).trace_headers() == {}

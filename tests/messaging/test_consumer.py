"""Idempotent consumers: the inbox, retries with backoff, dead letters, replay."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import Connection, select
from typer.testing import CliRunner

from examples.integration.events import OrderCancelled
from invariant.cli import app
from invariant.config import Settings
from invariant.messaging import deadletters, inbox
from invariant.messaging.brokers.inprocess import InProcessBroker
from invariant.messaging.consumer import (
    DUPLICATE,
    HANDLED,
    PARKED,
    SKIPPED,
    Consumer,
    external,
    subscribed,
)
from invariant.messaging.port import Message
from invariant.messaging.published_language import IntegrationEvents
from invariant.operable import Parts
from invariant.retry import RetryPolicy
from invariant.sql.database import ReadModelDatabase, SQLiteReadModels
from invariant.store.port import EventStorage
from tests.conftest import POSTGRES_DSN
from tests.messaging.helpers import count_effects, effects, effects_metadata, record_effect

FAST = RetryPolicy(attempts=3, first_delay=0.01)


def msg(n: int = 1, **data: object) -> Message:
    return Message(str(uuid.uuid4()), "Happened", "s-1", 1, {"n": n, **data}, {}, n)


async def test_a_redelivered_message_changes_nothing(db: ReadModelDatabase) -> None:
    consumer = Consumer("effects", db, record_effect, backoff=FAST)
    await consumer.setup()
    m = msg()
    assert await consumer.handle(m) == HANDLED
    assert await consumer.handle(m) == DUPLICATE
    assert await consumer.handle(msg(2)) == HANDLED
    assert await db.run(count_effects, write=False) == (2, 2)
    assert consumer.outcomes == {HANDLED: 2, DUPLICATE: 1, PARKED: 0, SKIPPED: 0}


async def test_effects_and_inbox_row_commit_together(db: ReadModelDatabase) -> None:
    calls: list[int] = []

    def half_then_fail(conn: Connection, message: Message) -> None:
        record_effect(conn, message)
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("transient")  # the effect above is rolled back with it

    consumer = Consumer("effects", db, half_then_fail, backoff=FAST)
    await consumer.setup()
    assert await consumer.handle(msg()) == HANDLED
    assert len(calls) == 2
    assert await db.run(count_effects, write=False) == (1, 1)


async def test_a_poison_message_is_retried_then_parked_and_can_be_replayed(
    db: ReadModelDatabase
) -> None:
    broken = True

    def handler(conn: Connection, message: Message) -> None:
        if broken:
            raise ValueError(f"cannot handle n={message.data['n']}")
        record_effect(conn, message)

    consumer = Consumer("effects", db, handler, backoff=FAST)
    await consumer.setup()
    poison = msg(7)
    assert await consumer.handle(poison) == PARKED
    assert await consumer.handle(poison) == DUPLICATE  # redelivered: parked once
    (letter,) = await db.run(deadletters.list_parked, write=False)
    assert letter.message == poison
    assert letter.attempts == 3
    assert letter.error == "ValueError: cannot handle n=7"
    broken = False
    await consumer.replay(letter.id)
    assert await db.run(count_effects, write=False) == (1, 1)
    assert await db.run(deadletters.list_parked, write=False) == []


class Tally:
    """An effect kept outside the consumer's database, idempotent by message id by itself
    (as a Redis script is); ``down`` makes it fail."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.total = 0
        self.down = 0
        """How many calls fail from now on."""

    async def apply(self, message: Message) -> bool:
        if self.down:
            self.down -= 1
            raise ConnectionError("the store is down")
        if message.message_id in self.seen:
            return False
        self.seen.add(message.message_id)
        self.total += int(message.data["n"])
        return True


async def test_an_external_handler_is_retried_parked_and_replayed_and_counts_once(
        db: ReadModelDatabase) -> None:
    tally = Tally()
    consumer = Consumer("tally", db, external(tally.apply, ["Happened"]), backoff=FAST)
    await consumer.setup()
    assert consumer.types == {"Happened"}
    first, second = msg(1), msg(10)
    tally.down = 2  # fails twice, the third attempt counts it
    assert await consumer.handle(first) == HANDLED
    assert await consumer.handle(first) == DUPLICATE  # its own store says so
    tally.down = 3  # every attempt fails: parked in the consumer's database
    assert await consumer.handle(second) == PARKED
    (letter,) = await db.run(deadletters.list_parked, write=False)
    assert (letter.message, letter.attempts) == (second, 3)
    assert letter.error == "ConnectionError: the store is down"
    await consumer.replay(letter.id)
    assert await db.run(deadletters.list_parked, write=False) == []
    assert await consumer.handle(second) == DUPLICATE
    assert tally.total == 11


def test_backoff_is_exponential_and_capped() -> None:
    backoff = RetryPolicy(attempts=10, first_delay=0.1, factor=2, max_delay=1.0)
    assert [backoff.delay(n) for n in range(1, 6)] == [0.1, 0.2, 0.4, 0.8, 1.0]


async def test_an_unsupported_version_is_parked_at_once(db: ReadModelDatabase) -> None:
    events = IntegrationEvents(OrderCancelled)

    def handler(conn: Connection, message: Message) -> None:
        events.decode(message)

    consumer = Consumer("orders", db, handler, backoff=FAST)
    await consumer.setup()
    future = Message(str(uuid.uuid4()), "order.cancelled", "", 2, {}, {"version": 2})
    assert await consumer.handle(future) == PARKED
    (letter,) = await db.run(deadletters.list_parked, write=False)
    assert letter.attempts == 1
    assert "order.cancelled v2 is not supported by this consumer" in letter.error


async def test_the_consumer_loop_acknowledges_after_the_effects() -> None:
    import asyncio
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        db = SQLiteReadModels(Path(tmp) / "e.db")
        await db.run(effects_metadata.create_all)
        broker = InProcessBroker()
        consumer = Consumer("effects", db, record_effect)
        await consumer.setup()
        await broker.declare("effects")
        sent = [msg(i) for i in range(10)]
        await broker.publish(sent)
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.consume(broker, stop=stop, poll=0.05))
        async with asyncio.timeout(10):
            while (await db.run(count_effects, write=False))[0] < 10:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        stop.set()
        assert await task == 10
        assert await broker.fetch("effects", max_messages=10, timeout=0.05) == []
        await db.close()


@pytest.mark.parametrize("kind", ["inprocess", "sql"])
async def test_a_waiting_consumer_is_woken_by_a_publish_in_its_process(
    db: ReadModelDatabase, kind: str
) -> None:
    """The embedded brokers wake a consumer's waiting fetch when a message is published, so
    the host's fetch timeout (its ``poll``) is no delay."""
    import asyncio

    from invariant.messaging.brokers.sql import SqlBroker

    await db.run(effects_metadata.create_all)
    broker = InProcessBroker() if kind == "inprocess" else SqlBroker(db, poll_interval=3600)
    await broker.connect()
    handled = asyncio.Event()

    def handler(conn: Connection, message: Message) -> None:
        record_effect(conn, message)
        handled.set()

    consumer = Consumer("effects", db, handler)
    await consumer.setup()
    await consumer.declare(broker)
    task = asyncio.create_task(consumer.consume(broker, stop=asyncio.Event(), poll=3600))
    try:
        await asyncio.sleep(0.05)  # the consumer is waiting (were it not, it would find it)
        await broker.publish([msg()])
        async with asyncio.timeout(60):
            await handled.wait()
        assert (await db.run(count_effects, write=False))[0] == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await broker.close()


async def test_a_broker_outage_is_counted_and_stop_is_heard_while_waiting(
        tmp_path: Path) -> None:
    import asyncio

    from invariant.messaging.errors import BrokerError

    class Flaky(InProcessBroker):
        """Unreachable for the first two fetches."""

        def __init__(self) -> None:
            super().__init__()
            self.down = 2

        async def fetch(self, group: str, *, max_messages: int, timeout: float  # noqa: ASYNC109
                        ) -> list:  # type: ignore[type-arg]
            if self.down:
                self.down -= 1
                raise BrokerError("connection refused")
            return await super().fetch(group, max_messages=max_messages, timeout=timeout)

    db = SQLiteReadModels(tmp_path / "e.db")
    await db.run(effects_metadata.create_all)
    broker = Flaky()
    consumer = Consumer("effects", db, record_effect)
    await consumer.setup()
    await broker.declare("effects")
    await broker.publish([msg(1)])
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.consume(broker, stop=stop, poll=0.05))
    async with asyncio.timeout(10):
        while (await db.run(count_effects, write=False))[0] < 1:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert (consumer.failures, consumer.last_error) == (2, "BrokerError: connection refused")
    stop.set()
    assert await task == 1

    broker.down = 1_000_000  # down for good: stopping must not wait for a long poll
    waiting = asyncio.create_task(consumer.consume(broker, stop=(halt := asyncio.Event()),
                                                   poll=30))
    await asyncio.sleep(0.05)
    halt.set()
    async with asyncio.timeout(2):
        assert await waiting == 0
    await db.close()


# -- the command line: `invariant deadletters list|replay` --

FIXED = {"on": False}


def consumers(database: ReadModelDatabase) -> list[Consumer]:
    """The consumers of the CLI test's application."""
    def handler(conn: Connection, message: Message) -> None:
        if not FIXED["on"]:
            raise ValueError("still broken")
        record_effect(conn, message)
    return [Consumer("effects", database, handler, backoff=FAST)]


class EffectsApp:
    """``INVARIANT_APP=tests.messaging.test_consumer:effects_app``."""

    def settings(self) -> Settings:
        return Settings.from_env()

    def parts(self, storage: EventStorage, database: ReadModelDatabase) -> Parts:
        return Parts(consumers=consumers(database))


effects_app = EffectsApp()


async def _park_one(path: Path) -> None:
    db = SQLiteReadModels(path)
    await db.run(effects_metadata.create_all)
    (consumer,) = consumers(db)
    await consumer.setup()
    assert await consumer.handle(msg(3)) == PARKED
    await db.close()


def test_deadletters_cli_lists_and_replays(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    path = tmp_path / "app.db"
    asyncio.run(_park_one(path))

    monkeypatch.setenv("INVARIANT_SQLITE_PATH", str(path))
    monkeypatch.setenv("INVARIANT_APP", "tests.messaging.test_consumer:effects_app")
    runner = CliRunner()
    listed = runner.invoke(app, ["deadletters", "list"])
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines()[1].startswith("1\teffects\t")
    assert listed.stdout.splitlines()[1].endswith("\tValueError: still broken")
    assert listed.stderr == "1 parked message(s)\n"
    failed = runner.invoke(app, ["deadletters", "replay", "1"])
    assert failed.exit_code == 1
    assert failed.stderr.splitlines() == [
        "replaying dead letters: 1/1 messages (100%)",
        "dead letter 1 (effects) failed again and stays parked: ValueError: still broken"]
    assert failed.stdout == "replayed 0 of 1 dead letter(s)\n"
    FIXED["on"] = True
    try:
        replayed = runner.invoke(app, ["deadletters", "replay", "1"])
    finally:
        FIXED["on"] = False
    assert replayed.exit_code == 0, replayed.output
    assert replayed.stdout == "replayed 1 of 1 dead letter(s)\n"
    assert "0 parked message(s)" in runner.invoke(app, ["deadletters", "list"]).output
    missing = runner.invoke(app, ["deadletters", "replay", "9"])
    assert missing.exit_code == 2
    assert missing.stderr == "error: no dead letter 9: see `invariant deadletters list`\n"
    unknown = runner.invoke(app, ["deadletters", "list", "--consumer", "efects"])
    assert unknown.exit_code == 2
    assert unknown.stderr == ("error: no consumer 'efects' in "
                              "INVARIANT_APP=tests.messaging.test_consumer:effects_app; known: "
                              "effects\n")


async def test_two_consumers_racing_on_one_message_apply_it_once(
    db: ReadModelDatabase, tmp_path: Path
) -> None:
    """A redelivery handled by a second member of the group while the first still works:
    one commits, the other finds the inbox row (or fails on its key and retries)."""
    import asyncio

    if db.dialect == "sqlite":
        other: ReadModelDatabase = SQLiteReadModels(db.path)  # type: ignore[attr-defined]
    else:
        other = ReadModelDatabase.for_url(POSTGRES_DSN, schema=db.schema)  # type: ignore[attr-defined]
    a = Consumer("effects", db, record_effect, backoff=FAST)
    b = Consumer("effects", other, record_effect, backoff=FAST)
    await a.setup()
    try:
        for n in range(10):
            m = msg(n)
            outcomes = await asyncio.gather(a.handle(m), b.handle(m))
            assert sorted(outcomes) == [DUPLICATE, HANDLED]
        assert await db.run(count_effects, write=False) == (10, 10)
    finally:
        await other.close()


class _Delivery:
    """A delivery that logs when it is acknowledged."""

    def __init__(self, message: Message, log: list[str]) -> None:
        self.message, self.redelivered, self._log = message, False, log

    async def ack(self) -> None:
        self._log.append(f"ack {self.message.stream_id}/{self.message.data['n']}")

    async def nack(self) -> None:
        raise AssertionError("not nacked here")


async def test_a_batch_keeps_each_streams_order_and_acknowledges_only_after_all_of_it(
    db: ReadModelDatabase
) -> None:
    log: list[str] = []
    failed: set[str] = set()

    def handler(conn: Connection, message: Message) -> None:
        name = f"{message.stream_id}/{message.data['n']}"
        if name == "a/1" and name not in failed:
            failed.add(name)
            raise RuntimeError("transient")  # retried: a/2 must still come after it
        record_effect(conn, message)
        log.append(f"handle {name}")

    consumer = Consumer("effects", db, handler, backoff=FAST)
    await consumer.setup()
    batch = [_Delivery(Message(str(uuid.uuid4()), "Happened", stream, 1, {"n": n}, {}, n),
                       log)
             for n, stream in ((1, "a"), (1, "b"), (2, "a"), (2, "b"), (3, "a"))]
    assert await consumer.consume_batch(batch) == 5
    handled = [e for e in log if e.startswith("handle")]
    assert [e for e in handled if "a/" in e] == ["handle a/1", "handle a/2", "handle a/3"]
    assert [e for e in handled if "b/" in e] == ["handle b/1", "handle b/2"]
    # a/1 failed the page's transaction: the page was handled again one message after
    # another, as published (no lost update between streams)
    assert handled == ["handle a/1", "handle b/1", "handle a/2", "handle b/2", "handle a/3"]
    assert log[:5] == handled and len(log) == 10  # every ack after every handling
    assert await db.run(count_effects, write=False) == (5, 5)


async def test_a_subscribed_consumer_skips_other_types_without_a_transaction(
    db: ReadModelDatabase
) -> None:
    seen: list[str] = []

    def handler(conn: Connection, message: Message) -> None:
        seen.append(message.message_type)
        record_effect(conn, message)

    consumer = Consumer("effects", db, subscribed(handler, ["Wanted"]), backoff=FAST)
    assert consumer.types == {"Wanted"}
    await consumer.setup()
    log: list[str] = []
    batch = [_Delivery(Message(str(uuid.uuid4()), kind, "s", 1, {"n": n}, {}, n), log)
             for n, kind in enumerate(["Happened", "Wanted", "Happened"])]
    assert await consumer.consume_batch(batch) == 1
    assert seen == ["Wanted"] and len(log) == 3  # all three acknowledged
    assert await db.run(count_effects, write=False) == (1, 1)  # one inbox row, one effect
    assert consumer.outcomes[SKIPPED] == 2
    broker = InProcessBroker()  # a broker that filters gets the types with the group
    await consumer.declare(broker)
    await broker.publish([Message(str(uuid.uuid4()), kind, "s", 1, {"n": n}, {}, n)
                          for n, kind in enumerate(["Happened", "Wanted"])])
    (only,) = await broker.fetch("effects", max_messages=10, timeout=0.1)
    assert only.message.message_type == "Wanted"


class _Crash(BaseException):
    """The process dies (not an error the consumer handles)."""


class _Dying(_Delivery):
    """A delivery whose acknowledgement never happens: the process dies first."""

    async def ack(self) -> None:
        raise _Crash


def _page(log: list[str], *specs: tuple[str, int]) -> list[_Delivery]:
    return [_Delivery(Message(str(uuid.uuid4()), "Happened", stream, 1, {"n": n}, {}, n), log)
            for stream, n in specs]


def _counting(db: ReadModelDatabase) -> list[int]:
    """Count the write transactions ``db`` runs from now on."""
    runs: list[int] = []
    run = db.run

    async def counted(work, *, write=True):  # type: ignore[no-untyped-def]
        if write:
            runs.append(1)
        return await run(work, write=write)
    db.run = counted  # type: ignore[method-assign]
    return runs


async def test_a_page_is_handled_in_one_transaction(db: ReadModelDatabase) -> None:
    consumer = Consumer("effects", db, record_effect, backoff=FAST)
    await consumer.setup()
    log: list[str] = []
    runs = _counting(db)
    page = _page(log, *((s, n) for n in range(1, 21) for s in "ab"))
    assert await consumer.consume_batch(page) == 40
    assert len(runs) == 1  # inbox rows and effects of all forty in one commit
    assert len(log) == 40
    assert await db.run(count_effects, write=False) == (40, 40)
    assert consumer.outcomes[HANDLED] == 40


async def test_a_pages_inbox_rows_are_one_statement_that_says_which_are_new(
    db: ReadModelDatabase
) -> None:
    from sqlalchemy import event

    await Consumer("effects", db, record_effect, backoff=FAST).setup()
    await db.run(lambda conn: inbox.record(conn, "effects", "m-2"))

    def record(conn: Connection) -> tuple[set[str], int]:
        inserts: list[str] = []

        def seen(*args: object) -> None:
            inserts.append(str(args[2]))  # the statement
        event.listen(conn, "before_cursor_execute", seen)
        try:
            new = inbox.record_many(conn, "effects", ["m-1", "m-2", "m-3", "m-1"])
        finally:
            event.remove(conn, "before_cursor_execute", seen)
        return new, sum("invariant_inbox" in statement for statement in inserts)
    new, statements = await db.run(record)
    assert new == {"m-1", "m-3"}  # m-2 was recorded before; m-1 once
    assert statements == 1
    assert await db.run(lambda conn: inbox.seen(conn, "effects", "m-3"), write=False)
    assert await db.run(lambda conn: inbox.record_many(conn, "effects", ["m-1", "m-3"])
                        ) == set()


async def test_a_poison_message_in_the_middle_of_a_page_is_parked_alone(
    db: ReadModelDatabase
) -> None:
    def handler(conn: Connection, message: Message) -> None:
        record_effect(conn, message)  # rolled back with the page, then with its own try
        if message.data["n"] == 3:
            raise ValueError("poison")

    consumer = Consumer("effects", db, handler, backoff=FAST)
    await consumer.setup()
    log: list[str] = []
    page = _page(log, *(("s", n) for n in range(1, 6)))
    assert await consumer.consume_batch(page) == 4
    assert await db.run(count_effects, write=False) == (4, 4)
    effects_of = await db.run(lambda conn: sorted(
        conn.execute(select(effects.c.position)).scalars()), write=False)
    assert effects_of == [1, 2, 4, 5]
    (letter,) = await db.run(deadletters.list_parked, write=False)
    assert letter.message.data == {"n": 3} and letter.attempts == FAST.attempts
    assert consumer.outcomes == {HANDLED: 4, DUPLICATE: 0, PARKED: 1, SKIPPED: 0}
    assert len(log) == 5  # all acknowledged, the parked one too
    again = [_Delivery(d.message, log) for d in page]  # the page redelivered
    assert await consumer.consume_batch(again) == 0
    assert await db.run(count_effects, write=False) == (4, 4)
    assert len(await db.run(deadletters.list_parked, write=False)) == 1


async def test_a_message_twice_in_a_page_and_again_in_the_next_is_applied_once(
    db: ReadModelDatabase
) -> None:
    consumer = Consumer("effects", db, record_effect, backoff=FAST)
    await consumer.setup()
    log: list[str] = []
    first, second = _page(log, ("s", 1), ("s", 2))
    twice = [first, second, _Delivery(first.message, log)]
    assert await consumer.consume_batch(twice) == 2
    assert consumer.outcomes[DUPLICATE] == 1
    (third,) = _page(log, ("s", 3))
    assert await consumer.consume_batch([_Delivery(second.message, log), third,
                                         _Delivery(first.message, log)]) == 1
    assert await db.run(count_effects, write=False) == (3, 3)
    assert consumer.outcomes == {HANDLED: 3, DUPLICATE: 3, PARKED: 0, SKIPPED: 0}
    assert len(log) == 6


async def test_a_crash_between_the_commit_and_the_acks_redelivers_duplicates(
    db: ReadModelDatabase
) -> None:
    consumer = Consumer("effects", db, record_effect, backoff=FAST)
    await consumer.setup()
    log: list[str] = []
    page = [_Dying(d.message, log) for d in _page(log, ("a", 1), ("b", 1), ("a", 2))]
    with pytest.raises(_Crash):
        await consumer.consume_batch(page)
    assert await db.run(count_effects, write=False) == (3, 3)  # committed, not acknowledged
    restarted = Consumer("effects", db, record_effect, backoff=FAST)
    redelivered = [_Delivery(d.message, log) for d in page]
    assert await restarted.consume_batch(redelivered) == 0
    assert restarted.outcomes[DUPLICATE] == 3
    assert await db.run(count_effects, write=False) == (3, 3)
    assert len(log) == 3


async def test_a_failing_commit_of_a_page_lands_each_message_alone(
    db: ReadModelDatabase
) -> None:
    """The page's transaction fails after its handlers ran (as a commit can): every
    message is handled again in a transaction of its own, each once."""
    consumer = Consumer("effects", db, record_effect, backoff=FAST)
    await consumer.setup()
    run = db.run
    failed: list[int] = []

    async def fail_first(work, *, write=True):  # type: ignore[no-untyped-def]
        if write and not failed:
            failed.append(1)

            def then_fail(conn: Connection) -> None:
                work(conn)
                raise RuntimeError("commit failed")
            return await run(then_fail, write=write)
        return await run(work, write=write)
    db.run = fail_first  # type: ignore[method-assign]
    log: list[str] = []
    assert await consumer.consume_batch(_page(log, ("a", 1), ("b", 1), ("a", 2))) == 3
    assert await db.run(count_effects, write=False) == (3, 3)
    assert consumer.outcomes[HANDLED] == 3 and len(log) == 3

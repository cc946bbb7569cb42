"""The contract every :class:`~invariant.store.EventStorage` adapter must keep.

Reuse it for your own adapter::

    class TestMyStorage(EventStorageContract):
        @pytest.fixture
        def storage_factory(self, tmp_path):
            return lambda clock: MyStorage(tmp_path / "db", clock=clock)

The suite sets the storage up, hands it a :class:`ManualClock`, and closes it afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, timedelta
from typing import Any

import orjson
import pytest

from invariant.domain.errors import (
    ConcurrencyError,
    DuplicateCommandError,
    DuplicateEventError,
    ValidationError,
)
from invariant.store.port import EventStorage, SnapshotTailReader
from invariant.store.records import (
    AppendRequest,
    CommandRecord,
    Commit,
    ExpectedVersion,
    NewEvent,
    OutboxMessage,
    SnapshotRecord,
    SnapshotTail,
    StreamState,
)
from invariant.testing.clock import ManualClock

StorageFactory = Callable[[ManualClock], EventStorage]


def new_event(n: int = 0, event_type: str = "Happened", **data: Any) -> NewEvent:
    return NewEvent(uuid.uuid4(), event_type, 1, {"n": n, **data}, {"correlation_id": "c-1"})


def append(stream: str, expected: ExpectedVersion, *events: NewEvent) -> Commit:
    return Commit(appends=(AppendRequest(stream, expected, events),))


async def follow_log(storage: EventStorage, done: asyncio.Event, *, page: int,
                     idle: float = 0.0) -> list[int]:
    """Positions a follower of the global log sees until ``done`` is set and it caught up.

    ``done`` is read *before* each read: a page read after the writers finished is then
    always looked at, so the last events are never missed by the follower itself.
    """
    seen: list[int] = []
    position = 0
    while True:
        finished = done.is_set()
        batch = await storage.read_all(after_position=position, limit=page)
        seen.extend(e.position for e in batch)
        if batch:
            position = batch[-1].position
        elif finished:
            return seen
        else:
            await asyncio.sleep(idle)


class EventStorageContract:
    """Subclass in a test module and provide the ``storage_factory`` fixture."""

    @pytest.fixture
    def storage_factory(self) -> StorageFactory:
        raise NotImplementedError("provide a storage_factory fixture: clock -> EventStorage")

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock()

    @pytest.fixture
    async def storage(
        self, storage_factory: StorageFactory, clock: ManualClock
    ) -> AsyncIterator[EventStorage]:
        storage = storage_factory(clock)
        await storage.setup()
        await storage.setup()  # setting up twice is harmless
        try:
            yield storage
        finally:
            await storage.close()

    # -- appending -------------------------------------------------------------------------

    async def test_append_to_a_new_stream_returns_versions_and_positions(
        self, storage: EventStorage
    ) -> None:
        result = await storage.commit(
            append("order-1", StreamState.NO_STREAM, new_event(1), new_event(2))
        )
        assert result.version_of("order-1") == 2
        assert result.streams[0].first_position == 1
        assert result.position == 2
        assert await storage.stream_version("order-1") == 2
        assert await storage.stream_version("order-404") == 0

    async def test_exact_expected_version_appends_after_it(self, storage: EventStorage) -> None:
        await storage.commit(append("order-1", 0, new_event(1)))
        result = await storage.commit(append("order-1", 1, new_event(2), new_event(3)))
        assert result.version_of("order-1") == 3
        versions = [e.stream_version for e in await storage.read_stream("order-1")]
        assert versions == [1, 2, 3]

    async def test_wrong_expected_version_names_stream_expected_and_actual(
        self, storage: EventStorage
    ) -> None:
        await storage.commit(append("order-1", StreamState.NO_STREAM, new_event(1)))
        with pytest.raises(ConcurrencyError) as caught:
            await storage.commit(append("order-1", 5, new_event(2)))
        assert (caught.value.stream_id, caught.value.expected, caught.value.actual) == (
            "order-1", 5, 1,
        )
        assert "order-1" in str(caught.value) and "5" in str(caught.value)
        assert await storage.stream_version("order-1") == 1

    async def test_no_stream_expectation_fails_on_an_existing_stream(
        self, storage: EventStorage
    ) -> None:
        await storage.commit(append("order-1", StreamState.NO_STREAM, new_event(1)))
        with pytest.raises(ConcurrencyError) as caught:
            await storage.commit(append("order-1", StreamState.NO_STREAM, new_event(2)))
        assert (caught.value.expected, caught.value.actual) == (0, 1)  # NO_STREAM is version 0
        assert "expected version 0 (no stream yet), actual version 1" in str(caught.value)

    async def test_expecting_an_existing_version_of_a_missing_stream_fails(
        self, storage: EventStorage
    ) -> None:
        with pytest.raises(ConcurrencyError) as caught:
            await storage.commit(append("order-9", 3, new_event(1)))
        assert caught.value.actual == 0
        assert await storage.read_stream("order-9") == []

    async def test_any_appends_whatever_the_version(self, storage: EventStorage) -> None:
        await storage.commit(append("order-1", StreamState.ANY, new_event(1)))
        result = await storage.commit(append("order-1", StreamState.ANY, new_event(2)))
        assert result.version_of("order-1") == 2

    async def test_several_events_are_appended_atomically(self, storage: EventStorage) -> None:
        stored = new_event(0)
        await storage.commit(append("order-1", StreamState.NO_STREAM, stored))
        fresh = new_event(1)
        duplicate = NewEvent(stored.event_id, "Happened", 1, {"n": 2})
        with pytest.raises(DuplicateEventError) as caught:
            await storage.commit(append("order-2", StreamState.NO_STREAM, fresh, duplicate))
        assert str(stored.event_id) in str(caught.value)
        assert await storage.read_stream("order-2") == []
        assert await storage.head_position() == 1

    async def test_a_commit_over_several_streams_is_all_or_nothing(
        self, storage: EventStorage
    ) -> None:
        await storage.commit(append("order-2", StreamState.NO_STREAM, new_event(0)))
        commit = Commit(appends=(
            AppendRequest("order-1", StreamState.NO_STREAM, (new_event(1),)),
            AppendRequest("order-2", StreamState.NO_STREAM, (new_event(2),)),
        ))
        with pytest.raises(ConcurrencyError):
            await storage.commit(commit)
        assert await storage.stream_version("order-1") == 0
        assert len(await storage.read_outbox(limit=100)) == 1

    async def test_a_commit_over_several_streams_writes_them_all(
        self, storage: EventStorage
    ) -> None:
        commit = Commit(appends=(
            AppendRequest("order-1", StreamState.NO_STREAM, (new_event(1),)),
            AppendRequest("invoice-1", StreamState.NO_STREAM, (new_event(2), new_event(3))),
        ))
        result = await storage.commit(commit)
        assert result.version_of("order-1") == 1
        assert result.version_of("invoice-1") == 2
        assert [e.stream_id for e in await storage.read_all()] == [
            "order-1", "invoice-1", "invoice-1",
        ]

    @pytest.mark.parametrize(
        ("stream", "expected", "events", "field"),
        [
            ("", 0, 1, "stream_id"),
            ("order-1", -1, 1, "expected_version"),
            ("order-1", True, 1, "expected_version"),
            ("order-1", 0, 0, "events"),
        ],
    )
    async def test_malformed_appends_are_refused_before_writing(
        self, storage: EventStorage, stream: str, expected: Any, events: int, field: str
    ) -> None:
        with pytest.raises(ValidationError) as caught:
            await storage.commit(append(stream, expected, *[new_event(i) for i in range(events)]))
        assert caught.value.errors[0].field == field
        assert await storage.head_position() == 0

    # -- reading ---------------------------------------------------------------------------

    async def test_recorded_events_carry_the_whole_envelope(
        self, storage: EventStorage, clock: ManualClock
    ) -> None:
        event = NewEvent(uuid.uuid4(), "OrderPlaced", 3, {"total": "9.99", "items": [1, 2]},
                         {"correlation_id": "corr", "causation_id": "cause", "actor": "ann"})
        await storage.commit(append("order-7", StreamState.NO_STREAM, event))
        [recorded] = await storage.read_stream("order-7")
        assert recorded.event_id == event.event_id
        assert (recorded.stream_id, recorded.stream_version, recorded.position) == ("order-7", 1, 1)
        assert (recorded.event_type, recorded.schema_version) == ("OrderPlaced", 3)
        assert recorded.data == {"total": "9.99", "items": [1, 2]}
        assert recorded.metadata == event.metadata
        assert recorded.recorded_at == clock.now
        assert recorded.recorded_at.utcoffset() == timedelta(0)
        assert recorded.category == "order"

    async def test_returned_data_cannot_change_what_is_stored(self, storage: EventStorage) -> None:
        await storage.commit(append("order-1", StreamState.NO_STREAM, new_event(1)))
        [first] = await storage.read_stream("order-1")
        first.data["n"] = 99
        [again] = await storage.read_stream("order-1")
        assert again.data["n"] == 1

    async def test_streams_read_forwards_backwards_and_in_ranges(
        self, storage: EventStorage
    ) -> None:
        await storage.commit(append("s-1", 0, *[new_event(i) for i in range(1, 11)]))
        def ns(events: list[Any]) -> list[int]:
            return [e.data["n"] for e in events]

        assert ns(await storage.read_stream("s-1")) == list(range(1, 11))
        assert ns(await storage.read_stream("s-1", from_version=8)) == [8, 9, 10]
        assert ns(await storage.read_stream("s-1", from_version=3, to_version=5)) == [3, 4, 5]
        assert ns(await storage.read_stream("s-1", limit=2)) == [1, 2]
        assert ns(await storage.read_stream("s-1", backwards=True, limit=3)) == [10, 9, 8]
        assert ns(await storage.read_stream("s-1", backwards=True, to_version=4)) == [4, 3, 2, 1]
        assert ns(await storage.read_stream("s-1", backwards=True, from_version=9)) == [10, 9]
        assert await storage.read_stream("s-2") == []

    async def test_stream_data_for_loading_aggregates(self, storage: EventStorage) -> None:
        await storage.commit(append("s-1", 0, *[new_event(i) for i in range(1, 6)]))
        rows = [(t, v, d if isinstance(d, dict) else orjson.loads(d))
                for t, v, d in await storage.read_stream_data("s-1", after_version=2)]
        assert rows == [("Happened", 1, {"n": 3}), ("Happened", 1, {"n": 4}),
                        ("Happened", 1, {"n": 5})]
        assert len(await storage.read_stream_data("s-1", to_version=2)) == 2
        between = await storage.read_stream_data("s-1", after_version=1, to_version=3)
        assert [d if isinstance(d, dict) else orjson.loads(d) for _, _, d in between] == [
            {"n": 2}, {"n": 3}]
        assert await storage.read_stream_data("s-404") == []

    async def test_long_streams_are_read_completely(self, storage: EventStorage) -> None:
        events = [new_event(i) for i in range(1, 4502)]
        for start in range(0, len(events), 500):
            await storage.commit(append("long-1", start, *events[start:start + 500]))
        assert len(await storage.read_stream("long-1")) == 4501
        assert len(await storage.read_stream_data("long-1")) == 4501
        backwards = await storage.read_stream("long-1", backwards=True)
        assert [e.stream_version for e in backwards[:2]] == [4501, 4500]
        assert len(backwards) == 4501

    async def test_the_global_log_reads_in_position_order_in_batches(
        self, storage: EventStorage
    ) -> None:
        for i in range(7):
            await storage.commit(append(f"s{i % 3}-x", StreamState.ANY, new_event(i)))
        first = await storage.read_all(limit=3)
        rest = await storage.read_all(after_position=first[-1].position, limit=10)
        positions = [e.position for e in first + rest]
        assert positions == sorted(positions) and len(set(positions)) == 7
        assert [e.data["n"] for e in first + rest] == list(range(7))
        assert await storage.read_all(after_position=positions[-1]) == []
        assert await storage.head_position() == positions[-1]

    async def test_the_global_log_filters_by_category_and_event_type(
        self, storage: EventStorage
    ) -> None:
        await storage.commit(append("order-1", 0, new_event(1, "OrderPlaced")))
        await storage.commit(append("invoice-1", 0, new_event(2, "InvoiceSent")))
        await storage.commit(append("order-2", 0, new_event(3, "OrderPlaced")))
        await storage.commit(append("order-1", 1, new_event(4, "OrderShipped")))
        orders = await storage.read_all(category="order")
        assert [e.data["n"] for e in orders] == [1, 3, 4]
        placed = await storage.read_all(event_types=["OrderPlaced", "InvoiceSent"])
        assert [e.data["n"] for e in placed] == [1, 2, 3]
        both = await storage.read_all(category="order", event_types=["OrderShipped"])
        assert [e.data["n"] for e in both] == [4]
        assert await storage.read_all(event_types=[]) == []

    async def test_streams_read_by_recorded_time(
        self, storage: EventStorage, clock: ManualClock
    ) -> None:
        start = clock.now
        for i in range(4):
            await storage.commit(append("acct-1", StreamState.ANY, new_event(i)))
            clock.advance(minutes=10)
        middle = start + timedelta(minutes=15)
        until = await storage.read_stream("acct-1", recorded_until=middle)
        assert [e.data["n"] for e in until] == [0, 1]
        between = await storage.read_stream(
            "acct-1", recorded_from=start + timedelta(minutes=10),
            recorded_until=start + timedelta(minutes=20),
        )
        assert [e.data["n"] for e in between] == [1, 2]
        naive_free = await storage.read_stream(
            "acct-1", recorded_from=(start + timedelta(minutes=30)).astimezone(UTC)
        )
        assert [e.data["n"] for e in naive_free] == [3]

    # -- snapshots and outbox --------------------------------------------------------------

    async def test_snapshots_are_written_with_the_commit_and_replaced(
        self, storage: EventStorage
    ) -> None:
        assert await storage.read_snapshot("acct-1") is None
        snap = SnapshotRecord("acct-1", "Account", 1, 1, {"balance": "1.00"})
        await storage.commit(Commit(appends=(AppendRequest("acct-1", 0, (new_event(1),)),),
                                    snapshots=(snap,)))
        stored = await storage.read_snapshot("acct-1")
        assert stored is not None
        assert (stored.version, stored.schema_version, stored.state) == (1, 1, {"balance": "1.00"})
        newer = SnapshotRecord("acct-1", "Account", 2, 2, {"balance": "2.00"})
        await storage.commit(Commit(appends=(AppendRequest("acct-1", 1, (new_event(2),)),),
                                    snapshots=(newer,)))
        stored = await storage.read_snapshot("acct-1")
        assert stored is not None and (stored.version, stored.schema_version) == (2, 2)

    async def test_a_snapshot_and_the_events_after_it_are_read_together(
        self, storage: EventStorage
    ) -> None:
        if not isinstance(storage, SnapshotTailReader):
            pytest.skip("this adapter does not read snapshot tails (SnapshotTailReader)")

        def decoded(tail: SnapshotTail) -> list[tuple[str, int, Any]]:
            return [(t, v, d if isinstance(d, dict) else orjson.loads(d)) for t, v, d in tail.rows]

        assert await storage.read_snapshot_tail("acct-404") == SnapshotTail(None, [])
        await storage.commit(append("acct-1", 0, *[new_event(i) for i in range(1, 4)]))
        tail = await storage.read_snapshot_tail("acct-1")  # no snapshot: every event
        assert tail.snapshot is None
        assert decoded(tail) == [("Happened", 1, {"n": i}) for i in range(1, 4)]
        snap = SnapshotRecord("acct-1", "Account", 5, 2, {"balance": "5.00"})
        await storage.commit(Commit(appends=(AppendRequest(
            "acct-1", 3, (new_event(4), new_event(5, "Other"))),), snapshots=(snap,)))
        tail = await storage.read_snapshot_tail("acct-1")  # the snapshot is the last version
        assert tail.snapshot == await storage.read_snapshot("acct-1")
        assert tail.snapshot is not None
        assert (tail.snapshot.stream_id, tail.snapshot.aggregate_type, tail.snapshot.version,
                tail.snapshot.schema_version, tail.snapshot.state) == (
            "acct-1", "Account", 5, 2, {"balance": "5.00"})
        assert tail.rows == []
        await storage.commit(append("acct-1", 5, *[new_event(i) for i in range(6, 9)]))
        await storage.commit(append("acct-2", 0, new_event(99)))  # another stream: not read
        tail = await storage.read_snapshot_tail("acct-1")
        assert tail.snapshot is not None and tail.snapshot.version == 5
        assert decoded(tail) == [("Happened", 1, {"n": i}) for i in range(6, 9)]

    async def test_a_refused_commit_writes_no_snapshot(self, storage: EventStorage) -> None:
        snap = SnapshotRecord("acct-1", "Account", 5, 1, {"balance": "1.00"})
        with pytest.raises(ConcurrencyError):
            await storage.commit(Commit(appends=(AppendRequest("acct-1", 4, (new_event(1),)),),
                                        snapshots=(snap,)))
        assert await storage.read_snapshot("acct-1") is None

    async def test_every_event_gets_an_outbox_row_in_its_commit(
        self, storage: EventStorage
    ) -> None:
        events = [new_event(i) for i in range(3)]
        message = OutboxMessage(uuid.uuid4(), "order.placed", 1, {"order_id": "o-1"},
                                {"source": "ordering"}, "order-1")
        await storage.commit(Commit(appends=(AppendRequest("order-1", 0, events),),
                                    messages=(message,)))
        rows = await storage.read_outbox(limit=10)
        assert [r.message_id for r in rows] == [e.event_id for e in events] + [message.message_id]
        assert [r.position for r in rows] == [1, 2, 3, None]
        assert rows[0].data == {"n": 0} and rows[0].metadata == {"correlation_id": "c-1"}
        assert rows[3].data == {"order_id": "o-1"} and rows[3].message_type == "order.placed"
        await storage.mark_published([rows[0].id, rows[3].id])
        pending = await storage.read_outbox(limit=10)
        assert [r.position for r in pending] == [2, 3]

    # -- command records -------------------------------------------------------------------

    async def test_a_command_record_is_written_with_its_commit(
        self, storage: EventStorage, clock: ManualClock
    ) -> None:
        command = CommandRecord(uuid.uuid4(), "Deposit", {"balance": "10.00"})
        commit = Commit(appends=(AppendRequest("acct-1", 0, (new_event(1), new_event(2))),),
                        command=command)
        result = await storage.commit(commit)
        stored = await storage.read_command(command.command_id)
        assert stored is not None
        assert (stored.command_type, stored.value) == ("Deposit", {"balance": "10.00"})
        assert (stored.position, stored.versions) == (result.position, {"acct-1": 2})
        assert stored.recorded_at == clock.now
        assert await storage.read_command(uuid.uuid4()) is None

    async def test_a_command_id_is_handled_once(self, storage: EventStorage) -> None:
        command = CommandRecord(uuid.uuid4(), "Deposit", None)
        await storage.commit(Commit(appends=(AppendRequest("acct-1", 0, (new_event(1),)),),
                                    command=command))
        again = Commit(appends=(AppendRequest("acct-1", StreamState.ANY, (new_event(2),)),),
                       command=command)
        with pytest.raises(DuplicateCommandError, match=str(command.command_id)):
            await storage.commit(again)
        assert await storage.stream_version("acct-1") == 1

    async def test_a_refused_commit_records_no_command(self, storage: EventStorage) -> None:
        command = CommandRecord(uuid.uuid4(), "Deposit", None)
        with pytest.raises(ConcurrencyError):
            await storage.commit(Commit(appends=(AppendRequest("acct-1", 3, (new_event(1),)),),
                                        command=command))
        assert await storage.read_command(command.command_id) is None

    async def test_racing_duplicates_of_one_command_commit_once(
        self, storage: EventStorage
    ) -> None:
        command = CommandRecord(uuid.uuid4(), "Deposit", None)

        async def send(i: int) -> bool:
            try:
                await storage.commit(Commit(
                    appends=(AppendRequest(f"acct-{i}", 0, (new_event(i),)),), command=command,
                ))
                return True
            except DuplicateCommandError:
                return False

        outcomes = await asyncio.gather(*[send(i) for i in range(8)])
        assert outcomes.count(True) == 1
        assert len(await storage.read_all(limit=100)) == 1

    # -- concurrency -----------------------------------------------------------------------

    async def test_concurrent_writers_on_one_version_exactly_one_wins(
        self, storage: EventStorage
    ) -> None:
        await storage.commit(append("hot-1", 0, new_event(0)))

        async def write(i: int) -> bool:
            try:
                await storage.commit(append("hot-1", 1, new_event(i)))
                return True
            except ConcurrencyError:
                return False

        outcomes = await asyncio.gather(*[write(i) for i in range(20)])
        assert outcomes.count(True) == 1
        assert [e.stream_version for e in await storage.read_stream("hot-1")] == [1, 2]
        assert len(await storage.read_outbox(limit=100)) == 2

    async def test_concurrent_any_appends_all_land_with_contiguous_versions(
        self, storage: EventStorage
    ) -> None:
        await asyncio.gather(
            *[storage.commit(append("hot-1", StreamState.ANY, new_event(i))) for i in range(30)]
        )
        events = await storage.read_stream("hot-1")
        assert [e.stream_version for e in events] == list(range(1, 31))
        assert sorted(e.data["n"] for e in events) == list(range(30))

    async def test_a_follower_sees_every_event_once_in_order_under_concurrent_writers(
        self, storage: EventStorage
    ) -> None:
        writers, per_writer = 8, 25
        done = asyncio.Event()

        async def write(w: int) -> None:
            for i in range(per_writer):
                await storage.commit(
                    append(f"w{w}-1", StreamState.ANY, new_event(i), new_event(i))
                )

        follower = asyncio.create_task(follow_log(storage, done, page=7))
        await asyncio.gather(*[write(w) for w in range(writers)])
        done.set()
        seen = await follower
        committed = [e.position for e in await storage.read_all(limit=10_000)]
        assert len(committed) == writers * per_writer * 2
        assert seen == committed

    async def test_a_waiting_follower_is_woken_by_a_commit_and_otherwise_times_out(
        self, storage: EventStorage
    ) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await storage.wait_for_commit(0, 0.05)
        assert loop.time() - started >= 0.04  # nothing committed: waited the whole timeout

        waiting = asyncio.create_task(storage.wait_for_commit(0, 30))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        started = loop.time()
        await storage.commit(append("woken-1", StreamState.NO_STREAM, new_event()))
        async with asyncio.timeout(3):
            await waiting
        assert loop.time() - started < 1  # woken by the commit, not by a periodic re-check

        started = loop.time()
        await storage.wait_for_commit(0, 30)  # already past: returns at once
        assert loop.time() - started < 1

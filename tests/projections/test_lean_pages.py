"""Pages read lean (no event ids, stream versions, metadata or recorded times) and ahead,
and what happens when a handler needs more: exactly once all the same."""

from __future__ import annotations

import gc
import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import BigInteger, Column, Connection, Integer, MetaData, String, Table, select

from invariant.clock import to_micros
from invariant.domain import ProjectionFailedError
from invariant.projections import (
    InMemoryCache,
    Projection,
    ProjectionRunner,
    ReadModelDatabase,
    SQLiteReadModels,
)
from invariant.projections.collector import CollectorPause
from invariant.store import (
    AppendRequest,
    Commit,
    EventEnvelope,
    EventRegistry,
    EventStore,
    NewEvent,
    Upcasters,
)
from tests.projections.conftest import Bank, open_bank


class Movements(Projection):
    """One row per event, counting its applications; records the recorded time of events at
    ``timed`` positions only (so a page needs the details only from there on)."""

    name = "movements"
    event_types = ("AccountOpened", "MoneyDeposited", "MoneyWithdrawn")

    def __init__(self, timed: Iterable[int] = (), *, tags: bool = False) -> None:
        super().__init__()
        self.timed = set(timed)
        self.tags = tags
        self.seen: list[tuple[int, bool]] = []

    def define(self, metadata: MetaData) -> None:
        self.rows = Table(
            self.table_name("rows"), metadata,
            Column("position", BigInteger, primary_key=True, autoincrement=False),
            Column("stream_id", String(64), nullable=False),
            Column("times", Integer, nullable=False),
            Column("recorded_at", BigInteger),
        )

    def apply_batch(self, envelopes: Sequence[EventEnvelope], conn: Connection) -> None:
        t = self.rows
        for e in envelopes:
            self.seen.append((e.position, e.has_details))
            when = self.recorded_at(e) if e.position in self.timed else None
            row = conn.execute(select(t.c.times).where(t.c.position == e.position)).first()
            if row is None:
                conn.execute(t.insert().values(position=e.position, stream_id=e.stream_id,
                                               times=1, recorded_at=when))
            else:
                conn.execute(t.update().where(t.c.position == e.position)
                             .values(times=row.times + 1))

    def recorded_at(self, envelope: EventEnvelope) -> int | None:
        return to_micros(envelope.recorded_at)

    def cache_tags(self, envelope: EventEnvelope) -> Iterable[str]:
        if self.tags:
            return (f"by:{envelope.correlation_id}",)
        return (f"stream:{envelope.stream_id}",)


async def rows(bank: Bank, projection: Movements) -> dict[int, tuple[str, int, int | None]]:
    def read(conn: Connection) -> dict[int, tuple[str, int, int | None]]:
        return {r.position: (r.stream_id, r.times, r.recorded_at)
                for r in conn.execute(select(projection.rows))}

    return await bank.database.run(read, write=False)


class Openings(Movements):
    """Movements of one stored type: its lean pages come from ``read_type_log``."""

    name = "openings"
    event_types = ("AccountOpened",)


@pytest.mark.parametrize("kind", [Movements, Openings])
async def test_a_handler_that_needs_details_gets_its_page_again_with_them_once(
    bank: Bank, kind: type[Movements],
) -> None:
    for i in range(7):
        await bank.open(f"ACC-{i}", "10")
    # Page 1 (positions 1-3) is lean; position 5, mid-page 2, asks for its recorded time.
    projection = kind(timed={5})
    runner = bank.runner([projection], page_size=3)
    await runner.setup()

    assert await runner.catch_up() == 7

    stored = await rows(bank, projection)
    assert {p: times for p, (_, times, _) in stored.items()} == {p: 1 for p in range(1, 8)}
    records = {r.position: r for r in await bank.storage.read_all()}
    assert stored[5] == (records[5].stream_id, 1, to_micros(records[5].recorded_at))
    assert [s for p, (s, _, _) in stored.items()] == [records[p].stream_id for p in stored]
    # lean until position 5 failed its page (4 was rolled back with it), full from there on
    assert projection.seen == [(1, False), (2, False), (3, False), (4, False), (5, False),
                               (4, True), (5, True), (6, True), (7, True)]
    [status] = await runner.status()
    assert (status.checkpoint, status.state, status.error) == (7, "running", None)


async def test_cache_tags_that_need_details_get_them_after_a_lean_page(bank: Bank) -> None:
    await bank.seed_scenario()
    cache = InMemoryCache()
    projection = Movements(tags=True)
    runner = bank.runner([projection], page_size=2, cache=cache)
    await runner.setup()
    invalidated: list[str] = []
    original = cache.invalidate

    async def spy(tags: Iterable[str]) -> None:
        invalidated.extend(tags)
        await original(tags)

    cache.invalidate = spy  # type: ignore[method-assign]

    await runner.catch_up()

    correlations = {r.metadata.get("correlation_id") for r in await bank.storage.read_all()}
    assert set(invalidated) == {f"by:{c}" for c in correlations}
    assert {times for _, times, _ in (await rows(bank, projection)).values()} == {1}


class Broken(Projection):
    name = "positions"
    event_types: tuple[str, ...] = ("MoneyDeposited", "AccountOpened")

    def define(self, metadata: MetaData) -> None:
        self.rows = Table(self.table_name("rows"), metadata,
                          Column("position", BigInteger, primary_key=True,
                                 autoincrement=False))

    def apply_batch(self, envelopes: Sequence[EventEnvelope], conn: Connection) -> None:
        conn.execute(self.rows.insert(), [{"position": e.position} for e in envelopes])


async def test_an_event_that_cannot_be_decoded_stops_the_projection_before_it(
    bank: Bank,
) -> None:
    for i in range(4):
        await bank.open(f"ACC-{i}", "10")
    # Position 5 is a deposit whose data lacks its amount: it is in the page read ahead.
    await bank.storage.commit(Commit(appends=(AppendRequest("account-ACC-0", 1, (
        NewEvent(uuid.uuid4(), "MoneyDeposited", 2, {"nothing": 1}, {}),)),)))
    await bank.open("ACC-9", "10")
    await _stops_before(bank, Broken(), 2, at=5, checkpoint=4, applied=[1, 2, 3, 4])


async def _stops_before(bank: Bank, projection: Broken, page_size: int, *, at: int,
                        checkpoint: int, applied: list[int]) -> None:
    """Catching ``projection`` up fails at ``at`` (its data lacks a field), leaving it
    failed at ``checkpoint`` with the events at ``applied`` applied."""
    runner = bank.runner([projection], page_size=page_size)
    await runner.setup()

    with pytest.raises(ProjectionFailedError, match=f"stopped at event {at}"):
        await runner.catch_up()

    [status] = await runner.status()
    assert (status.state, status.checkpoint, status.error_position) == (
        "failed", checkpoint, at)
    assert "lacks" in (status.error or "")

    def read(conn: Connection) -> list[int]:
        return sorted(r.position for r in conn.execute(select(projection.rows)))

    assert await bank.database.run(read, write=False) == applied


class BrokenDeposits(Broken):
    """Broken, of one stored type: its lean pages come from ``read_type_log``."""

    event_types = ("MoneyDeposited",)


async def test_an_undecodable_event_stops_a_projection_of_one_type_before_it(
    bank: Bank,
) -> None:
    await bank.open("ACC-0", "10")
    for amount in ("1", "2"):
        await bank.deposit("ACC-0", amount)
    await bank.storage.commit(Commit(appends=(AppendRequest("account-ACC-0", 3, (
        NewEvent(uuid.uuid4(), "MoneyDeposited", 2, {"nothing": 1}, {}),)),)))
    await bank.open("ACC-1", "10")
    await bank.deposit("ACC-1", "3")
    # Deposits at 2, 3, the bad one at 4, one more at 6: the bad one is in a page of one
    # schema version, and is found when the page is decoded row by row.
    await _stops_before(bank, BrokenDeposits(), 10, at=4, checkpoint=3, applied=[2, 3])


async def test_a_projection_of_one_type_reads_pages_without_the_type_column(
    bank: Bank,
) -> None:
    # The bank upcasts MoneyDeposited v1 without renaming it: a projection of
    # AccountOpened is still a projection of one stored type.
    await bank.seed_scenario()
    storage: Any = bank.storage
    asked: list[str] = []
    original = storage.read_type_log

    async def spy(event_type: str, **query: Any) -> Any:
        asked.append(event_type)
        return await original(event_type, **query)

    storage.read_type_log = spy
    projection = Openings()
    runner = bank.runner([projection], page_size=1)
    await runner.setup()

    assert await runner.catch_up() == 2
    assert set(asked) == {"AccountOpened"} and len(asked) >= 2
    assert {times for _, times, _ in (await rows(bank, projection)).values()} == {1}


class Closings(Movements):
    name = "closings"
    event_types = ("Closed",)


async def test_events_of_a_type_renamed_into_a_handled_one_are_applied_once(
    bank: Bank,
) -> None:
    from tests.store.test_event_batch import Closed

    upcasters = Upcasters()
    upcasters.register("Ended", 1, lambda d: {"reason": d["why"]}, rename_to="Closed")
    upcasters.register("Noise", 1)  # upcast, never renamed: not read for Closings
    await bank.storage.commit(Commit(appends=(AppendRequest("acct-1", 0, (
        NewEvent(uuid.uuid4(), "Ended", 1, {"why": "moved"}, {}),
        NewEvent(uuid.uuid4(), "Noise", 1, {}, {}),
        NewEvent(uuid.uuid4(), "Closed", 2, {"reason": "done"}, {}),
    )),)))
    store = EventStore(bank.storage, EventRegistry([Closed]), upcasters)
    projection = Closings()
    runner = ProjectionRunner(store, bank.database, [projection], page_size=2)
    await runner.setup()

    assert await runner.catch_up() == 2
    assert {p: times for p, (_, times, _) in (await rows(bank, projection)).items()} == {
        1: 1, 3: 1}


@pytest.mark.usefixtures("gc_state")
async def test_catching_up_pauses_the_garbage_collector_and_resumes_it(bank: Bank) -> None:
    await bank.seed_scenario()
    projection = Movements()
    states: list[bool] = []
    original = projection.apply_batch

    def spy(envelopes: Sequence[EventEnvelope], conn: Connection) -> None:
        states.append(gc.isenabled())
        original(envelopes, conn)

    projection.apply_batch = spy  # type: ignore[method-assign]
    runner = bank.runner([projection], page_size=2, pause_gc=True)
    await runner.setup()
    gc.enable()

    await runner.catch_up()

    assert states == [False, False, False] and gc.isenabled()
    gc.disable()  # an application that runs without it keeps it off
    await bank.deposit("ACC-001", "1")
    await runner.catch_up()
    assert states[-1] is False and not gc.isenabled()


@pytest.mark.usefixtures("gc_state")
def test_overlapping_pauses_resume_the_collector_only_when_the_last_ends() -> None:
    pause = CollectorPause()
    gc.enable()
    pause.__enter__()  # a catch-up
    pause.__enter__()  # another one, overlapping
    pause.__exit__(None, None, None)  # the first ends while the second still runs
    assert not gc.isenabled() and pause.paused
    pause.__exit__(None, None, None)
    assert gc.isenabled() and not pause.paused


@pytest.mark.usefixtures("gc_state")
async def test_catching_up_leaves_the_collector_alone_unless_asked_to_pause_it(
    bank: Bank,
) -> None:
    await bank.seed_scenario()
    projection = Movements()
    states: list[bool] = []
    original = projection.apply_batch

    def spy(envelopes: Sequence[EventEnvelope], conn: Connection) -> None:
        states.append(gc.isenabled())
        original(envelopes, conn)

    projection.apply_batch = spy  # type: ignore[method-assign]
    runner = bank.runner([projection], page_size=2)
    await runner.setup()
    gc.enable()

    await runner.catch_up()

    assert states == [True, True, True] and gc.isenabled()
    gc.disable()
    await bank.deposit("ACC-001", "1")
    await runner.catch_up()
    assert states[-1] is False and not gc.isenabled()


class Forgiving(Movements):
    """Movements whose handler catches every error asking for a recorded time, and stores
    none then: the runner must not let that lean page commit."""

    def recorded_at(self, envelope: EventEnvelope) -> int | None:
        try:
            return to_micros(envelope.recorded_at)
        except Exception:  # swallows DetailsNotLoaded
            return None


async def test_a_handler_that_swallows_the_missing_details_error_gets_its_page_again(
    bank: Bank,
) -> None:
    for i in range(5):
        await bank.open(f"ACC-{i}", "10")
    projection = Forgiving(timed={2})
    runner = bank.runner([projection], page_size=3)
    await runner.setup()

    assert await runner.catch_up() == 5

    stored = await rows(bank, projection)
    records = {r.position: r for r in await bank.storage.read_all()}
    assert stored[2] == (records[2].stream_id, 1, to_micros(records[2].recorded_at))
    assert {p: times for p, (_, times, _) in stored.items()} == {p: 1 for p in range(1, 6)}
    # the handler went on through the lean page; that page was rolled back and read again
    assert projection.seen == [(1, False), (2, False), (3, False), (1, True), (2, True),
                               (3, True), (4, True), (5, True)]


async def test_sqlite_read_models_can_run_their_transactions_in_a_thread(
    tmp_path: Path,
) -> None:
    async with open_bank("sqlite", tmp_path) as bank:
        await bank.seed_scenario()
        database = ReadModelDatabase.for_url(f"sqlite:///{tmp_path / 'bank.db'}",
                                             in_thread=True)
        assert isinstance(database, SQLiteReadModels) and database.in_thread
        try:
            here = threading.get_ident()
            assert await database.run(lambda conn: threading.get_ident()) != here
            assert await bank.database.run(lambda conn: threading.get_ident()) == here
            projection = Movements(timed={2})
            runner = ProjectionRunner(bank.store, database, [projection], page_size=2)
            await runner.setup()
            assert await runner.catch_up() == 5

            def read(conn: Connection) -> dict[int, int]:
                return {r.position: r.times for r in conn.execute(select(projection.rows))}

            assert await database.run(read, write=False) == {p: 1 for p in range(1, 6)}
        finally:
            await database.close()

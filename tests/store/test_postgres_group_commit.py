"""PostgreSQL group commit: concurrent appends share a round trip, each keeps its outcome."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from invariant.domain.errors import ConcurrencyError, DuplicateEventError
from invariant.store import NewEvent, StreamState
from invariant.store.postgres import PostgresStorage
from invariant.testing.event_storage_contract import append, new_event
from tests.conftest import POSTGRES_DSN

pytestmark = pytest.mark.postgres


@pytest.fixture
async def storage(pg_schema: str) -> AsyncIterator[PostgresStorage]:
    storage = PostgresStorage(POSTGRES_DSN, schema=pg_schema)
    await storage.setup()
    yield storage
    await storage.close()


async def test_concurrent_appends_are_sent_together(
    storage: PostgresStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    original = storage._commit_batch

    async def spy(batch: list[Any]) -> None:
        sizes.append(len(batch))
        await original(batch)

    monkeypatch.setattr(storage, "_commit_batch", spy)
    results = await asyncio.gather(*[
        storage.commit(append(f"s{i}-1", StreamState.NO_STREAM, new_event(i)))
        for i in range(50)
    ])
    # The first commit goes alone at once; the others queue behind it and go in batches.
    assert max(sizes) > 1 and sum(sizes) == 49
    assert len({r.position for r in results}) == 50
    assert len(await storage.read_all(limit=100)) == 50
    assert len(await storage.read_outbox(limit=100)) == 50


async def test_a_conflict_in_a_batch_is_refused_alone(storage: PostgresStorage) -> None:
    await storage.commit(append("taken-1", StreamState.NO_STREAM, new_event(0)))
    outcomes = await asyncio.gather(
        storage.commit(append("a-1", StreamState.NO_STREAM, new_event(1))),
        storage.commit(append("taken-1", StreamState.NO_STREAM, new_event(2))),
        storage.commit(append("b-1", StreamState.NO_STREAM, new_event(3))),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], ConcurrencyError)
    assert (outcomes[1].expected, outcomes[1].actual) == (0, 1)
    assert sorted(e.stream_id for e in await storage.read_all()) == ["a-1", "b-1", "taken-1"]


async def test_a_duplicate_event_id_in_a_batch_falls_back_to_single_commits(
    storage: PostgresStorage,
) -> None:
    stored = new_event(0)
    await storage.commit(append("x-1", StreamState.NO_STREAM, stored))
    clash = NewEvent(stored.event_id, "Happened", 1, {"n": 9})
    fresh = [NewEvent(uuid.uuid4(), "Happened", 1, {"n": i}) for i in range(2)]
    outcomes = await asyncio.gather(
        storage.commit(append("a-1", StreamState.NO_STREAM, fresh[0])),
        storage.commit(append("b-1", StreamState.NO_STREAM, fresh[1], clash)),
        storage.commit(append("c-1", StreamState.NO_STREAM, new_event(3))),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], DuplicateEventError)
    assert not isinstance(outcomes[0], BaseException)
    assert not isinstance(outcomes[2], BaseException)
    assert await storage.read_stream("b-1") == []
    assert sorted(e.stream_id for e in await storage.read_all()) == ["a-1", "c-1", "x-1"]


async def test_two_appends_to_one_stream_in_a_batch_see_each_other(
    storage: PostgresStorage,
) -> None:
    outcomes = await asyncio.gather(
        storage.commit(append("s-1", 0, new_event(1))),
        storage.commit(append("s-1", 0, new_event(2))),
        return_exceptions=True,
    )
    assert sum(isinstance(o, ConcurrencyError) for o in outcomes) == 1
    assert [e.stream_version for e in await storage.read_stream("s-1")] == [1]


async def test_a_failing_batch_fails_its_commits_instead_of_stranding_them(
    storage: PostgresStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    from invariant.domain.errors import StoreError

    async def broken(batch: list[Any]) -> None:
        raise RuntimeError("simulated bug in the batcher")

    monkeypatch.setattr(storage, "_commit_batch", broken)
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, _context: None)
    outcomes = await asyncio.wait_for(asyncio.gather(
        *[storage.commit(append(f"s{i}-1", StreamState.NO_STREAM, new_event(i)))
          for i in range(5)], return_exceptions=True), timeout=10)
    # The first commit goes at once (it succeeds); those queued behind it hit the bug.
    failed = [o for o in outcomes if isinstance(o, StoreError)]
    assert failed and all("simulated bug" in str(o) for o in failed)
    assert len(failed) + sum(not isinstance(o, BaseException) for o in outcomes) == 5


async def test_a_commit_with_a_command_record_alone_is_one_statement(
    storage: PostgresStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncpg

    from invariant.domain.errors import DuplicateCommandError
    from invariant.store import AppendRequest, Commit
    from invariant.store.records import CommandRecord

    blocks: list[int] = []
    opened = asyncpg.Connection.transaction

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        blocks.append(1)
        return opened(self, *args, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "transaction", counted)
    command = CommandRecord(uuid.uuid4(), "Deposit", {"balance": "10.00"})
    result = await storage.commit(Commit(
        appends=(AppendRequest("acct-1", 0, (new_event(1), new_event(2))),), command=command))
    assert blocks == []  # no BEGIN ... COMMIT: the append and its command in one statement
    stored = await storage.read_command(command.command_id)
    assert stored is not None and stored.value == {"balance": "10.00"}
    assert (stored.position, stored.versions) == (result.position, {"acct-1": 2})
    assert (result.streams[0].version, result.position) == (2, result.streams[0].last_position)

    # The same command again, alone and with an exact expectation: refused, nothing written.
    with pytest.raises(DuplicateCommandError, match=str(command.command_id)):
        await storage.commit(Commit(appends=(AppendRequest("acct-1", 2, (new_event(3),)),),
                                    command=command))
    # A conflict alone: refused, and its command not recorded.
    other = CommandRecord(uuid.uuid4(), "Deposit", None)
    with pytest.raises(ConcurrencyError):
        await storage.commit(Commit(appends=(AppendRequest("acct-1", 1, (new_event(4),)),),
                                    command=other))
    assert await storage.read_command(other.command_id) is None
    assert await storage.stream_version("acct-1") == 2


async def test_a_commit_with_messages_is_one_statement_and_keeps_every_outcome(
    storage: PostgresStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One append with an exact expectation, its messages and its command record: no
    transaction block, the outbox rows of the events then of the messages in that order, and
    a conflict or a duplicate command writes none of it."""
    import asyncpg

    from invariant.domain.errors import DuplicateCommandError
    from invariant.store import AppendRequest, Commit, OutboxMessage
    from invariant.store.records import CommandRecord

    blocks: list[int] = []
    opened = asyncpg.Connection.transaction

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        blocks.append(1)
        return opened(self, *args, **kwargs)

    def message(n: int, stream: str = "order-1") -> OutboxMessage:
        return OutboxMessage(uuid.uuid4(), "order.placed", 2, {"n": n}, {"m": n}, stream)

    monkeypatch.setattr(asyncpg.Connection, "transaction", counted)
    command = CommandRecord(uuid.uuid4(), "Place", {"order": "o-1"})
    sent = (message(1), message(2, "other-9"))
    result = await storage.commit(Commit(
        appends=(AppendRequest("order-1", StreamState.NO_STREAM, (new_event(1), new_event(2))),),
        messages=sent, command=command))
    assert blocks == []
    assert (result.streams[0].version, result.streams[0].first_position,
            result.position) == (2, 1, 2)
    stored = await storage.read_command(command.command_id)
    assert stored is not None and (stored.position, stored.versions) == (2, {"order-1": 2})
    rows = await storage.read_outbox(limit=10)
    assert [(r.position, r.stream_id, r.message_type, r.schema_version, r.data, r.metadata)
            for r in rows[2:]] == [(None, "order-1", "order.placed", 2, {"n": 1}, {"m": 1}),
                                   (None, "other-9", "order.placed", 2, {"n": 2}, {"m": 2})]
    assert [r.position for r in rows[:2]] == [1, 2]
    assert [r.message_id for r in rows[2:]] == [m.message_id for m in sent]

    # Refused: a conflict, then the same command again; neither writes an event, a message
    # or a command record.
    other = CommandRecord(uuid.uuid4(), "Place", None)
    with pytest.raises(ConcurrencyError):
        await storage.commit(Commit(appends=(AppendRequest("order-1", 1, (new_event(3),)),),
                                    messages=(message(3),), command=other))
    with pytest.raises(DuplicateCommandError, match=str(command.command_id)):
        await storage.commit(Commit(appends=(AppendRequest("order-1", 2, (new_event(4),)),),
                                    messages=(message(4),), command=command))
    assert await storage.read_command(other.command_id) is None
    assert await storage.stream_version("order-1") == 2
    assert len(await storage.read_outbox(limit=10)) == 4

    # Without a command: the messages alone, still one statement.
    await storage.commit(Commit(appends=(AppendRequest("order-1", 2, (new_event(5),)),),
                                messages=(message(5),)))
    assert blocks == []
    event, sent_alone = (await storage.read_outbox(limit=10))[4:]
    assert event.position == (await storage.read_stream("order-1"))[-1].position
    assert (sent_alone.position, sent_alone.data) == (None, {"n": 5})

    # Several streams, a command: one statement, all or nothing.
    both = CommandRecord(uuid.uuid4(), "Ship", None)
    result = await storage.commit(Commit(appends=(
        AppendRequest("order-1", 3, (new_event(6),)),
        AppendRequest("shipment-1", StreamState.NO_STREAM, (new_event(7), new_event(8)))),
        messages=(message(6),), command=both))
    assert blocks == []
    assert result.versions == {"order-1": 4, "shipment-1": 2}
    stored = await storage.read_command(both.command_id)
    assert stored is not None and stored.versions == result.versions
    assert stored.position == result.position == result.streams[1].last_position
    with pytest.raises(ConcurrencyError) as refused:
        await storage.commit(Commit(appends=(
            AppendRequest("order-1", 4, (new_event(9),)),
            AppendRequest("shipment-1", 1, (new_event(10),))), messages=(message(9),)))
    assert (refused.value.stream_id, refused.value.actual) == ("shipment-1", 2)
    assert await storage.stream_version("order-1") == 4
    assert len(await storage.read_outbox(limit=20)) == 10


async def test_racing_commits_with_messages_on_one_version_write_one_of_them(
    storage: PostgresStorage,
) -> None:
    """Commits of one statement racing for the same version of a stream (and one of them
    over two streams): exactly one lands, with its messages and command; the others are
    refused with ConcurrencyError and leave nothing behind."""
    from invariant.store import AppendRequest, Commit, OutboxMessage
    from invariant.store.records import CommandRecord

    await storage.commit(append("order-1", StreamState.NO_STREAM, new_event(0)))

    async def send(i: int) -> CommandRecord | None:
        command = CommandRecord(uuid.uuid4(), "Place", {"i": i})
        appends = [AppendRequest("order-1", 1, (new_event(i), new_event(100 + i)))]
        if i % 2:
            appends.append(AppendRequest(f"shipment-{i}", StreamState.NO_STREAM,
                                         (new_event(200 + i),)))
        try:
            await storage.commit(Commit(appends=tuple(appends), command=command, messages=(
                OutboxMessage(uuid.uuid4(), "order.placed", 1, {"i": i}, {}, "order-1"),)))
        except ConcurrencyError:
            return None
        return command

    landed = [c for c in await asyncio.gather(*(send(i) for i in range(1, 13))) if c]
    assert len(landed) == 1
    winner = landed[0]
    assert await storage.stream_version("order-1") == 3
    stored = await storage.read_command(winner.command_id)
    assert stored is not None and stored.value == winner.value
    rows = await storage.read_outbox(limit=50)
    messages = [r for r in rows if r.position is None]
    assert [m.data for m in messages] == [winner.value]
    i = winner.value["i"]  # type: ignore[index]
    shipments = [r.stream_id for r in rows if r.stream_id.startswith("shipment-")]
    assert shipments == ([f"shipment-{i}"] if i % 2 else [])
    assert len(rows) == 1 + 2 + len(shipments) + 1

"""The state-stored User aggregate on SQLite and PostgreSQL, on an async engine and on a
ReadModelDatabase: versions, uniqueness, outbox."""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from examples.users.domain import User, UserId
from invariant.domain import (
    AggregateNotFoundError,
    ConcurrencyError,
    ConfigurationError,
    UniquenessError,
)
from invariant.state import StateStoredRepository
from invariant.testing import ManualClock
from tests.state.conftest import Backend

ADA = {"email": "ada@example.com", "status": "active", "age": 36}


def ada(id: str = "u-1", **changes: object) -> User:
    return User.register(UserId(id), {**ADA, **changes})


async def test_a_registered_user_is_stored_at_version_1_with_its_event_in_the_outbox(
    users: StateStoredRepository[User], backend: Backend
) -> None:
    user = ada()
    await users.save(user, metadata={"correlation_id": "req-1"})
    assert user.version == 1 and user.pending_events == ()
    loaded = await users.get("u-1")
    assert loaded.id == UserId("u-1") and loaded.version == 1
    assert loaded.state == user.state
    assert await backend.outbox() == [
        ("users-u-1", "UserRegistered",
         {"user_id": "u-1", "email": "ada@example.com", "status": "active"}),
    ]


async def test_timestamps_are_stored_in_utc(
    users: StateStoredRepository[User], backend: Backend, clock: ManualClock
) -> None:
    await users.save(ada())
    clock.advance(minutes=5)
    await users.update("u-1", User.suspend)
    async with backend.engine.connect() as conn:
        row = (await conn.execute(select(users.table))).mappings().one()
    assert row["created_at"] == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert row["updated_at"] == datetime(2026, 1, 1, 12, 5, tzinfo=UTC)
    assert row["version"] == 2 and row["status"] == "suspended"


async def test_loading_an_unknown_user_raises_not_found(
    users: StateStoredRepository[User],
) -> None:
    with pytest.raises(AggregateNotFoundError, match="User 'nobody' does not exist"):
        await users.get("nobody")


async def test_a_duplicate_email_is_a_uniqueness_error_naming_the_field(
    users: StateStoredRepository[User], backend: Backend
) -> None:
    await users.save(ada("u-1"))
    with pytest.raises(UniquenessError) as caught:
        await users.save(ada("u-2", status="pending"))
    assert caught.value.fields == ("email",)
    assert "ada@example.com" not in str(caught.value)  # personal data stays out of messages
    assert [row[0] for row in await backend.outbox()] == ["users-u-1"]
    with pytest.raises(AggregateNotFoundError):
        await users.get("u-2")


async def test_changing_to_a_taken_email_writes_nothing(
    users: StateStoredRepository[User], backend: Backend
) -> None:
    await users.save(ada("u-1"))
    await users.save(ada("u-2", email="bob@example.com"))
    bob = await users.get("u-2")
    bob.change_email("ada@example.com")
    with pytest.raises(UniquenessError):
        await users.save(bob)
    assert (await users.get("u-2")).state.email == "bob@example.com"
    assert await users.version_of("u-2") == 1
    assert [row[1] for row in await backend.outbox()] == ["UserRegistered", "UserRegistered"]


async def test_registering_an_existing_id_again_is_a_concurrency_error(
    users: StateStoredRepository[User],
) -> None:
    await users.save(ada("u-1"))
    with pytest.raises(ConcurrencyError) as caught:
        await users.save(ada("u-1", email="other@example.com"))
    assert (caught.value.stream_id, caught.value.expected, caught.value.actual) == (
        "users-u-1", 0, 1)


async def test_a_stale_write_raises_the_event_stores_concurrency_error(
    users: StateStoredRepository[User], backend: Backend
) -> None:
    await users.save(ada())
    first, second = await users.get("u-1"), await users.get("u-1")
    first.suspend()
    await users.save(first)
    second.change_email("ada@lovelace.org")
    with pytest.raises(ConcurrencyError) as caught:
        await users.save(second)
    assert (caught.value.stream_id, caught.value.expected, caught.value.actual) == (
        "users-u-1", 1, 2)
    assert "reload the aggregate and retry" in str(caught.value)
    stored = await users.get("u-1")
    assert (stored.state.status, stored.state.email) == ("suspended", "ada@example.com")
    assert [row[1] for row in await backend.outbox()] == ["UserRegistered", "UserSuspended"]


async def test_two_concurrent_updates_from_one_version_exactly_one_wins(
    users: StateStoredRepository[User], backend: Backend
) -> None:
    await users.save(ada())
    first, second = await users.get("u-1"), await users.get("u-1")
    first.suspend()
    second.change_email("ada@lovelace.org")
    outcomes = await asyncio.gather(users.save(first), users.save(second),
                                    return_exceptions=True)
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], ConcurrencyError)
    winner = first if outcomes[0] is None else second
    assert winner.version == 2
    assert (await users.get("u-1")).state == winner.state
    winning_event = "UserSuspended" if winner is first else "EmailChanged"
    assert [row[1] for row in await backend.outbox()] == ["UserRegistered", winning_event]


async def test_update_reloads_and_retries_until_the_change_applies(
    users: StateStoredRepository[User], backend: Backend
) -> None:
    await users.save(ada())
    results = await asyncio.gather(
        users.update("u-1", User.suspend),
        users.update("u-1", lambda u: u.change_email("ada@lovelace.org")),
    )
    assert sorted(r.version for r in results) == [2, 3]
    final = await users.get("u-1")
    assert final.version == 3
    assert (final.state.status, final.state.email) == ("suspended", "ada@lovelace.org")
    assert sorted(row[1] for row in await backend.outbox()) == [
        "EmailChanged", "UserRegistered", "UserSuspended"]


async def test_a_domain_refusal_inside_update_writes_nothing(
    users: StateStoredRepository[User], backend: Backend
) -> None:
    await users.save(ada())
    await users.update("u-1", User.suspend)
    from examples.users.domain import UserAlreadySuspended

    with pytest.raises(UserAlreadySuspended):
        await users.update("u-1", User.suspend)
    assert await users.version_of("u-1") == 2
    assert len(await backend.outbox()) == 2


async def test_an_update_that_changes_nothing_writes_nothing(
    users: StateStoredRepository[User], backend: Backend
) -> None:
    await users.save(ada())
    unchanged = await users.update("u-1", lambda u: None)
    assert unchanged.version == 1 and await users.version_of("u-1") == 1
    assert len(await backend.outbox()) == 1


async def test_an_asynchronous_change_is_applied(
    users: StateStoredRepository[User], backend: Backend
) -> None:
    await users.save(ada())

    async def suspend_later(user: User) -> None:
        await asyncio.sleep(0)
        user.suspend()

    first = await users.update("u-1", suspend_later)  # a coroutine function
    second = await users.update("u-1", lambda u: change_email_later(u, "ada@lovelace.org"))
    assert (first.version, second.version) == (2, 3)
    final = await users.get("u-1")
    assert (final.state.status, final.state.email) == ("suspended", "ada@lovelace.org")
    assert [row[1] for row in await backend.outbox()] == [
        "UserRegistered", "UserSuspended", "EmailChanged"]


async def change_email_later(user: User, email: str) -> None:
    await asyncio.sleep(0)
    user.change_email(email)


async def test_concurrent_asynchronous_changes_all_apply(
    users: StateStoredRepository[User],
) -> None:
    await users.save(ada())
    await asyncio.gather(*(
        users.update("u-1", functools.partial(change_email_later, email=f"ada{n}@x.org"))
        for n in range(3)))  # the default 3 retries cover the worst interleaving
    assert await users.version_of("u-1") == 4


async def test_anything_but_an_engine_or_a_database_is_refused() -> None:
    from examples.users.contracts import UserProfile

    with pytest.raises(ConfigurationError, match="AsyncEngine or a ReadModelDatabase"):
        StateStoredRepository("sqlite:///x.db", User, UserProfile)  # type: ignore[arg-type]


async def test_a_state_of_another_contract_is_refused(
    users: StateStoredRepository[User],
) -> None:
    user = ada()
    user.change("not a profile")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="stores UserProfile values"):
        await users.save(user)


async def test_the_event_stores_outbox_reader_reads_state_stored_events(
    backend: Backend,
) -> None:
    from invariant.store import SQLiteStorage
    from invariant.store.postgres import PostgresStorage
    from tests.conftest import POSTGRES_DSN

    # The event store creates the outbox first here; the repository's setup leaves it be.
    storage: SQLiteStorage | PostgresStorage
    if backend.sqlite_path is not None:
        storage = SQLiteStorage(backend.sqlite_path)
    else:
        assert backend.schema is not None
        storage = PostgresStorage(POSTGRES_DSN, schema=backend.schema)
    await storage.setup()
    try:
        users = backend.repository()
        await users.setup()
        await users.save(ada(), metadata={"correlation_id": "req-9"})
        await users.update("u-1", User.suspend)
        records = await storage.read_outbox()
    finally:
        await storage.close()
    assert [(r.stream_id, r.message_type, r.position) for r in records] == [
        ("users-u-1", "UserRegistered", None), ("users-u-1", "UserSuspended", None)]
    assert records[0].data == {"user_id": "u-1", "email": "ada@example.com", "status": "active"}
    assert records[0].metadata == {"correlation_id": "req-9"}
    assert records[0].created_at.tzinfo is not None
    assert records[0].message_id != records[1].message_id

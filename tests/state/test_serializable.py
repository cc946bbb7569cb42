"""SERIALIZABLE isolation on PostgreSQL: real serialization failures, retried; row locks.
Each test runs on the async engine and on the ReadModelDatabase path."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError

from examples.users.domain import User, UserId
from invariant.domain import ConcurrencyError
from tests.state.conftest import Backend

ADA = {"email": "ada@example.com", "status": "active", "age": 36}
COUNT = 5


class Rendezvous:
    """Holds each change until two loads have happened, so both read the same version."""

    def __init__(self) -> None:
        self.calls = 0
        self.both_loaded = asyncio.Event()

    async def suspend(self, user: User) -> None:
        await self.wait()
        user.suspend()

    async def change_email(self, user: User) -> None:
        await self.wait()
        user.change_email("ada@lovelace.org")

    async def wait(self) -> None:
        self.calls += 1
        if self.calls >= 2:
            self.both_loaded.set()
        await asyncio.wait_for(self.both_loaded.wait(), timeout=10)


def email_change(n: int) -> Callable[[User], None]:
    def change(user: User) -> None:
        user.change_email(f"ada{n}@example.com")
    return change


async def registered(pg: Backend) -> None:
    users = pg.repository()
    await users.setup()
    await users.save(User.register(UserId("u-1"), ADA))


async def test_a_serialization_failure_is_a_concurrency_error_when_no_retry_is_left(
    pg: Backend,
) -> None:
    await registered(pg)
    users = pg.repository(isolation="SERIALIZABLE", retries=0)
    meet = Rendezvous()
    outcomes = await asyncio.gather(
        users.update("u-1", meet.suspend), users.update("u-1", meet.change_email),
        return_exceptions=True,
    )
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], ConcurrencyError)
    assert (errors[0].expected, errors[0].actual) == (1, 2)
    cause = errors[0].__cause__
    if pg.database is not None and cause is None:
        # On a ReadModelDatabase an async change runs between the load and the save: the
        # loser's save may begin after the winner committed, and fail its version check.
        return
    assert isinstance(cause, DBAPIError) and getattr(cause.orig, "sqlstate", None) == "40001"


async def test_serialization_failures_are_retried_and_both_changes_apply(
    pg: Backend,
) -> None:
    await registered(pg)
    users = pg.repository(isolation="SERIALIZABLE", retries=3)
    meet = Rendezvous()
    await asyncio.gather(users.update("u-1", meet.suspend),
                         users.update("u-1", meet.change_email))
    assert meet.calls == 3  # the loser loaded again after its transaction was aborted
    final = await users.get("u-1")
    assert final.version == 3
    assert (final.state.status, final.state.email) == ("suspended", "ada@lovelace.org")
    assert sorted(row[1] for row in await pg.outbox()) == [
        "EmailChanged", "UserRegistered", "UserSuspended"]


async def test_a_stale_save_under_serializable_is_the_same_concurrency_error(
    pg: Backend,
) -> None:
    await registered(pg)
    users = pg.repository(isolation="SERIALIZABLE")
    first, second = await users.get("u-1"), await users.get("u-1")
    first.suspend()
    second.change_email("ada@lovelace.org")
    outcomes = await asyncio.gather(users.save(first), users.save(second),
                                    return_exceptions=True)
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], ConcurrencyError)
    assert (errors[0].stream_id, errors[0].expected, errors[0].actual) == ("users-u-1", 1, 2)
    assert len(await pg.outbox()) == 2


async def test_without_serializable_the_version_check_alone_catches_the_race(
    pg: Backend,
) -> None:
    await registered(pg)
    users = pg.repository(retries=0)
    meet = Rendezvous()
    outcomes = await asyncio.gather(
        users.update("u-1", meet.suspend), users.update("u-1", meet.change_email),
        return_exceptions=True,
    )
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], ConcurrencyError)
    assert errors[0].__cause__ is None  # READ COMMITTED: the UPDATE matched no row



async def test_concurrent_synchronous_changes_under_serializable_all_apply(
    pg: Backend,
) -> None:
    await registered(pg)
    users = pg.repository(isolation="SERIALIZABLE", retries=COUNT)
    results = await asyncio.gather(*(
        users.update("u-1", email_change(n)) for n in range(COUNT)))
    assert sorted(r.version for r in results) == list(range(2, COUNT + 2))
    assert await users.version_of("u-1") == COUNT + 1
    assert len(await pg.outbox()) == COUNT + 1


async def test_with_row_locks_concurrent_updates_queue_instead_of_conflicting(
    pg: Backend,
) -> None:
    await registered(pg)
    users = pg.repository(lock_rows=True, retries=0)  # no retry: a conflict would fail
    results = await asyncio.gather(*(
        users.update("u-1", email_change(n)) for n in range(COUNT)))
    assert sorted(r.version for r in results) == list(range(2, COUNT + 2))
    assert len(await pg.outbox()) == COUNT + 1

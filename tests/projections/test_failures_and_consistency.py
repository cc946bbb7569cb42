"""Failing handlers are retried then stop the projection visibly; status; waiting for a
position; two runners on one projection apply nothing twice."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, select, update

from examples.bank.projections import AccountSummary, account_of, get_summary
from invariant.domain import ProjectionFailedError, ProjectionLagError
from invariant.projections import Projection
from invariant.store import EventEnvelope
from tests.projections.conftest import Bank


class Applications(Projection):
    """Counts how often each event was applied (any count but 1 is a bug)."""

    name = "applications"
    event_types = ("AccountOpened", "MoneyDeposited", "MoneyWithdrawn")

    def __init__(self, fail_on: set[int] | None = None, failures: int = 10**9) -> None:
        super().__init__()
        self.fail_on = fail_on or set()
        self.failures_left = failures
        self.calls = 0

    def define(self, metadata: MetaData) -> None:
        self.counts = Table(
            self.table_name("counts"), metadata,
            Column("event_id", String(36), primary_key=True),
            Column("position", Integer, nullable=False),
            Column("applied", Integer, nullable=False),
        )

    def apply(self, envelope: EventEnvelope, conn: Connection) -> None:
        self.calls += 1
        if envelope.position in self.fail_on and self.failures_left > 0:
            self.failures_left -= 1
            raise ZeroDivisionError(f"cannot handle event {envelope.position}")
        t, key = self.counts, str(envelope.event_id)
        if conn.execute(select(t.c.applied).where(t.c.event_id == key)).first() is None:
            conn.execute(t.insert().values(event_id=key, position=envelope.position,
                                           applied=1))
        else:
            conn.execute(update(t).where(t.c.event_id == key)
                         .values(applied=t.c.applied + 1))


async def counts(bank: Bank, projection: Applications) -> dict[int, int]:
    def read(conn: Connection) -> dict[int, int]:
        t = projection.counts
        return {r.position: r.applied for r in conn.execute(select(t))}

    return await bank.database.run(read, write=False)


async def test_a_failing_event_is_retried_then_stops_the_projection_before_it(
    bank: Bank,
) -> None:
    await bank.seed_scenario()
    projection = Applications(fail_on={3})
    runner = bank.runner([projection])
    await runner.setup()

    with pytest.raises(ProjectionFailedError, match="stopped at event 3: ZeroDivisionError"):
        await runner.catch_up()

    [status] = await runner.status()
    assert (status.state, status.checkpoint, status.error_position) == ("failed", 2, 3)
    assert status.attempts == 3
    assert status.error == "ZeroDivisionError: cannot handle event 3"
    assert status.lag_events == 3
    assert await counts(bank, projection) == {1: 1, 2: 1}  # never skipped past event 3
    # Stopped means stopped: another catch-up does not move it, nor skip the event.
    with pytest.raises(ProjectionFailedError):
        await runner.catch_up()
    assert await counts(bank, projection) == {1: 1, 2: 1}

    projection.fail_on = set()  # the handler is fixed
    await runner.resume("applications")
    await runner.catch_up()

    assert await counts(bank, projection) == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1}
    [status] = await runner.status()
    assert (status.state, status.checkpoint, status.error, status.attempts) == (
        "running", 5, None, 0,
    )


async def test_a_transient_failure_is_retried_with_backoff_and_applied_once(
    bank: Bank,
) -> None:
    await bank.seed_scenario()
    # Fails in its page, then alone twice (3 attempts allowed): succeeds on the third.
    projection = Applications(fail_on={4}, failures=3)
    runner = bank.runner([projection])
    await runner.setup()
    loop = asyncio.get_running_loop()
    started = loop.time()

    await runner.catch_up()

    assert loop.time() - started >= 0.01 + 0.02  # two backoff pauses: 10 ms, then 20 ms
    assert await counts(bank, projection) == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1}
    [status] = await runner.status()
    assert (status.state, status.checkpoint, status.attempts, status.error) == (
        "running", 5, 0, None,
    )


async def test_status_reports_checkpoint_head_and_lag_in_events_and_seconds(
    bank: Bank,
) -> None:
    await bank.seed_scenario()  # recorded at clock.now
    runner = bank.runner([AccountSummary()], page_size=2)
    await runner.setup()
    bank.clock.advance(seconds=90)

    [before] = await runner.status()
    assert (before.name, before.version, before.active, before.state) == (
        "account_summary", 1, True, "running",
    )
    assert (before.checkpoint, before.head, before.lag_events) == (0, 5, 5)
    assert before.lag_seconds == 90.0

    await runner.catch_up()

    [after] = await runner.status()
    assert (after.checkpoint, after.head, after.lag_events, after.lag_seconds) == (5, 5, 0, 0)


async def test_waiting_for_a_position_the_projection_does_not_reach_names_both(
    bank: Bank,
) -> None:
    position = await bank.seed_scenario()
    runner = bank.runner([AccountSummary()])
    await runner.setup()  # nobody runs it
    loop = asyncio.get_running_loop()
    started = loop.time()

    with pytest.raises(ProjectionLagError) as caught:
        await runner.wait_until("account_summary", position, timeout=0.3)

    assert 0.3 <= loop.time() - started < 2
    assert (caught.value.reached, caught.value.wanted) == (0, position)
    assert str(caught.value).startswith(
        f"projection 'account_summary' reached position 0, not {position}, within 0.3 s"
    )


async def test_waiting_returns_as_soon_as_the_position_is_applied(bank: Bank) -> None:
    runner = bank.runner([AccountSummary()])
    await runner.setup()
    position = await bank.seed_scenario()
    waiting = asyncio.create_task(runner.wait_until("account_summary", position, timeout=10))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # eventual consistency: not there yet

    await runner.catch_up()

    assert await asyncio.wait_for(waiting, 2) == position
    summary = await get_summary(bank.database, "ACC-001")
    assert summary is not None and summary.transaction_count == 3


async def test_waiting_on_a_failed_projection_fails_at_once_with_its_error(bank: Bank) -> None:
    position = await bank.seed_scenario()
    runner = bank.runner([Applications(fail_on={2})])
    await runner.setup()
    with pytest.raises(ProjectionFailedError):
        await runner.catch_up()

    with pytest.raises(ProjectionFailedError, match="stopped at event 2"):
        await runner.wait_until("applications", position, timeout=30)


async def test_two_runners_on_one_projection_never_apply_an_event_twice(bank: Bank) -> None:
    for i in range(40):
        await bank.open(f"ACC-{i:03}", "10")
    first, second = Applications(), Applications()
    runners = [bank.runner([first], page_size=3), bank.runner([second], page_size=3)]
    await runners[0].setup()

    await asyncio.gather(*(r.catch_up() for r in runners), *(r.catch_up() for r in runners))

    assert await counts(bank, first) == {p: 1 for p in range(1, 41)}
    [status] = await runners[0].status()
    assert status.checkpoint == 40


def test_the_account_of_an_envelope_is_its_stream_id_without_the_category() -> None:

    envelope = _an_envelope()._replace(stream_id="account-ACC-7-b")
    assert account_of(envelope) == "ACC-7-b"


def _an_envelope() -> EventEnvelope:
    from datetime import UTC, datetime
    from uuid import uuid4

    from examples.bank.domain import MoneyDeposited
    from invariant.domain import Money

    return EventEnvelope(MoneyDeposited(Money.of(1, "USD")), uuid4(), "account-x", 1, 1,
                         "MoneyDeposited", 2, 2, {}, datetime.now(UTC))

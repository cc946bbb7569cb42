"""Orchestrated sagas: ordered steps, each with an action and a compensation.

The orchestrator stores the saga's state (step, completed steps, attempts, status) before
and after every step, with optimistic locking, so a saga resumes from its row after a crash,
in any process. Steps are idempotent: commands a step sends get ids derived from the saga
id, the step and the phase, so a step run again (after a crash, or by a second worker) is
handled once by the command bus.

An action refused by the domain (it raises a ``DomainError``: nothing happened) is retried
up to its step's budget, then the completed steps are compensated in reverse order. Any
other error (a lost connection: the step may have happened) repeats the step with the same
command ids, with backoff, then parks the saga for an operator. A failing compensation is
retried with backoff; when its budget runs out the saga is parked as ``needs-attention``
with the error, until an operator resumes it (``invariant processes resume ID``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from invariant.application.messages import Command, CommandResult
from invariant.clock import Clock, utc_now
from invariant.domain.errors import (
    ConcurrencyError,
    ConfigurationError,
    DomainError,
    NotFoundError,
)
from invariant.processes import persistence
from invariant.processes.dispatch import PROCESS_RETRY
from invariant.processes.manager import command_id_for
from invariant.processes.persistence import ProcessRecord
from invariant.retry import RetryPolicy
from invariant.sql.database import ReadModelDatabase

R = TypeVar("R")

StepAction = Callable[["StepContext"], Awaitable[Any]]


class CommandSender(Protocol):
    """What sagas send commands through: a :class:`CommandBus` (or a test double)."""

    async def dispatch(self, command: Command[R], *, metadata: Mapping[str, Any] | None = None
                       ) -> CommandResult[R]:
        """Handle ``command`` once per command id; return its outcome."""


@dataclass(frozen=True, slots=True)
class Step:
    """One step: ``action`` and the ``compensation`` that undoes it (None: nothing to undo).
    ``attempts`` bounds how often a failing action is tried before the saga compensates."""

    name: str
    action: StepAction
    compensation: StepAction | None = None
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class Saga:
    """A saga's declaration: its ``kind`` (stored with each instance) and ordered steps."""

    kind: str
    steps: tuple[Step, ...]
    compensation_retry: RetryPolicy = PROCESS_RETRY
    transient_retry: RetryPolicy = PROCESS_RETRY
    """For actions failing with anything but a refusal (a ``DomainError``)."""
    action_retry_delay: float = 0.05

    def __post_init__(self) -> None:
        names = [s.name for s in self.steps]
        if not names or len(set(names)) != len(names):
            raise ConfigurationError(f"saga {self.kind!r} needs steps with distinct names")


class StepContext:
    """What a step's action or compensation gets: the saga's data, the attempt (1 for the
    first try, 2 after one failure; a try cut short by a crash is repeated with the same
    number) and deterministic command ids."""

    def __init__(self, saga_id: str, step: str, phase: str, data: Mapping[str, Any],
                 attempt: int, bus: CommandSender | None) -> None:
        self.saga_id = saga_id
        self.step = step
        self.phase = phase
        self.data = data
        self.attempt = attempt
        self._bus = bus

    def command_id(self, key: str = "") -> uuid.UUID:
        """The same id every time this step's phase runs (``key`` tells commands apart)."""
        return command_id_for(self.saga_id, f"{self.step}/{self.phase}/{key}")

    async def send(self, command: Command[R], key: str = "") -> CommandResult[R]:
        """Dispatch ``command`` through the bus with this step's deterministic id."""
        if self._bus is None:
            raise ConfigurationError("this SagaOrchestrator was built without a command bus")
        import dataclasses

        cmd = dataclasses.replace(command, command_id=self.command_id(key))
        return await self._bus.dispatch(cmd, metadata={"saga_id": self.saga_id})


class SagaOrchestrator:
    """Starts, runs, recovers and resumes the sagas of one declaration."""

    def __init__(self, saga: Saga, database: ReadModelDatabase, *,
                 bus: CommandSender | None = None,
                 clock: Clock = utc_now,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.saga = saga
        self.database = database
        self.bus = bus
        self.clock = clock
        self._sleep = sleep

    async def setup(self) -> None:
        from invariant.processes.runner import setup_tables

        await setup_tables(self.database)

    async def start(self, saga_id: str, data: Mapping[str, Any]) -> ProcessRecord:
        """Store a new saga (or return the stored one: starting twice starts once)."""
        record = ProcessRecord(saga_id, self.saga.kind, saga_id,
                               {"data": dict(data), "completed": [], "attempts": 0})
        try:
            return await self.database.run(lambda c: persistence.write(c, record, self.clock()))
        except ConcurrencyError:
            return await self.load(saga_id)

    async def load(self, saga_id: str) -> ProcessRecord:
        found = await self.database.run(lambda c: persistence.read(c, saga_id), write=False)
        if found is None or found.kind != self.saga.kind:
            raise NotFoundError(f"no {self.saga.kind} saga {saga_id!r}")
        return found

    async def execute(self, saga_id: str, data: Mapping[str, Any]) -> ProcessRecord:
        """Start and run a saga to its end (or until it needs attention)."""
        await self.start(saga_id, data)
        return await self.run(saga_id)

    async def run(self, saga_id: str) -> ProcessRecord:
        """Drive a stored saga from where its row says it is."""
        record = await self.load(saga_id)
        while record.status in persistence.ACTIVE:
            try:
                if record.status == persistence.RUNNING:
                    await self._forward(record)
                else:
                    await self._backward(record)
            except ConcurrencyError:
                record = await self.load(saga_id)  # someone else moved it on: follow
        return record

    async def recover(self, *, stale_after: float = 0.0, concurrency: int = 20
                      ) -> list[ProcessRecord]:
        """Run every active saga of this kind not touched for ``stale_after`` seconds (those
        a crashed worker left behind); returns their final rows."""
        active = [r for status in persistence.ACTIVE for r in await self.database.run(
            lambda c, s=status: persistence.listing(c, status=s, kind=self.saga.kind),  # type: ignore[misc]
            write=False)]
        cutoff = self.clock() - timedelta(seconds=stale_after)
        ids = [r.id for r in active
               if stale_after <= 0 or r.updated_at is None or r.updated_at <= cutoff]
        gate = asyncio.Semaphore(concurrency)

        async def one(saga_id: str) -> ProcessRecord:
            async with gate:
                return await self.run(saga_id)

        return list(await asyncio.gather(*(one(i) for i in ids)))

    async def follow(self, *, interval: float = 1.0, stale_after: float = 30.0) -> None:
        """Forever (until cancelled): every ``interval`` seconds, run the sagas left
        behind by crashed workers or resumed by an operator."""
        while True:
            await self.recover(stale_after=stale_after)
            await asyncio.sleep(interval)

    async def resume(self, saga_id: str) -> ProcessRecord:
        """Give a parked saga its compensation budget again and run it."""
        await self.database.run(lambda c: resume_parked(c, saga_id, self.clock()))
        return await self.run(saga_id)

    # -- the two directions -------------------------------------------------------------

    async def _save(self, record: ProcessRecord) -> None:
        now = self.clock()
        await self.database.run(lambda c: persistence.write(c, record, now))

    def _context(self, record: ProcessRecord, step: Step, phase: str) -> StepContext:
        return StepContext(record.id, step.name, phase, record.state["data"],
                           record.state["attempts"] + 1, self.bus)

    async def _forward(self, record: ProcessRecord) -> None:
        steps = self.saga.steps
        if record.step >= len(steps):
            record.status = persistence.COMPLETED
            record.state.pop("in_flight", None)
            await self._save(record)
            return
        step = steps[record.step]
        await self._begin(record, "action")
        try:
            await step.action(self._context(record, step, "action"))
        except DomainError as exc:
            # A refusal: the step did not happen. Retry within its budget, or compensate.
            failures = record.state["attempts"] = record.state["attempts"] + 1
            record.state["transient"] = 0
            if failures < step.attempts:
                await self._save(record)
                await self._sleep(self.saga.action_retry_delay * failures)
                return
            record.status = persistence.COMPENSATING
            record.error = f"step {step.name!r} failed: {type(exc).__name__}: {exc}"
            record.state["attempts"] = 0
            record.state["failed_step"] = step.name
            await self._save(record)
            return
        except Exception as exc:
            # Not a refusal (a lost connection, a conflict): the step may or may not have
            # happened, so compensating only the steps before it could leave it undone.
            # Repeat it (same command ids) with backoff, then wait for an operator.
            await self._transient(record, f"step {step.name!r}", exc)
            return
        record.state["completed"].append(record.step)
        record.step += 1
        record.state["attempts"] = record.state["transient"] = 0
        await self._save(record)  # after the step

    async def _transient(self, record: ProcessRecord, what: str, exc: Exception) -> None:
        tries = record.state["transient"] = record.state.get("transient", 0) + 1
        budget = self.saga.transient_retry
        if tries >= budget.attempts:
            record.state["__parked_from__"] = record.status
            record.status = persistence.NEEDS_ATTENTION
            record.error = (f"{what} could not run ({tries} tries): "
                            f"{type(exc).__name__}: {exc}")
            await self._save(record)
            return
        await self._save(record)
        await self._sleep(budget.delay(tries))

    async def _begin(self, record: ProcessRecord, phase: str) -> None:
        """Before the step: its start is on record. A crash before its end makes the next
        run repeat the same attempt, with the same command ids (handled once)."""
        in_flight = {"step": record.step, "phase": phase,
                     "attempt": record.state["attempts"] + 1}
        if record.state.get("in_flight") != in_flight:
            record.state["in_flight"] = in_flight
            await self._save(record)

    async def _backward(self, record: ProcessRecord) -> None:
        completed: list[int] = record.state["completed"]
        if not completed:
            record.status = persistence.FAILED
            record.state.pop("in_flight", None)
            await self._save(record)
            return
        step = self.saga.steps[completed[-1]]
        record.step = completed[-1]
        await self._begin(record, "compensation")
        try:
            if step.compensation is not None:
                await step.compensation(self._context(record, step, "compensation"))
        except Exception as exc:
            failures = record.state["attempts"] = record.state["attempts"] + 1
            budget = self.saga.compensation_retry
            if failures >= budget.attempts:
                record.status = persistence.NEEDS_ATTENTION
                record.error = (f"compensation of step {step.name!r} failed {failures} times: "
                                f"{type(exc).__name__}: {exc}")
                await self._save(record)
                return
            await self._save(record)
            await self._sleep(budget.delay(failures))
            return
        completed.pop()
        record.state["attempts"] = 0
        await self._save(record)


def resume_parked(conn: Any, process_id: str, now: datetime) -> ProcessRecord:
    """Put a ``needs-attention`` process back to work, in the caller's transaction: a saga
    resumes compensating (or running, if it was parked before failing), a process manager
    resumes where it was, its parked commands are tried again."""
    record = persistence.read(conn, process_id, lock=True)
    if record is None:
        raise NotFoundError(f"no process {process_id!r}")
    if record.status != persistence.NEEDS_ATTENTION:
        raise ConfigurationError(
            f"process {process_id} is {record.status}, not {persistence.NEEDS_ATTENTION}: "
            "nothing to resume")
    parked_from = record.state.pop("__parked_from__", None)
    if parked_from is None:
        parked_from = (persistence.COMPENSATING if "completed" in record.state
                       else persistence.RUNNING)
    record.status = parked_from
    record.error = None
    for counter in ("attempts", "transient"):
        if counter in record.state:
            record.state[counter] = 0
    return persistence.write(conn, record, now)




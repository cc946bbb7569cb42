"""``invariant processes list|show|resume``, configured by INVARIANT_* variables."""

from __future__ import annotations

import asyncio
import json

from typer.testing import CliRunner, Result

from invariant.cli import app
from invariant.domain import DomainError
from invariant.processes import (
    COMPLETED,
    FAILED,
    NEEDS_ATTENTION,
    RetryPolicy,
    Saga,
    SagaOrchestrator,
    Step,
    StepContext,
)
from tests.conftest import POSTGRES_DSN
from tests.processes.conftest import Env


def settings(env: Env) -> dict[str, str]:
    if env.backend == "sqlite":
        return {"INVARIANT_STORE": "sqlite", "INVARIANT_SQLITE_PATH": env.target}
    return {"INVARIANT_STORE": "postgres", "INVARIANT_POSTGRES_DSN": POSTGRES_DSN,
            "INVARIANT_POSTGRES_SCHEMA": env.target}


async def invariant(env: Env, *args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, app, ["processes", *args],
                                   env=settings(env))


def parking_saga(env: Env, broken: dict[str, bool]) -> SagaOrchestrator:
    async def refund(ctx: StepContext) -> None:
        if broken["refund"]:
            raise ConnectionError("payment provider unreachable")

    async def ok(ctx: StepContext) -> None:
        return None

    async def declined(ctx: StepContext) -> None:
        raise DomainError("card declined")

    saga = Saga("checkout", (Step("charge", ok, refund), Step("ship", declined)),
                compensation_retry=RetryPolicy(attempts=2, first_delay=0.001))
    return SagaOrchestrator(saga, env.database, clock=env.clock)


async def test_list_shows_processes_and_fails_while_one_needs_attention(env: Env) -> None:
    await env.app.saga.execute("s-ok", {"order_id": "o-1", "customer_id": "c", "sku": "k",
                                        "quantity": 1, "amount": 5})
    broken = {"refund": True}
    await parking_saga(env, broken).execute("s-stuck", {})

    listed = await invariant(env, "list")
    assert listed.exit_code == 1, listed.output
    assert "s-ok" in listed.output and "s-stuck" in listed.output
    assert "needs-attention" in listed.output

    only = await invariant(env, "list", "--status", COMPLETED)
    assert only.exit_code == 0 and "s-ok" in only.output and "s-stuck" not in only.output
    wrong = await invariant(env, "list", "--status", "sleeping")
    assert wrong.exit_code == 2 and "must be one of" in wrong.output


async def test_show_prints_the_state_and_the_error(env: Env) -> None:
    await parking_saga(env, {"refund": True}).execute("s-stuck", {})
    shown = await invariant(env, "show", "s-stuck")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["status"] == NEEDS_ATTENTION and data["kind"] == "checkout"
    assert "payment provider unreachable" in data["error"]
    missing = await invariant(env, "show", "nope")
    assert missing.exit_code == 2 and "no process 'nope'" in missing.output


async def test_resume_puts_a_parked_saga_back_to_work(env: Env) -> None:
    broken = {"refund": True}
    orchestrator = parking_saga(env, broken)
    await orchestrator.execute("s-stuck", {})
    broken["refund"] = False

    resumed = await invariant(env, "resume", "s-stuck")
    assert resumed.exit_code == 0, resumed.output
    assert "s-stuck resumed: compensating" in resumed.output
    (done,) = await orchestrator.recover()  # a worker picks it up
    assert done.status == FAILED and done.state["completed"] == []
    again = await invariant(env, "resume", "s-stuck")
    assert again.exit_code == 2 and "nothing to resume" in again.output

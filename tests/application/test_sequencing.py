"""SequenceMiddleware: commands that share a sequence key run one at a time, from load to
commit; others run side by side; nothing is kept per key once it is idle."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from invariant.application import Command, CommandResult, SequenceMiddleware, default_middleware
from invariant.application.bus import Dispatch
from invariant.store import MemoryStorage


@dataclass(frozen=True, kw_only=True)
class Touch(Command[str]):
    key: str | None

    def sequence_key(self) -> str | None:
        return self.key


class Recorder:
    """The rest of the chain: notes when each command starts and ends, and can fail."""

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.together: list[set[str]] = []
        self.order: list[str] = []

    async def __call__(self, dispatch: Dispatch) -> CommandResult[Any]:
        name = str(dispatch.command.command_id)
        self.running.add(name)
        self.together.append(set(self.running))
        self.order.append(name)
        try:
            await asyncio.sleep(0.01)  # loading, a provider's answer, the commit
            if getattr(dispatch.command, "key", None) == "fails":
                raise RuntimeError("the handler failed")
            return CommandResult(dispatch.command.command_id, "ok", 0, {})
        finally:
            self.running.discard(name)


def dispatch(command: Command[Any]) -> Dispatch:
    return Dispatch(command, {})


async def test_commands_of_one_key_run_one_at_a_time_in_the_order_they_came() -> None:
    sequence, rest = SequenceMiddleware(), Recorder()
    same = [Touch(key="payment:o-1") for _ in range(5)]
    await asyncio.gather(*(sequence(dispatch(c), rest) for c in same))
    assert max(len(t) for t in rest.together) == 1  # never two at once
    assert rest.order == [str(c.command_id) for c in same]
    assert sequence.keys_held == 0  # no lock kept per key once idle


async def test_other_keys_and_commands_without_one_run_side_by_side() -> None:
    sequence, rest = SequenceMiddleware(), Recorder()
    commands = [Touch(key="a"), Touch(key="b"), Touch(key=None), Touch(key=None)]
    await asyncio.gather(*(sequence(dispatch(c), rest) for c in commands))
    assert max(len(t) for t in rest.together) == 4
    assert sequence.keys_held == 0


async def test_a_failing_command_frees_its_key_for_the_next() -> None:
    sequence, rest = SequenceMiddleware(), Recorder()
    first, second = Touch(key="fails"), Touch(key="fails")
    outcomes = await asyncio.gather(sequence(dispatch(first), rest),
                                    sequence(dispatch(second), rest), return_exceptions=True)
    assert [type(o) for o in outcomes] == [RuntimeError, RuntimeError]
    assert rest.order == [str(first.command_id), str(second.command_id)]
    assert sequence.keys_held == 0


async def test_a_cancelled_waiter_does_not_hold_up_the_key() -> None:
    sequence, rest = SequenceMiddleware(), Recorder()
    running = asyncio.create_task(sequence(dispatch(Touch(key="k")), rest))
    waiting = asyncio.create_task(sequence(dispatch(Touch(key="k")), rest))
    await asyncio.sleep(0)
    waiting.cancel()
    await running
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await sequence(dispatch(Touch(key="k")), rest)
    assert sequence.keys_held == 0


def test_sequencing_is_part_of_the_defaults_before_idempotency() -> None:
    kinds = [type(m).__name__ for m in default_middleware(MemoryStorage())]
    assert kinds.index("SequenceMiddleware") < kinds.index("IdempotencyMiddleware")
    assert kinds.index("SequenceMiddleware") < kinds.index("RetryMiddleware")

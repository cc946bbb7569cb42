"""The command hook: a span per command, its trace context into the events it records, and
the commands metric (by type and outcome, with the handling time)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from invariant.telemetry import metrics, tracing
from invariant.telemetry.correlation import correlated

if TYPE_CHECKING:
    from invariant.application.bus import Dispatch, Next
    from invariant.application.messages import CommandResult


class TelemetryMiddleware:
    """Outermost command middleware: while tracing is on, the command runs in a span (the
    child of the current one, e.g. the HTTP request's, or of the trace context the command's
    metadata carries, e.g. the event a process manager reacted to) and every event it
    records carries that span's context; while metrics are on, each command is counted by
    type and outcome (``ok``, ``duplicate``, ``error``) and timed. Off, it only passes on."""

    async def __call__(self, dispatch: Dispatch, call_next: Next) -> CommandResult[Any]:
        with correlated(dispatch.metadata):
            return await self._traced(dispatch, call_next)

    async def _traced(self, dispatch: Dispatch, call_next: Next) -> CommandResult[Any]:
        if not tracing.enabled():
            if not metrics.enabled():
                return await call_next(dispatch)
            return await self._measured(dispatch, call_next)
        kind = type(dispatch.command).__qualname__
        with tracing.span(f"command {kind}", {"invariant.command": kind,
                                              "invariant.command_id":
                                                  str(dispatch.command.command_id)},
                          parent=dispatch.metadata):
            tracing.inject(dispatch.metadata)
            return await self._measured(dispatch, call_next)

    async def _measured(self, dispatch: Dispatch, call_next: Next) -> CommandResult[Any]:
        if not metrics.enabled():
            return await call_next(dispatch)
        kind = type(dispatch.command).__qualname__
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await call_next(dispatch)
            outcome = "duplicate" if result.duplicate else "ok"
            return result
        finally:
            metrics.command_handled(kind, outcome, time.perf_counter() - started)

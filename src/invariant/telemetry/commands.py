"""The command hook: a span per command, the correlation id for the log lines written while
it is handled, and the commands metric (by type and outcome, with the handling time)."""

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
    child of the current one, e.g. the HTTP request's, or of the W3C trace context a caller
    put in the command's metadata), the parent of its commit's span; while metrics are on,
    each command is counted by type and outcome (``ok``, ``duplicate``, ``error``) and
    timed. Off, it only sets the correlation id and passes on."""

    async def __call__(self, dispatch: Dispatch, call_next: Next) -> CommandResult[Any]:
        with correlated(dispatch.metadata):
            return await self._traced(dispatch, call_next)

    async def _traced(self, dispatch: Dispatch, call_next: Next) -> CommandResult[Any]:
        if not tracing.enabled():
            return await self._measured(dispatch, call_next)
        kind = type(dispatch.command).__qualname__
        with tracing.span(f"command {kind}", {"invariant.command": kind,
                                              "invariant.command_id":
                                                  str(dispatch.command.command_id)},
                          parent=dispatch.metadata):
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

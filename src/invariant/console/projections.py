"""The projections page: every version's position, lag (events and seconds), state and
last error; pause, resume, rebuild (from zero or from a position), and the side-by-side
rebuild of a new version, the switch to it and the old one's retirement."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.responses import Response

from invariant.console.desk import Desk
from invariant.domain.errors import ConfigurationError
from invariant.operations.projections import projection_runner, resume_stopped
from invariant.projections import ProjectionRunner

log = logging.getLogger("invariant.console")
_rebuilds: set[asyncio.Task[Any]] = set()
"""Rebuilds under way (kept so that they are not collected before they end)."""


async def _runner(desk: Desk, name: str | None = None) -> ProjectionRunner:
    operated = desk.operated
    runner = projection_runner(operated.parts.projections, operated.database, operated.name,
                               name)
    await runner.setup()
    return runner


async def projections_page(desk: Desk) -> Response:
    return desk.render("projections.html", statuses=await (await _runner(desk)).status())


async def projections_table(desk: Desk) -> Response:
    return desk.render("projections_table.html",
                       statuses=await (await _runner(desk)).status())


def _target(desk: Desk) -> tuple[str, int]:
    version = desk.param("version")
    if not version.isdigit() or len(version) > 9:
        raise ConfigurationError(f"{version!r} is not a projection version")
    return desk.param("name"), int(version)


async def pause(desk: Desk) -> Response:
    name, version = _target(desk)
    paused = await (await _runner(desk, name)).pause(name, version=version)
    outcome = "paused" if paused else "not paused: it had failed or was paused already"
    await desk.audit("projection pause", f"{name} v{version}", outcome)
    return desk.redirect("/projections", notice=f"{name} v{version} {outcome}")


async def resume(desk: Desk) -> Response:
    name, version = _target(desk)
    was = await resume_stopped(await _runner(desk, name), name, version)
    outcome = (f"resumed from position {was.error_position or was.checkpoint}"
               if was.state in ("failed", "paused") else f"not resumed: it was {was.state}")
    await desk.audit("projection resume", f"{name} v{version}", outcome)
    return desk.redirect("/projections", notice=f"{name} v{version} {outcome}")


def _position(desk: Desk) -> int:
    text = desk.form.get("from", "0").strip() or "0"
    if not text.isdigit() or len(text) > 18:
        raise ConfigurationError(f"rebuild from {text!r}: give a position, a whole number "
                                 "from 0 (0 rebuilds from the start)")
    return int(text)


async def rebuild(desk: Desk) -> Response:
    name, version = _target(desk)
    position = _position(desk)
    runner = await _runner(desk, name)
    await _start(lambda: runner.rebuild(name, from_position=position, version=version),
                 f"{name} v{version}")
    await desk.audit("projection rebuild", f"{name} v{version}",
                     f"started from position {position}")
    return desk.redirect("/projections", notice=f"{name} v{version} is rebuilding from "
                         f"position {position}")


async def _start(work: Callable[[], Coroutine[Any, Any, int]], what: str) -> None:
    """Run a rebuild in the background (the page shows its progress as the lag); one that
    is refused or fails at once raises here, for the page to say why."""
    task = asyncio.create_task(work(), name=f"console rebuild {what}")
    _rebuilds.add(task)
    task.add_done_callback(functools.partial(_ended, what))
    # A small rebuild is done before the page comes back; a long one shows its progress.
    await asyncio.wait({task}, timeout=1.0)
    failure = task.exception() if task.done() else None
    if failure is not None:
        raise failure


def _ended(what: str, task: asyncio.Task[int]) -> None:
    _rebuilds.discard(task)
    if task.cancelled():
        return
    exc = task.exception()
    if exc is None:
        log.info("console: rebuild of %s reached position %s", what, task.result())
    else:
        log.error("console: rebuild of %s stopped: %s", what, exc)


async def switch(desk: Desk) -> Response:
    name, version = _target(desk)
    await (await _runner(desk, name)).switch(name, version)
    await desk.audit("projection switch", f"{name} v{version}", "queries read it now")
    return desk.redirect("/projections", notice=f"queries of {name} read version {version}")


async def retire(desk: Desk) -> Response:
    name, version = _target(desk)
    await (await _runner(desk, name)).retire(name, version)
    await desk.audit("projection retire", f"{name} v{version}", "tables dropped")
    return desk.redirect("/projections", notice=f"{name} v{version} retired")

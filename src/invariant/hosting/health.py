"""How a running host is: whether it may take traffic (readiness), and what needs an
operator (failed projections, parked processes, dead letters, dead jobs).

Readiness fails when a request could not be served well: the database does not answer, an
active projection failed or lags more than a bound (its reads would be wrong or stale), or
the broker does not answer (nothing would move between contexts). Parked processes, dead
letters and dead jobs need an operator but do not stop the host from serving: they are
reported, never a reason to take it out of a load balancer.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Column, ColumnElement, Connection, func, select

from invariant.messaging import deadletters, jobs
from invariant.messaging.relay import RelayLag
from invariant.processes import persistence
from invariant.projections.status import ProjectionStatus

if TYPE_CHECKING:
    from invariant.hosting.host import Host

TIMEOUT = 2.0
"""Seconds the database has to answer a check."""
log = logging.getLogger("invariant.health")


@dataclass(frozen=True, slots=True)
class Attention:
    """What waits for an operator, counted by process kind, consumer and job name."""

    parked_processes: dict[str, int] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)
    dead_jobs: dict[str, int] = field(default_factory=dict)
    pending_jobs: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Health:
    """The host as its database, projections and broker show it now."""

    reasons: list[str]
    """Why the host should not take traffic (empty: ready)."""
    projections: list[ProjectionStatus]
    attention: Attention | None
    """None when the database did not answer."""

    @property
    def ready(self) -> bool:
        return not self.reasons


async def check(host: Host, *, max_lag: float) -> Health:
    """Ask the database, the projections and the broker watch how ``host`` is; a
    projection more than ``max_lag`` seconds behind makes it not ready."""
    reasons: list[str] = []
    projections: list[ProjectionStatus] = []
    attention: Attention | None = None
    try:
        async with asyncio.timeout(TIMEOUT):
            await host.app.storage.head_position()
            if host.app.projections is not None:
                projections = await host.app.projections.status()
            if host.read_models is not None:
                attention = await host.read_models.run(_attention, write=False)
    except Exception as exc:  # any failure to answer is the reason, whatever raised it
        log.warning("readiness: the database did not answer", exc_info=exc)
        reasons.append(f"the database does not answer ({type(exc).__name__}); "
                       "see the log")
    reasons += [_projection_problem(p, max_lag) for p in projections if p.active
                and (p.state == "failed" or p.lag_seconds > max_lag)]
    watch = host.broker_watch
    if watch is not None and watch.failing:
        reasons.append(f"the broker ({watch.name}) does not answer since "
                       f"{watch.failing_since:%Y-%m-%dT%H:%M:%SZ}")
    return Health(reasons, projections, attention)


async def outbox_lag(host: Host) -> RelayLag | None:
    """The outbox rows not relayed yet and the oldest one's age (None: no answer, or no
    relay in this host)."""
    if host.relay is None:
        return None
    try:
        async with asyncio.timeout(TIMEOUT):
            return await host.relay.lag()
    except Exception as exc:  # reported as unknown; check() says why the host is not ready
        log.warning("status: the outbox did not answer", exc_info=exc)
        return None


def _projection_problem(status: ProjectionStatus, max_lag: float) -> str:
    if status.state == "failed":
        return (f"projection {status.name} v{status.version} failed at event "
                f"{status.error_position}")
    return (f"projection {status.name} v{status.version} is {status.lag_events} events and "
            f"{status.lag_seconds:.0f} s behind (the bound is {max_lag:g} s)")


def _attention(conn: Connection) -> Attention:
    processes, letters, queued = persistence.processes, deadletters.dead_letters, jobs.jobs
    return Attention(
        _counts(conn, processes.c.kind, processes.c.status == persistence.NEEDS_ATTENTION),
        _counts(conn, letters.c.consumer),
        _counts(conn, queued.c.name, queued.c.state == jobs.DEAD),
        _counts(conn, queued.c.name, queued.c.state == jobs.PENDING))


def _counts(conn: Connection, key: Column[str], *where: ColumnElement[bool]
            ) -> dict[str, int]:
    query = select(key, func.count()).where(*where).group_by(key)
    return {str(name): int(count) for name, count in conn.execute(query)}

"""Operating projections: the runner over an application's projections, and resuming one
that stopped (failed, or paused by an operator)."""

from __future__ import annotations

from invariant.domain.errors import ConfigurationError
from invariant.projections import ProjectionRunner, ProjectionSet, ProjectionStatus, checkpoints
from invariant.sql.database import ReadModelDatabase


def projection_runner(found: ProjectionSet | None, database: ReadModelDatabase, named: str,
                      name: str | None = None) -> ProjectionRunner:
    """A runner over the projections of the application ``named`` (not set up yet);
    ``name``, when given, must be one of them."""
    if found is None or not found.projections:
        raise ConfigurationError(f"{named} has no projections")
    known = sorted({p.name for p in found.projections})
    if name is not None and name not in known:
        raise ConfigurationError(f"no projection {name!r} in {named}; known: {', '.join(known)}")
    return ProjectionRunner(found.store, database, found.projections)


async def resume_stopped(runner: ProjectionRunner, name: str, version: int | None = None
                         ) -> ProjectionStatus:
    """Resume projection ``name`` (its active version unless ``version`` is given) if it
    failed or was paused; its status before (a running one is left as it is)."""
    found = next((s for s in await runner.status() if s.name == name and (
        s.version == version if version is not None else s.active)), None)
    if found is None:
        raise ConfigurationError(f"no projection {name!r} version {version}")
    if found.state in checkpoints.STOPPED:
        await runner.resume(name, version=found.version)
    return found

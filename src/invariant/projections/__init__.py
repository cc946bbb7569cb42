"""Projections: read models built from the event log, kept up to date exactly once.

See :class:`ProjectionRunner` for how pages are applied, :class:`Projection` for what a
read model declares, and :mod:`invariant.projections.cache` for the query cache.
"""

from invariant.projections.cache import MISSING, InMemoryCache, QueryCache, cached
from invariant.projections.checkpoints import Checkpoint
from invariant.projections.consistency import wait_until
from invariant.projections.projection import Projection, ProjectionSet
from invariant.projections.runner import Progress, ProjectionRunner, active_version
from invariant.projections.status import ProjectionStatus
from invariant.retry import RetryPolicy
from invariant.sql.database import (
    Lease,
    PostgresReadModels,
    ReadModelDatabase,
    SQLiteReadModels,
)

__all__ = [
    "MISSING",
    "Checkpoint",
    "InMemoryCache",
    "Lease",
    "PostgresReadModels",
    "Progress",
    "Projection",
    "ProjectionRunner",
    "ProjectionSet",
    "ProjectionStatus",
    "QueryCache",
    "ReadModelDatabase",
    "RetryPolicy",
    "SQLiteReadModels",
    "active_version",
    "cached",
    "wait_until",
]

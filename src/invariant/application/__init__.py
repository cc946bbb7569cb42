"""Application layer: repositories and the unit of work (buses come with the CQRS layer)."""

from invariant.application.repository import Repository, SnapshotPolicy
from invariant.application.unit_of_work import Aggregates, Outcome, UnitOfWork

__all__ = ["Aggregates", "Outcome", "Repository", "SnapshotPolicy", "UnitOfWork"]

"""What an application tells ``invariant``'s operator commands about itself.

``INVARIANT_APP=package.module:attribute`` (or ``invariant --app ...``) names an object
with the two methods of :class:`Operable`: where the application keeps its data (its
settings, e.g. shop's SQLite file under ``SHOP_DATA``) and its parts (projections,
consumers, job handlers) wired to the storage and database the command opened. Every
application built on invariant gives one, so that one generic command line operates them
all::

    class BankOperations:
        def settings(self) -> Settings:
            return Settings.from_env()

        def parts(self, storage: EventStorage, database: ReadModelDatabase) -> Parts:
            return Parts(projections=ProjectionSet(bank_store(storage), bank_projections()))

    operations = BankOperations()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from invariant.config import Settings
from invariant.store.port import EventStorage

if TYPE_CHECKING:  # SQLAlchemy and the messaging modules only where they are used
    from invariant.messaging.consumer import Consumer
    from invariant.messaging.jobs import JobHandler
    from invariant.projections import ProjectionSet, ReadModelDatabase


@dataclass(frozen=True)
class Parts:
    """The parts of an application an operator command may run: its projections (with the
    event store they read), its consumers (by group name) and its job handlers."""

    projections: ProjectionSet | None = None
    consumers: Sequence[Consumer] = ()
    jobs: Mapping[str, JobHandler] = field(default_factory=dict)


@runtime_checkable
class Operable(Protocol):
    """An application ``invariant`` can operate (see the module docstring)."""

    def settings(self) -> Settings:
        """Where the application keeps its data: the settings it runs with."""
        ...

    def parts(self, storage: EventStorage, database: ReadModelDatabase) -> Parts:
        """Its projections, consumers and job handlers on ``storage`` and ``database``
        (both opened by the command, which closes them); building them starts nothing."""
        ...


__all__ = ["Operable", "Parts"]

"""What the console operates: one running application, as it hands itself over."""

from __future__ import annotations

from dataclasses import dataclass

from invariant.console.gate import Gate
from invariant.domain.errors import ConfigurationError
from invariant.operable import Parts
from invariant.sql.database import ReadModelDatabase
from invariant.store.port import EventStorage


@dataclass(frozen=True)
class Operated:
    """The application the console shows and acts on: its name (for titles), its event
    storage (the streams page needs a :class:`~invariant.store.StreamCatalog`), its
    database, its parts (projections, consumers, job handlers, as the ``invariant`` command
    line gets them), the :class:`Gate` of its accounts, and the secret (32 characters or
    more) the console's CSRF tokens are signed with."""

    name: str
    storage: EventStorage
    database: ReadModelDatabase
    parts: Parts
    gate: Gate
    secret: str

    def __post_init__(self) -> None:
        if len(self.secret) < 32:
            raise ConfigurationError("the console's secret must be at least 32 characters")

"""invariant: Domain-Driven Design, CQRS and event sourcing for Python.

The supported surface is re-exported here and in the subpackages' ``__init__`` modules:
``invariant.domain`` (the pure model kit), ``invariant.store`` (event store and adapters),
``invariant.application`` (repositories, unit of work), ``invariant.testing`` (test kit).
"""

from invariant.application import Aggregates, Outcome, Repository, SnapshotPolicy, UnitOfWork
from invariant.bootstrap import App, bootstrap, open_storage
from invariant.config import Settings
from invariant.store import EventRegistry, EventStore, StreamState, Upcasters

__version__ = "0.1.0"

__all__ = [
    "Aggregates",
    "App",
    "EventRegistry",
    "EventStore",
    "Outcome",
    "Repository",
    "Settings",
    "SnapshotPolicy",
    "StreamState",
    "UnitOfWork",
    "Upcasters",
    "__version__",
    "bootstrap",
    "open_storage",
]

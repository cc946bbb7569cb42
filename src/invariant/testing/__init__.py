"""Test kit for users of invariant: a controllable clock, given/when/then for aggregates,
projections, process managers and sagas (``AggregateScenario``, ``ProjectionScenario``,
``ProcessScenario``, ``SagaScenario``) and adapter contract suites.

``EventStorageContract`` needs pytest (and pytest-asyncio in auto mode); import it from
``invariant.testing.event_storage_contract`` in your own test modules.
"""

from invariant.testing.aggregates import AggregateScenario
from invariant.testing.clock import ManualClock
from invariant.testing.processes import ProcessScenario, RecordingSender, SagaScenario
from invariant.testing.projections import ProjectionScenario

__all__ = [
    "AggregateScenario",
    "ManualClock",
    "ProcessScenario",
    "ProjectionScenario",
    "RecordingSender",
    "SagaScenario",
]

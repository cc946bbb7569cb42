"""Test kit for users of invariant: a controllable clock, given/when/then for aggregates,
projections, process managers and sagas (``AggregateScenario``, ``ProjectionScenario``,
``ProcessScenario``, ``SagaScenario``) and adapter contract suites.

The contract suites need pytest (and pytest-asyncio in auto mode); import them from their
modules in your own test modules: ``event_storage_contract.EventStorageContract``,
``broker_contract.BrokerContract``, ``database_contract.DatabaseContract`` (the SQL
database handle) and ``job_queue_contract.JobQueueContract`` (a way of running jobs).
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

"""Test kit for users of invariant: a controllable clock, given/when/then for process
managers and sagas (``ProcessScenario``, ``SagaScenario``) and adapter contract suites.

The contract suites need pytest (and pytest-asyncio in auto mode); import them from their
modules in your own test modules: ``event_storage_contract.EventStorageContract``,
``broker_contract.BrokerContract``, ``database_contract.DatabaseContract`` (the SQL
database handle) and ``job_queue_contract.JobQueueContract`` (a way of running jobs).
"""

from invariant.testing.clock import ManualClock
from invariant.testing.processes import ProcessScenario, RecordingSender, SagaScenario

__all__ = ["ManualClock", "ProcessScenario", "RecordingSender", "SagaScenario"]

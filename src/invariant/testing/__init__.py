"""Test kit for users of invariant: a controllable clock, given/when/then for process
managers and sagas (``ProcessScenario``, ``SagaScenario``) and adapter contract suites.

``EventStorageContract`` needs pytest (and pytest-asyncio in auto mode); import it from
``invariant.testing.event_storage_contract`` in your own test modules.
"""

from invariant.testing.clock import ManualClock
from invariant.testing.processes import ProcessScenario, RecordingSender, SagaScenario

__all__ = ["ManualClock", "ProcessScenario", "RecordingSender", "SagaScenario"]

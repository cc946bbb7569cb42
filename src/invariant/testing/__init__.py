"""Test kit for users of invariant: a controllable clock and adapter contract suites.

``EventStorageContract`` needs pytest (and pytest-asyncio in auto mode); import it from
``invariant.testing.event_storage_contract`` in your own test modules.
"""

from invariant.testing.clock import ManualClock

__all__ = ["ManualClock"]

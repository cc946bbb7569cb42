"""Sagas and process managers that survive crashes and time out on time.

* :class:`Saga` / :class:`Step` / :class:`SagaOrchestrator`: orchestrated sagas, state
  persisted before and after each step, compensations in reverse order.
* :class:`ProcessManager` / :class:`ProcessRunner`: state machines correlated by a key of
  the events they handle; state and commands committed together, durable deadlines.
"""

from invariant.processes.dispatch import CommandCodec, CommandDispatcher
from invariant.processes.manager import Process, ProcessManager, command_id_for
from invariant.processes.persistence import (
    ACTIVE,
    COMPENSATING,
    COMPLETED,
    FAILED,
    NEEDS_ATTENTION,
    RUNNING,
    STATUSES,
    ProcessRecord,
)
from invariant.processes.runner import ProcessRunner, setup_tables
from invariant.processes.saga import Saga, SagaOrchestrator, Step, StepContext, resume_parked
from invariant.retry import RetryPolicy

__all__ = [
    "ACTIVE",
    "COMPENSATING",
    "COMPLETED",
    "FAILED",
    "NEEDS_ATTENTION",
    "RUNNING",
    "STATUSES",
    "CommandCodec",
    "CommandDispatcher",
    "Process",
    "ProcessManager",
    "ProcessRecord",
    "ProcessRunner",
    "RetryPolicy",
    "Saga",
    "SagaOrchestrator",
    "Step",
    "StepContext",
    "command_id_for",
    "resume_parked",
    "setup_tables",
]

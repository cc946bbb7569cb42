"""Hosting: the one composition root of an application built on invariant.

A bounded context contributes a :class:`Module`; :func:`bootstrap` composes modules into
one :class:`Host` that runs the :class:`Role` s a process is for (all of them in one
process, or some of them, for some modules, in a service) and reports its health.
"""

from invariant.hosting.adapters import open_broker, open_job_queue, open_read_models, open_storage
from invariant.hosting.application import App, build_app
from invariant.hosting.bootstrap import bootstrap
from invariant.hosting.composition import Composition, compose
from invariant.hosting.host import Host
from invariant.hosting.module import Module, Provision
from invariant.hosting.roles import ALL_ROLES, SERVICE_ROLES, Role, roles_from

__all__ = [
    "ALL_ROLES",
    "SERVICE_ROLES",
    "App",
    "Composition",
    "Host",
    "Module",
    "Provision",
    "Role",
    "bootstrap",
    "build_app",
    "compose",
    "open_broker",
    "open_job_queue",
    "open_read_models",
    "open_storage",
    "roles_from",
]

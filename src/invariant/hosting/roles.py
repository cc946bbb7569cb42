"""What a process is for: the roles a :class:`~invariant.hosting.Host` runs.

One process may run every role (the embedded mode), or a deployment may split them: the
HTTP API in some processes, the projections, relay, consumers, job worker and process
runner in others, each scaled on its own. Roles are named as operators write them
(``http``, ``projections``, ...), so a command line or an environment variable can list
them.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from invariant.domain.errors import ConfigurationError


class Role(StrEnum):
    """One kind of work a host runs."""

    HTTP = "http"
    """Its modules' HTTP routes are served (:attr:`Host.routers`)."""
    PROJECTIONS = "projections"
    """The projections follow the event log into the read models."""
    RELAY = "relay"
    """The outbox relay moves committed outbox rows to the broker."""
    CONSUMERS = "consumers"
    """The consumers take their integration messages from the broker."""
    JOBS = "jobs"
    """The job worker runs queued jobs."""
    PROCESSES = "processes"
    """The process runner drives process managers and sagas and fires their deadlines."""
    COMMANDS = "commands"
    """The commands other services' process managers send (:attr:`Module.accepts`) are
    taken from the broker and dispatched here. A service runs it; one process holding every
    module has no one to take them from."""


ALL_ROLES: frozenset[Role] = frozenset(Role) - {Role.COMMANDS}
"""Everything one process holding every module runs: the embedded mode, and the default
of ``bootstrap``."""

SERVICE_ROLES: frozenset[Role] = frozenset(Role)
"""Everything a service (a host running some of the modules) runs."""


def roles_from(names: Iterable[str | Role]) -> frozenset[Role]:
    """The roles ``names`` spell (e.g. ``["http", "projections"]``); a name that is not a
    role is a :class:`ConfigurationError` listing the ones there are."""
    roles: set[Role] = set()
    for name in names:
        try:
            roles.add(Role(str(name).strip().lower()))
        except ValueError:
            known = ", ".join(role.value for role in Role)
            raise ConfigurationError(
                f"{name!r} is not a role; a host runs some of: {known}") from None
    return frozenset(roles)

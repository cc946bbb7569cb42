"""The services mode on one machine: which services run, on which ports, with which
settings (``make run-services``; :mod:`shop.deployment.supervisor` starts them).

Every context is a service of its own, on PostgreSQL as its own role in its own schema
(analytics keeps its counters in Redis), talking to the others through NATS JetStream;
ordering and notifications run twice (their workers share the work through leases and
consumer groups). A gateway in front serves the single process's API. On several machines
the same settings apply per service: see
``docs/how-to/services.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shop.platform.contexts import CONTEXTS
from shop.platform.ownership import Ownership, ownership, service_dsn
from shop.platform.registry import setting

REPLICAS: Mapping[str, int] = {"ordering": 2, "notifications": 2}
"""Contexts run more than once (the others once)."""

PASSED_ON = ("SHOP_PAYMENT_TIMEOUT", "SHOP_RESERVATION_TIMEOUT", "SHOP_PROVIDER_TIMEOUT",
             "SHOP_TOKEN_TTL", "SHOP_SAMPLE_CATALOG", "SHOP_MAX_BODY", "SHOP_READY_MAX_LAG",
             "SHOP_BACKLOG_LIMIT", "SHOP_BACKLOG_WAIT", "SHOP_BACKLOG_OLDEST",
             "SHOP_MAX_IN_FLIGHT", "SHOP_ADMIN_EMAIL", "INVARIANT_LOG_FORMAT",
             "INVARIANT_LOG_LEVEL")
"""Settings of the supervisor's environment every service gets as they are."""
UNBOUNDED_AGE = {"SHOP_BACKLOG_OLDEST": "0"}
"""Unless the supervisor is given one: no bound on the oldest item's wait in a service.
One process's 0.5 s is below what a hop between services takes (a message through NATS
into a process that waits for a CPU; 1 to 2 s measured at 32 customers), and was not
measured for the set."""


@dataclass(frozen=True)
class Service:
    """One process of the set: a context's instance and the port its HTTP API is on."""

    name: str
    """``ordering`` or, for a second instance, ``ordering-2``."""
    context: str
    port: int


@dataclass(frozen=True)
class Plan:
    """Where everything goes; :meth:`environment` is each process's settings."""

    admin_dsn: str
    """PostgreSQL, as an account that may create roles (provisioning only)."""
    broker_url: str
    channel: str
    """The NATS stream every service shares (``INVARIANT_BROKER_CHANNEL``)."""
    data: Path
    """Where the shared secret, the admin password, the mail sink's files and the logs go
    (the single process's ``SHOP_DATA``, so ``make demo DEMO_URL=…`` finds them)."""
    secret: str
    admin_password: str
    host: str = "127.0.0.1"
    gateway_port: int = 8000
    first_port: int = 8101
    smtp_port: int = 8025
    prefix: str = "shop_"
    """Role and schema names: prefix + context."""
    pool: int = 3
    """Connections each service may hold at once, per pool (the event store's and the
    tables'): thirteen processes share one server's ``max_connections``."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    """Where analytics keeps its counters (the third kind of storage of the set)."""
    replicas: Mapping[str, int] = field(default_factory=lambda: dict(REPLICAS))
    passed_on: Mapping[str, str] = field(default_factory=dict)
    """Settings every service gets as they are (see :data:`PASSED_ON`)."""

    @property
    def services(self) -> list[Service]:
        """Every service, in start-up order, each instance on its own port."""
        found: list[Service] = []
        for context in CONTEXTS:
            for n in range(1, self.replicas.get(context, 1) + 1):
                name = context if n == 1 else f"{context}-{n}"
                found.append(Service(name, context, self.first_port + len(found)))
        return found

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(f"no service {name!r}; the set has: "
                       f"{', '.join(s.name for s in self.services)}")

    def url(self, service: Service) -> str:
        return f"http://{self.host}:{service.port}"

    @property
    def registry(self) -> dict[str, str]:
        """``SHOP_SERVICE_<CONTEXT>_URL`` of each context: its instances' URLs (callers
        take them in turn)."""
        found: dict[str, list[str]] = {}
        for service in self.services:
            found.setdefault(setting(service.context), []).append(self.url(service))
        return {key: ",".join(urls) for key, urls in found.items()}

    def owner(self, context: str) -> Ownership:
        return ownership(context, self.prefix)

    def store(self, context: str) -> dict[str, str]:
        """The event store and tables of ``context``: its role, its schema."""
        owner = self.owner(context)
        return {"INVARIANT_STORE": "postgres",
                "INVARIANT_POSTGRES_DSN": service_dsn(self.admin_dsn, owner),
                "INVARIANT_POSTGRES_SCHEMA": owner.schema,
                "INVARIANT_POSTGRES_POOL": str(self.pool)}

    def shared(self) -> dict[str, str]:
        """What every process of the set is given alike."""
        return {**UNBOUNDED_AGE, **self.passed_on, **self.registry,
                "SHOP_HOST": self.host, "SHOP_SECRET": self.secret,
                "SHOP_ADMIN_PASSWORD": self.admin_password,
                "INVARIANT_BROKER": "nats", "INVARIANT_BROKER_URL": self.broker_url,
                "INVARIANT_BROKER_CHANNEL": self.channel}

    def environment(self, service: Service) -> dict[str, str]:
        """The settings of ``service`` (the mail goes to the supervisor's sink)."""
        own = {}
        if service.context == "analytics":
            own = {"SHOP_ANALYTICS_REDIS_URL": self.redis_url,
                   "SHOP_ANALYTICS_REDIS_PREFIX": self.redis_prefix}
        return {**self.shared(), **self.store(service.context), **own,
                "SHOP_PORT": str(service.port), "SHOP_DATA": str(self.data / service.name),
                "SHOP_MAIL_SINK": "off", "SHOP_SMTP_HOST": self.host,
                "SHOP_SMTP_PORT": str(self.smtp_port)}

    @property
    def redis_prefix(self) -> str:
        """Analytics' keys in Redis: one set of them per stream of the set."""
        return f"{self.channel}:analytics:{{report}}:"

    def gateway_environment(self) -> dict[str, str]:
        return {**self.shared(), "SHOP_PORT": str(self.gateway_port),
                "SHOP_DATA": str(self.data / "gateway")}

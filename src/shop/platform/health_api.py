"""Health over HTTP: ``/health`` (liveness), ``/ready`` (readiness) and ``/status`` (what an
operator should look at).

``/health`` does no I/O: it says the process answers, so a restart is the cure only when it
does not. ``/ready`` asks the database, the projections and the broker (503 with the
reasons when the shop should not take traffic); it needs no token, for load balancers and
orchestrators, so it names things and counts them but shows no error text. ``/status``
is for admins: the error texts of failed projections and of the broker may quote event data
or a server's address.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from invariant.hosting.health import Attention, Health, check, outbox_lag
from invariant.http import MEDIA_TYPE
from invariant.messaging.relay import RelayLag
from shop.platform.auth import AdminUser
from shop.platform.runtime import Shop

NOT_READY = "urn:shop:problem:not-ready"


class Alive(BaseModel):
    """The process answers."""

    status: Literal["ok"] = "ok"


class AttentionOut(BaseModel):
    """What waits for an operator (see ``/status`` for where)."""

    parked_processes: int
    dead_letters: int
    dead_jobs: int

    @classmethod
    def of(cls, attention: Attention) -> AttentionOut:
        return cls(parked_processes=sum(attention.parked_processes.values()),
                   dead_letters=sum(attention.dead_letters.values()),
                   dead_jobs=sum(attention.dead_jobs.values()))


class Ready(BaseModel):
    """The shop may take traffic; ``attention`` counts what an operator should look at."""

    status: Literal["ready"] = "ready"
    attention: AttentionOut


class NotReady(BaseModel):
    """503 (problem+json): the shop should not take traffic; ``reasons`` say why."""

    type: str
    title: str
    status: int
    detail: str
    reasons: list[str]
    attention: AttentionOut | None


class ProjectionOut(BaseModel):
    """A projection version: where it is, how far behind, and why it stopped."""

    name: str
    version: int
    active: bool
    state: str
    checkpoint: int
    lag_events: int
    lag_seconds: float
    error: str | None
    error_position: int | None
    attempts: int


class BrokerOut(BaseModel):
    """The broker as the relay and the consumers find it (``none``: this process runs
    neither)."""

    name: str
    failing_since: datetime | None
    last_error: str | None


class Status(BaseModel):
    """Everything ``/ready`` checks, with the details an operator needs."""

    ready: bool
    reasons: list[str]
    store: str
    broker: BrokerOut
    outbox_pending: int | None
    """Outbox rows not relayed to the broker yet (null: the database did not answer)."""
    outbox_oldest_seconds: float | None
    """How long the oldest of them has waited."""
    projections: list[ProjectionOut]
    parked_processes: dict[str, int] | None
    """Processes parked as needs-attention, by kind (null: the database did not answer)."""
    dead_letters: dict[str, int] | None
    """Messages a consumer parked, by consumer."""
    dead_jobs: dict[str, int] | None
    """Jobs that used up their attempts, by job name."""


async def _running_shop(request: Request) -> Shop:
    shop: Shop = request.app.state.shop
    return shop


ShopDep = Annotated[Shop, Depends(_running_shop)]


def router() -> APIRouter:
    api = APIRouter(tags=["health"])

    @api.get("/health", summary="Liveness: the process answers (no I/O)")
    async def alive() -> Alive:
        return Alive()

    @api.get("/ready", summary="Readiness: the database answers, projections are current, "
                               "the broker answers", response_model=Ready,
             responses={503: {"description": "Not ready (problem+json)",
                              "content": {MEDIA_TYPE: {"schema": _schema(NotReady)}}}})
    async def ready(shop: ShopDep) -> Any:
        health = await check(shop.host, max_lag=shop.settings.ready_max_lag)
        attention = None if health.attention is None else AttentionOut.of(health.attention)
        if health.ready:
            assert attention is not None
            return Ready(attention=attention)
        problem = NotReady(type=NOT_READY, title="Not ready", status=503,
                           detail="; ".join(health.reasons), reasons=health.reasons,
                           attention=attention)
        return JSONResponse(problem.model_dump(), 503, {"Retry-After": "5"},
                            media_type=MEDIA_TYPE)

    @api.get("/status", summary="What an operator should look at (admins only)")
    async def status(shop: ShopDep, admin: AdminUser) -> Status:
        health = await check(shop.host, max_lag=shop.settings.ready_max_lag)
        return _status(shop, health, await outbox_lag(shop.host))

    return api


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON Schema for a response documented by hand, its nested models
    referred to in the document's components (where the routes' own models put them)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return schema


def _status(shop: Shop, health: Health, lag: RelayLag | None) -> Status:
    attention = health.attention
    watch = shop.host.broker_watch
    broker = (BrokerOut(name="none", failing_since=None, last_error=None) if watch is None
              else BrokerOut(name=watch.name, failing_since=watch.failing_since,
                             last_error=watch.last_error))
    return Status(
        ready=health.ready, reasons=health.reasons, store=shop.settings.invariant.store,
        broker=broker,
        outbox_pending=None if lag is None else lag.pending,
        outbox_oldest_seconds=None if lag is None else lag.oldest_age_seconds,
        projections=[ProjectionOut(
            name=p.name, version=p.version, active=p.active, state=p.state,
            checkpoint=p.checkpoint, lag_events=p.lag_events, lag_seconds=p.lag_seconds,
            error=p.error, error_position=p.error_position, attempts=p.attempts)
            for p in health.projections],
        parked_processes=None if attention is None else attention.parked_processes,
        dead_letters=None if attention is None else attention.dead_letters,
        dead_jobs=None if attention is None else attention.dead_jobs)

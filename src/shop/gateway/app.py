"""The gateway: shop's one public HTTP entry when its contexts run as services.

It serves the single process's OpenAPI document, so a client cannot tell the two apart;
checks access tokens at the edge (signature and expiry: a forged or expired token never
reaches a service); sends each request to the service of the context that owns its route
(``SHOP_SERVICE_<CONTEXT>_URL``), with a correlation id; and answers for a service that
is down, slow or failing with 503 problem+json and ``Retry-After``, at once while that
service's circuit is open.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from invariant.domain.errors import UnavailableError
from invariant.http import MEDIA_TYPE, BodyLimit, HttpService, install_error_handlers
from invariant.http.correlation import CorrelationIds
from invariant.http.errors import method_not_allowed
from invariant.http.methods import METHODS
from invariant.telemetry.correlation import correlation_id
from shop.gateway.proxy import forward
from shop.gateway.routes import PublishedApi
from shop.platform.auth import Tokens
from shop.platform.docs import install_docs
from shop.platform.errors import NotAuthenticated
from shop.platform.health_api import NOT_READY, Alive, AttentionOut, NotReady, Ready


def create_gateway(api: PublishedApi, services: Mapping[str, HttpService], tokens: Tokens,
                   *, max_body: int) -> FastAPI:
    """The gateway's app; its lifespan closes the services' clients."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            for client in services.values():
                await client.aclose()

    info = api.openapi["info"]
    app = FastAPI(title=info["title"], version=info["version"], lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=max_body)
    app.add_middleware(CorrelationIds)  # outermost: a refusal names its request too
    install_docs(app)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(api.openapi)

    @app.get("/health", include_in_schema=False)
    async def alive() -> Alive:
        return Alive()

    @app.get("/ready", include_in_schema=False)
    async def ready() -> Any:
        return await _readiness(services)

    @app.api_route("/{path:path}", methods=list(METHODS), include_in_schema=False)
    async def route(request: Request) -> Response:
        published = api.find(request.scope)
        if published is None:
            if allowed := api.allowed(request.scope):
                return method_not_allowed(request, allowed)
            raise HTTPException(404, "Not Found")
        if published.secured:
            _authenticate(request, tokens)
        # A service that does not answer: 503 with Retry-After when the request may be
        # sent again, 504 "outcome unknown" when it may not and may have been carried out
        # (ServiceClient's OutcomeUnknownError: a 503 would have a client place an order
        # twice).
        correlation = correlation_id()
        assert correlation is not None  # CorrelationIds set it for this request
        return await forward(services[published.context], request, correlation)

    return app


def _authenticate(request: Request, tokens: Tokens) -> None:
    """At the edge: a token this shop signed and that has not expired (the service still
    checks that its account exists and has not revoked it)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("this needs an access token: Authorization: Bearer <token> "
                               "(get one from POST /identity/login)")
    tokens.verify(token.strip())


async def _readiness(services: Mapping[str, HttpService]) -> Any:
    """Ready when every service is; the attention counts are their sums."""
    names = sorted(services)
    answers = await asyncio.gather(*(_ready(services[name]) for name in names))
    reasons = [f"{name}: {answer}" for name, answer in zip(names, answers, strict=True)
               if isinstance(answer, str)]
    counts = [a for a in answers if isinstance(a, AttentionOut)]
    attention = AttentionOut(
        parked_processes=sum(c.parked_processes for c in counts),
        dead_letters=sum(c.dead_letters for c in counts),
        dead_jobs=sum(c.dead_jobs for c in counts))
    if not reasons:
        return Ready(attention=attention)
    problem = NotReady(type=NOT_READY, title="Not ready", status=503,
                       detail="; ".join(reasons), reasons=reasons, attention=None)
    return JSONResponse(problem.model_dump(), 503, {"Retry-After": "5"},
                        media_type=MEDIA_TYPE)


async def _ready(client: HttpService) -> AttentionOut | str:
    try:
        answer = await client.request("GET", "/ready")
    except UnavailableError as exc:
        return str(exc)
    if answer.status_code != 200:
        return f"its /ready answered {answer.status_code}"
    try:
        return Ready.model_validate_json(answer.content).attention
    except ValidationError:
        return "its /ready answer is not a readiness report"

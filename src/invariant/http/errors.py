"""Domain errors at the HTTP boundary: RFC 9457 problem details (``application/problem+json``).

=====================================  ======  =============================================
error                                  status  body, beyond type/title/status/detail
=====================================  ======  =============================================
ValidationError (and request bodies    422     ``errors``: [{field, message, code}, ...]
FastAPI could not parse)
other DomainError (a business rule)    422     —
NotFoundError                          404     —
UniquenessError                        409     ``fields``: the unique field(s)
ConcurrencyError                       409     ``retryable``: true; ``Retry-After: 0`` header
other ConflictError                    409     —
UnavailableError (another service      503     ``retry_after`` (seconds); also the
down, slow, failing; circuit open)             ``Retry-After`` header (whole seconds, >= 1)
OutcomeUnknownError (a call that may   504     ``service``; no ``Retry-After``: read the
not be repeated got no answer)                 state before sending the request again
anything else (incl. store errors)     500     ``error_id`` to find the logged traceback;
                                               never the exception's text or a traceback
a method the path does not support     405     ``allowed``: every method of the path, also
                                               in the ``Allow`` header
=====================================  ======  =============================================
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from invariant.contracts.problems import code_for
from invariant.domain.errors import (
    ConcurrencyError,
    ConflictError,
    DomainError,
    FieldError,
    InvariantError,
    NotFoundError,
    OutcomeUnknownError,
    UnavailableError,
    UniquenessError,
    ValidationError,
)
from invariant.http.methods import allowed_methods

MEDIA_TYPE = "application/problem+json"
_TYPE = "urn:invariant:problem:"
log = logging.getLogger("invariant.http")


@dataclass(frozen=True, slots=True)
class Problem:
    """An HTTP error response: status, problem+json body and extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def problem_for(exc: BaseException) -> Problem:
    """The response for ``exc`` (see the module's table). Pure: it neither logs nor raises."""
    if isinstance(exc, ValidationError):
        return _problem(422, "validation", "Invalid input", str(exc),
                        errors=[e.to_json() for e in exc.errors])
    if isinstance(exc, DomainError):
        return _problem(422, "business-rule", "Refused by a business rule", str(exc))
    if isinstance(exc, NotFoundError):
        return _problem(404, "not-found", "Not found", str(exc))
    if isinstance(exc, UniquenessError):
        return _problem(409, "already-exists", "Already exists", str(exc),
                        fields=list(exc.fields))
    if isinstance(exc, ConcurrencyError):
        problem = _problem(409, "concurrency", "Changed concurrently",
                           "the resource was changed by another request since it was read; "
                           "retry the request", retryable=True)
        return Problem(problem.status, problem.body, {"Retry-After": "0"})
    if isinstance(exc, ConflictError):
        return _problem(409, "conflict", "Conflict", str(exc))
    if isinstance(exc, OutcomeUnknownError):
        return _problem(504, "outcome-unknown", "Outcome unknown", str(exc),
                        service=exc.service)
    if isinstance(exc, UnavailableError):
        seconds = max(1, math.ceil(exc.retry_after))
        problem = _problem(503, "unavailable", "Service unavailable", str(exc),
                           retry_after=seconds)
        return Problem(problem.status, problem.body, {"Retry-After": str(seconds)})
    return _problem(500, "internal", "Internal server error",
                    "an unexpected error occurred; report the error_id to the operators",
                    error_id=uuid.uuid4().hex)


def _problem(status: int, kind: str, title: str, detail: str, **extra: Any) -> Problem:
    body = {"type": _TYPE + kind, "title": title, "status": status, "detail": detail, **extra}
    return Problem(status, body)


def response_for(exc: BaseException) -> JSONResponse:
    """The problem+json response for ``exc``; server errors are logged with their id."""
    problem = problem_for(exc)
    if "error_id" in problem.body:
        log.error("unhandled error %s", problem.body["error_id"], exc_info=exc)
    elif problem.status >= 500:
        log.warning("answered %s: %s", problem.status, problem.body["detail"])
    return JSONResponse(problem.body, problem.status, problem.headers, media_type=MEDIA_TYPE)


def request_validation_problem(exc: RequestValidationError) -> ValidationError:
    """FastAPI's request validation errors (a body that is not JSON, a missing query
    parameter) as invariant's ValidationError, with the same codes as contracts."""
    errors = [
        FieldError(".".join(str(p) for p in e.get("loc", ())), str(e.get("msg", "")),
                   code_for(str(e.get("type", "invalid"))))
        for e in exc.errors()
    ]
    return ValidationError(errors or [FieldError("", "invalid request", "invalid")],
                           subject="request")


_HTTP_KINDS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthenticated", "Not signed in"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("too-large", "Request too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    429: ("too-many-requests", "Too many requests"),
}


def http_error_response(exc: StarletteHTTPException) -> JSONResponse:
    """The problem+json answer to an HTTP-level refusal: its status, detail and headers."""
    kind, title = _HTTP_KINDS.get(exc.status_code, ("http-error", "Request refused"))
    problem = _problem(exc.status_code, kind, title, str(exc.detail))
    return JSONResponse(problem.body, problem.status, exc.headers, media_type=MEDIA_TYPE)


def method_not_allowed(request: Request, allowed: list[str]) -> JSONResponse:
    """405 naming, in ``Allow`` and in the detail, every method the path supports."""
    problem = _problem(405, "method-not-allowed", "Method not allowed",
                       f"{request.method} is not supported on {request.url.path}; "
                       f"it supports {', '.join(allowed)}", allowed=allowed)
    return JSONResponse(problem.body, 405, {"Allow": ", ".join(allowed)},
                        media_type=MEDIA_TYPE)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error raised by a route with a problem+json response."""

    async def on_request_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return response_for(request_validation_problem(exc))

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        return response_for(exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code < 400 or exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=exc.headers)
        if exc.status_code == 405 and (
                allowed := allowed_methods(request.app.router.routes, request.scope)):
            return method_not_allowed(request, allowed)
        return http_error_response(exc)

    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(InvariantError, on_error)
    # Starlette answers with this handler, then re-raises so the server sees the crash too.
    app.add_exception_handler(Exception, on_error)

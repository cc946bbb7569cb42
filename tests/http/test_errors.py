"""Domain errors at the HTTP boundary: one route raising each error, through FastAPI."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from invariant.domain import (
    AggregateNotFoundError,
    ConcurrencyError,
    CurrencyMismatchError,
    DuplicateEventError,
    FieldError,
    StoreError,
    UniquenessError,
    ValidationError,
)
from invariant.http import MEDIA_TYPE, install_error_handlers, problem_for

SECRET = "password=hunter2 at /srv/app/internal.py"

ERRORS: dict[str, Exception] = {
    "validation": ValidationError(
        [FieldError("email", "is not a valid email address", "invalid_email"),
         FieldError("age", "is required for active users", "required_when_active")],
        subject="UserProfile"),
    "rule": CurrencyMismatchError("EUR", "USD"),
    "missing": AggregateNotFoundError("User", "u-404"),
    "taken": UniquenessError("User", ("email",)),
    "stale": ConcurrencyError("users-u-1", 1, 2),
    "duplicate": DuplicateEventError(["e-1"]),
    "store": StoreError(SECRET),
    "bug": KeyError(SECRET),
}


class Body(BaseModel):
    count: int


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/raise/{name}")
    async def raise_it(name: str) -> None:
        raise ERRORS[name]

    @app.post("/typed")
    async def typed(body: Body) -> dict[str, int]:
        return {"count": body.count}

    return TestClient(app, raise_server_exceptions=False)


def test_validation_is_422_with_every_field_message_and_code(client: TestClient) -> None:
    response = client.get("/raise/validation")
    assert response.status_code == 422
    assert response.headers["content-type"] == MEDIA_TYPE
    body = response.json()
    assert body["type"] == "urn:invariant:problem:validation" and body["status"] == 422
    assert body["errors"] == [
        {"field": "email", "message": "is not a valid email address", "code": "invalid_email"},
        {"field": "age", "message": "is required for active users",
         "code": "required_when_active"},
    ]


def test_a_body_fastapi_cannot_parse_gets_the_same_shape(client: TestClient) -> None:
    response = client.post("/typed", json={"count": "many"})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "body.count", "message": response.json()["errors"][0]["message"],
         "code": "invalid_type"}]


@pytest.mark.parametrize(
    ("name", "status", "kind"),
    [("rule", 422, "business-rule"), ("missing", 404, "not-found"),
     ("taken", 409, "already-exists"), ("stale", 409, "concurrency"),
     ("duplicate", 409, "conflict")],
)
def test_domain_errors_map_to_their_status(
    client: TestClient, name: str, status: int, kind: str
) -> None:
    response = client.get(f"/raise/{name}")
    assert response.status_code == status
    assert response.json()["type"] == f"urn:invariant:problem:{kind}"
    assert response.json()["detail"]


def test_uniqueness_names_the_fields(client: TestClient) -> None:
    assert client.get("/raise/taken").json()["fields"] == ["email"]


def test_a_concurrency_conflict_says_retry(client: TestClient) -> None:
    response = client.get("/raise/stale")
    assert response.json()["retryable"] is True
    assert response.headers["retry-after"] == "0"
    assert "retry" in response.json()["detail"]


@pytest.mark.parametrize("name", ["store", "bug"])
def test_anything_else_is_500_without_internals(
    client: TestClient, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    response = client.get(f"/raise/{name}")
    assert response.status_code == 500
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail", "error_id"}
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert "KeyError" not in response.text and ".py" not in response.text
    logged = [r for r in caplog.records if r.name == "invariant.http"]
    assert logged and body["error_id"] in logged[0].getMessage()
    assert logged[0].exc_info is not None  # the traceback goes to the log, not the client


def test_problem_for_is_a_pure_function() -> None:
    problem = problem_for(ConcurrencyError("users-u-1", 3, 4))
    assert (problem.status, problem.headers) == (409, {"Retry-After": "0"})
    assert problem_for(ValueError("x")).status == 500


def test_routing_and_parsing_refusals_are_problem_details_too(client: TestClient) -> None:
    unknown = client.get("/no/such/route")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert unknown.json()["type"] == "urn:invariant:problem:not-found"
    wrong_method = client.delete("/typed")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["title"] == "Method not allowed"
    assert "POST" in wrong_method.headers["allow"]  # the headers of the refusal are kept
    garbled = client.post("/typed", content=b"{not json", headers={
        "content-type": "application/json"})
    assert garbled.status_code in (400, 422)
    assert garbled.headers["content-type"] == "application/problem+json"


def test_a_405_names_every_method_of_the_path_not_only_the_first_routes() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/things")
    async def add() -> None: ...

    @app.get("/things")
    async def listing() -> None: ...

    @app.delete("/things/{thing_id}")
    async def remove(thing_id: str) -> None: ...

    @app.patch("/things/{thing_id}")
    async def change(thing_id: str) -> None: ...

    client = TestClient(app)
    refused = client.put("/things")
    assert refused.status_code == 405
    assert refused.headers["content-type"] == MEDIA_TYPE
    assert refused.headers["allow"] == "GET, POST"
    assert refused.json()["allowed"] == ["GET", "POST"]
    assert refused.json()["detail"] == ("PUT is not supported on /things; "
                                        "it supports GET, POST")
    assert client.get("/things/t-1").headers["allow"] == "DELETE, PATCH"

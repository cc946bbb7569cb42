"""The User example over HTTP: valid and invalid input, duplicate email, stale versions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from examples.users.api import create_app
from invariant.contracts.migrations import Migrations, run_sync, upgrade
from invariant.sql.engine import create_engine

MIGRATIONS = Migrations(Path(__file__).resolve().parents[2] / "examples/users/migrations")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path / 'users.db'}"

    async def migrate() -> None:
        engine = create_engine(url)
        await run_sync(engine, upgrade, MIGRATIONS)
        await engine.dispose()

    import asyncio

    asyncio.run(migrate())
    with TestClient(create_app(url), raise_server_exceptions=False) as client:
        yield client


def test_register_show_and_suspend_a_user(client: TestClient) -> None:
    created = client.post("/users", json={"email": "ada@example.com", "status": "active",
                                          "age": 36})
    assert created.status_code == 201
    user = created.json()
    assert user["version"] == 1 and created.headers["etag"] == '"1"'
    shown = client.get(f"/users/{user['id']}").json()
    assert shown == user
    suspended = client.post(f"/users/{user['id']}/suspend", headers={"If-Match": '"1"'})
    assert suspended.json()["status"] == "suspended" and suspended.json()["version"] == 2


def test_invalid_input_lists_every_problem(client: TestClient) -> None:
    response = client.post("/users", json={"email": "nope", "status": "active", "age": 200})
    assert response.status_code == 422
    assert {(e["field"], e["code"]) for e in response.json()["errors"]} == {
        ("email", "invalid_email"), ("age", "too_large")}
    missing_age = client.post("/users", json={"email": "ada@example.com", "status": "active"})
    assert missing_age.json()["errors"] == [
        {"field": "age", "message": "is required for active users",
         "code": "required_when_active"}]
    not_an_object = client.post("/users", json=["ada@example.com"])
    assert not_an_object.status_code == 422
    assert not_an_object.json()["errors"][0]["code"] == "invalid_type"


def test_a_duplicate_email_is_409_naming_the_field(client: TestClient) -> None:
    body = {"email": "ada@example.com", "status": "pending"}
    assert client.post("/users", json=body).status_code == 201
    response = client.post("/users", json=body)
    assert response.status_code == 409
    assert response.json()["fields"] == ["email"]


def test_a_stale_version_is_409_with_a_retry_hint_and_an_unknown_user_404(
    client: TestClient,
) -> None:
    user = client.post("/users", json={"email": "ada@example.com", "status": "pending"}).json()
    assert client.post(f"/users/{user['id']}/suspend", headers={"If-Match": '"1"'}).is_success
    stale = client.post(f"/users/{user['id']}/suspend", headers={"If-Match": '"1"'})
    assert stale.status_code == 409 and stale.json()["retryable"] is True
    assert client.get("/users/nobody").status_code == 404


@pytest.mark.parametrize("if_match", ['"one"', '"-1"', '"1.0"', "W/\"1\""])
def test_an_if_match_that_is_no_version_is_422_naming_the_header(
    client: TestClient, if_match: str
) -> None:
    user = client.post("/users", json={"email": "ada@example.com", "status": "pending"}).json()
    refused = client.post(f"/users/{user['id']}/suspend", headers={"If-Match": if_match})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "If-Match"
    assert client.get(f"/users/{user['id']}").json()["status"] == "pending"


def test_a_repeated_command_refused_by_the_domain_is_422(client: TestClient) -> None:
    user = client.post("/users", json={"email": "ada@example.com", "status": "pending"}).json()
    client.post(f"/users/{user['id']}/suspend")
    again = client.post(f"/users/{user['id']}/suspend")
    assert again.status_code == 422 and "already suspended" in again.json()["detail"]

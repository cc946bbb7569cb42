"""An HTTP API over the User aggregate: errors leave as RFC 9457 problem details."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Body, FastAPI, Header, Response

from examples.users.contracts import UserProfile
from examples.users.domain import User, UserId
from invariant.domain import ConcurrencyError, ValidationError
from invariant.http import install_error_handlers
from invariant.state import StateStoredRepository, create_engine


def create_app(database_url: str) -> FastAPI:
    """The app on ``database_url`` (migrated beforehand with ``invariant contracts upgrade``)."""
    users: list[StateStoredRepository[User]] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(database_url)
        repository = StateStoredRepository(engine, User, UserProfile, id_type=UserId)
        await repository.setup()
        users.append(repository)
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)
    install_error_handlers(app)

    @app.post("/users", status_code=201)
    async def register(body: Annotated[Any, Body()], response: Response) -> dict[str, Any]:
        user = User.register(UserId.new(), body)
        await users[0].save(user)
        return _view(user, response)

    @app.get("/users/{user_id}")
    async def show(user_id: str, response: Response) -> dict[str, Any]:
        return _view(await users[0].get(user_id), response)

    @app.post("/users/{user_id}/suspend")
    async def suspend(
        user_id: str, response: Response, if_match: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        user = await users[0].get(user_id)
        _check_version(user, if_match)
        user.suspend()
        await users[0].save(user)
        return _view(user, response)

    return app


def _check_version(user: User, if_match: str | None) -> None:
    """``If-Match: "<version>"``: refuse to act on a version the client has not seen."""
    if if_match is None:
        return
    seen = if_match.strip().strip('"')
    if not (seen.isascii() and seen.isdigit()):
        raise ValidationError.single(
            "If-Match", f'must be a version as the ETag gives it, such as "3"; got {if_match!r}',
            "invalid_version")
    if int(seen) != user.version:
        raise ConcurrencyError(f"users-{user.id}", int(seen), user.version)


def _view(user: User, response: Response) -> dict[str, Any]:
    response.headers["ETag"] = f'"{user.version}"'
    return {"id": str(user.id), "version": user.version, **user.state.to_json()}

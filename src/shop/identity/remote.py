"""The accounts access tokens are checked against, asked of identity's service: what the
service of another context uses as its :class:`~shop.platform.auth.AccountDirectory`, so
that a revoked token or a removed account is refused by every service at once."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from invariant.http import HttpService
from invariant.resilience import DependencyFailedError
from shop.platform.auth import AccountAccess
from shop.platform.errors import Forbidden, NotAuthenticated, TooManyRequests
from shop.platform.service_calls import HEADER, credential


class RemoteAccounts:
    """identity's ``/identity/accounts/{id}/access``, with the services' credential."""

    def __init__(self, client: HttpService, secret: str) -> None:
        self._client = client
        self._headers = {HEADER: credential(secret)}

    async def access(self, user_id: str) -> AccountAccess | None:
        response = await self._client.request(
            "GET", f"/identity/accounts/{quote(user_id, safe='')}/access",
            headers=self._headers)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise DependencyFailedError(
                "identity", f"it answered {response.status_code} to an account lookup")
        body = response.json()
        version = body.get("token_version")
        if type(version) is not int:
            raise DependencyFailedError("identity", "its account answer has no token version")
        return AccountAccess("admin" if body.get("role") == "admin" else "customer", version)


class RemoteSignIn:
    """identity's public ``POST /identity/login``, for the console of another service: the
    operator's address goes as ``X-Forwarded-For`` (identity throttles guesses by it, and
    trusts the header from the addresses its server is told to, ``FORWARDED_ALLOW_IPS``)."""

    def __init__(self, client: HttpService) -> None:
        self._client = client

    async def __call__(self, email: str, password: str, source: str) -> str:
        response = await self._client.request(
            "POST", "/identity/login", json={"email": email, "password": password},
            headers={"X-Forwarded-For": source})
        detail = _detail(response) if response.status_code != 200 else ""
        if response.status_code == 401:
            raise NotAuthenticated(detail)
        if response.status_code == 403:
            raise Forbidden(detail)
        if response.status_code == 429:
            raise TooManyRequests(detail, float(response.headers.get("retry-after", "1")))
        if response.status_code != 200:
            raise DependencyFailedError("identity", f"it answered {response.status_code} to a "
                                                    "log-in")
        token = response.json().get("access_token")
        if not isinstance(token, str):
            raise DependencyFailedError("identity", "its log-in answer has no access token")
        return token


def _detail(response: Any) -> str:
    """The problem document's ``detail`` (what identity said was wrong)."""
    try:
        found = response.json().get("detail")
    except (ValueError, AttributeError):
        return "refused"
    return found if isinstance(found, str) else "refused"

"""The accounts access tokens are checked against, asked of identity's service: what the
service of another context uses as its :class:`~shop.platform.auth.AccountDirectory`, so
that a revoked token or a removed account is refused by every service at once."""

from __future__ import annotations

from urllib.parse import quote

from invariant.http import HttpService
from invariant.resilience import DependencyFailedError
from shop.platform.auth import AccountAccess
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

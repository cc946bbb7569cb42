"""The walkthrough's moves, as a customer and an admin make them over HTTP, and what it reads
back (orders, invoices, analytics, the mail sink)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx2 as httpx
from rich.console import Console

from shop.demo.outcomes import Downstream

FINAL = ("shipped", "cancelled")
Headers = dict[str, str]


class DemoFailed(Exception):
    """The shop did not answer as the walkthrough expects."""


class Steps:
    """HTTP calls that must answer as expected (else :class:`DemoFailed`), and waits that
    poll with a deadline."""

    def __init__(self, http: httpx.AsyncClient, mail_dir: Path, console: Console) -> None:
        self.http = http
        self.mail_dir = mail_dir
        self.console = console

    async def expect(self, status: int, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON body of the answer, which must have ``status``."""
        response = await self.http.request(method, path, **kwargs)
        if response.status_code != status:
            raise DemoFailed(f"{method} {path} answered {response.status_code} "
                             f"(expected {status}): {response.text}")
        return response.json() if response.content else None

    async def login(self, address: str, password: str) -> Headers:
        """The headers that carry the account's access token."""
        body = await self.expect(200, "POST", "/identity/login",
                                 json={"email": address, "password": password})
        return {"Authorization": f"Bearer {body['access_token']}"}

    async def provider(self, admin: Headers, mode: str) -> None:
        """Tell the fake payment provider how to answer (approve, decline, timeout)."""
        await self.expect(200, "PUT", "/admin/payments/provider", json={"mode": mode},
                          headers=admin)
        self.console.print(f"(admin) the payment provider now answers: {mode}")

    def mails(self, to: str) -> list[EmailMessage]:
        """What the mail sink saved for ``to``, oldest first."""
        found = []
        for path in sorted(self.mail_dir.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if isinstance(message, EmailMessage) and to in str(message["To"]):
                found.append(message)
        return found

    async def code_for(self, to: str, timeout: float = 15.0) -> str:  # noqa: ASYNC109
        """The 6-digit code of the verification email to ``to`` (waiting for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.mails(to):
                body = message.get_body(preferencelist=("plain",))
                found = re.search(r"\b(\d{6})\b", body.get_content() if body else "")
                if found:
                    return found.group(1)
            await asyncio.sleep(0.1)
        raise DemoFailed(f"no verification email reached {to} within {timeout} s")

    async def order(self, customer: Headers, lines: tuple[tuple[str, int], ...],
                    timeout: float = 30.0) -> dict[str, Any]:  # noqa: ASYNC109
        """Fill a cart with ``lines``, place it and wait until its fulfilment ended."""
        draft = await self.expect(201, "POST", "/orders", headers=customer, json={})
        order_id = draft["order_id"]
        for product, quantity in lines:
            await self.expect(201, "POST", f"/orders/{order_id}/items", headers=customer,
                              json={"product_id": product, "quantity": quantity})
        await self.expect(202, "POST", f"/orders/{order_id}/place", headers=customer)
        self.console.print(f"Placed order {order_id[:8]}: "
                           + ", ".join(f"{q} x {p}" for p, q in lines))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            order: dict[str, Any] = await self.expect(200, "GET", f"/orders/{order_id}",
                                                      headers=customer)
            phase = (order.get("fulfilment") or {}).get("phase")
            if order.get("status") in FINAL and phase in (None, *FINAL):
                self.console.print(f"  → {order['status']}"
                                   + (f": {order.get('cancel_reason')}"
                                      if order.get("cancel_reason") else ""))
                return order
            await asyncio.sleep(0.2)
        raise DemoFailed(f"order {order_id} did not finish within {timeout} s")

    async def order_counts(self, admin: Headers) -> dict[str, int]:
        """Analytics' orders placed, shipped and cancelled (all customers)."""
        report = await self.expect(200, "GET", "/admin/analytics", headers=admin)
        return dict(report.get("orders", {}))

    async def downstream(self, admin: Headers, customer: Headers, to: str) -> Downstream:
        """What analytics, the customer's invoices and the mail sink show now."""
        invoices = await self.expect(200, "GET", "/billing/invoices", headers=customer,
                                     params={"limit": 100})
        return Downstream(await self.order_counts(admin),
                          {i["order_id"]: i["status"] for i in invoices["items"]},
                          self.mails(to))

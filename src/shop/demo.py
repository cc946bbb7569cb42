"""``make demo``: a scripted walkthrough of shop over HTTP.

It starts a shop of its own (SQLite in ``var/demo``, a local mail sink, short timeouts),
then, as a customer would: registers, reads the verification code from the mail sink,
verifies, logs in, and places four orders: one that ships, one refused for lack of stock,
one whose payment is declined three times, one whose payment provider never answers in
time. Each outcome is printed as the API reports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import re
import shutil
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx2 as httpx
import uvicorn
from rich.console import Console
from rich.table import Table

from invariant.config import Settings
from shop.config import ShopSettings
from shop.platform.http import ServerNotStarted, create_app, served
from shop.platform.runtime import Shop

DEMO_DATA = Path("var/demo")
CUSTOMER, PASSWORD = "alice@example.com", "correct horse battery staple"
FINAL = ("shipped", "cancelled")


class DemoFailed(Exception):
    """The shop did not answer as the walkthrough expects."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def _own_shop(settings: ShopSettings, console: Console) -> AsyncIterator[ShopSettings]:
    shutil.rmtree(DEMO_DATA, ignore_errors=True)
    demo = replace(
        settings, invariant=Settings(store="sqlite", sqlite_path=DEMO_DATA / "shop.db"),
        data=DEMO_DATA, port=_free_port(), smtp_port=_free_port(), mail_sink=True,
        admin_password=settings.admin_password or "demo-admin-password",
        payment_timeout=2.0, reservation_timeout=5.0, provider_timeout=0.5)
    shop = Shop(demo)
    config = uvicorn.Config(create_app(shop), host=demo.host, port=demo.port,
                            log_level="warning")
    try:
        async with served(config):
            console.print(f"Started a demo shop at http://{demo.host}:{demo.port} "
                          f"(data in {DEMO_DATA}, mail sink on port {demo.smtp_port})\n")
            yield shop.settings
    except ServerNotStarted:
        raise DemoFailed("the demo shop stopped while starting") from None


async def run_demo(settings: ShopSettings, url: str | None, console: Console) -> int:
    """Run the walkthrough; 0 when every step answered as expected."""
    try:
        if url is None:
            async with _own_shop(settings, console) as running:
                base = f"http://{running.host}:{running.port}"
                await _walkthrough(base, running, console)
        else:
            await _walkthrough(url, settings.resolved(), console)
    except (DemoFailed, httpx.HTTPError) as exc:
        console.print(f"[red]The demo stopped:[/red] {exc}")
        return 1
    return 0


async def _walkthrough(base: str, settings: ShopSettings, console: Console) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        step = _Steps(http, settings, console)
        admin = await step.login(settings.admin_email, settings.admin_password)
        console.rule("1. A customer signs up")
        await step.expect(201, "POST", "/identity/register",
                          json={"email": CUSTOMER, "password": PASSWORD})
        console.print(f"Registered {CUSTOMER}; waiting for the verification email...")
        code = await step.code_for(CUSTOMER)
        console.print(f"The mail sink received the code [bold]{code}[/bold] "
                      f"(see {settings.data / 'mail'})")
        await step.expect(200, "POST", "/identity/verify",
                          json={"email": CUSTOMER, "code": code})
        alice = await step.login(CUSTOMER, PASSWORD)
        console.print("Verified and logged in.\n")

        outcomes = Table(title="Orders", show_lines=True)
        for column in ("order", "expected", "status", "details"):
            outcomes.add_column(column)

        await step.provider(admin, "approve")
        console.rule("2. An order that ships")
        order = await step.order(alice, [("keyboard", 1), ("mouse", 2)])
        outcomes.add_row(*_row(order, "ships with a tracking number"))

        console.rule("3. An order the stock cannot cover")
        order = await step.order(alice, [("poster", 2)])
        outcomes.add_row(*_row(order, "cancelled: out of stock"))

        console.rule("4. A payment declined three times")
        await step.provider(admin, "decline")
        order = await step.order(alice, [("mouse", 1)])
        outcomes.add_row(*_row(order, "cancelled after 3 declined attempts"))

        console.rule("5. A payment provider that never answers in time")
        await step.provider(admin, "timeout")
        order = await step.order(alice, [("mouse", 1)])
        outcomes.add_row(*_row(order, "cancelled after 3 timed-out attempts"))
        await step.provider(admin, "approve")

        console.print(outcomes)
        invoices = await step.expect(200, "GET", "/billing/invoices", headers=alice)
        console.print(f"Billing shows {invoices.get('total', 0)} invoice(s) for {CUSTOMER}.")
        analytics = await step.expect(200, "GET", "/admin/analytics", headers=admin)
        counts = analytics.get("orders", {})
        console.print("Analytics: " + ", ".join(f"{n} {k}" for k, n in counts.items())
                      + "; revenue " + ", ".join(
                          f"{r['net']} {r['currency']}" for r in analytics.get("revenue", [])))
        emails = len(step.mails(CUSTOMER))
        console.print(f"{emails} email(s) reached {CUSTOMER} through outbox → broker → "
                      "notifications → job → SMTP.")


def _row(order: dict[str, Any], expected: str) -> tuple[str, str, str, str]:
    fulfilment = order.get("fulfilment") or {}
    details = ", ".join(f"{k}: {v}" for k, v in fulfilment.items() if v not in (None, ""))
    return order["order_id"][:8], expected, str(order.get("status")), details


class _Steps:
    def __init__(self, http: httpx.AsyncClient, settings: ShopSettings,
                 console: Console) -> None:
        self.http = http
        self.settings = settings
        self.console = console

    async def expect(self, status: int, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, path, **kwargs)
        if response.status_code != status:
            raise DemoFailed(f"{method} {path} answered {response.status_code} "
                             f"(expected {status}): {response.text}")
        return response.json() if response.content else None

    async def login(self, address: str, password: str) -> dict[str, str]:
        body = await self.expect(200, "POST", "/identity/login",
                                 json={"email": address, "password": password})
        return {"Authorization": f"Bearer {body['access_token']}"}

    async def provider(self, admin: dict[str, str], mode: str) -> None:
        await self.expect(200, "PUT", "/admin/payments/provider", json={"mode": mode},
                          headers=admin)
        self.console.print(f"(admin) the payment provider now answers: {mode}")

    def mails(self, to: str) -> list[EmailMessage]:
        found = []
        for path in sorted((self.settings.data / "mail").glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if isinstance(message, EmailMessage) and to in str(message["To"]):
                found.append(message)
        return found

    async def code_for(self, to: str, timeout: float = 15.0) -> str:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.mails(to):
                body = message.get_body(preferencelist=("plain",))
                found = re.search(r"\b(\d{6})\b", body.get_content() if body else "")
                if found:
                    return found.group(1)
            await asyncio.sleep(0.1)
        raise DemoFailed(f"no verification email reached {to} within {timeout} s")

    async def order(self, customer: dict[str, str], lines: list[tuple[str, int]],
                    timeout: float = 30.0) -> dict[str, Any]:  # noqa: ASYNC109
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

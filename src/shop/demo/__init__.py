"""``make demo``: a scripted walkthrough of shop over HTTP, judged at the end.

It starts a shop of its own (SQLite in ``var/demo``, a local mail sink, short timeouts), or
uses one already serving (``--url``), then, as a customer would: registers, reads the
verification code from the mail sink, verifies, logs in, and places four orders (one that
ships, one refused for lack of stock, one whose payment is declined three times, one whose
payment provider never answers in time). It waits until invoices, analytics and emails
have caught up with the orders, prints what they show, and ends with one line: ``PASS``
(exit status 0) when every outcome is the expected one, else ``FAIL`` saying what differed
(exit status 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2 as httpx
import uvicorn
from rich.console import Console
from rich.table import Table

from invariant.config import Settings
from shop.config import ShopSettings
from shop.demo.outcomes import CASES, Downstream, OrderCase
from shop.demo.steps import DemoFailed, Headers, Steps
from shop.platform.http import ServerNotStarted, create_app, served
from shop.platform.runtime import Shop

DEMO_DATA = Path("var/demo")
PASSWORD = "correct horse battery staple"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def _own_shop(settings: ShopSettings, data: Path, console: Console
                    ) -> AsyncIterator[ShopSettings]:
    shutil.rmtree(data, ignore_errors=True)
    demo = replace(
        settings, invariant=Settings(store="sqlite", sqlite_path=data / "shop.db"),
        data=data, port=_free_port(), smtp_port=_free_port(), mail_sink=True,
        admin_password=settings.admin_password or "demo-admin-password",
        payment_timeout=2.0, reservation_timeout=5.0, provider_timeout=0.5)
    shop = Shop(demo)
    config = uvicorn.Config(create_app(shop), host=demo.host, port=demo.port,
                            log_level="warning")
    try:
        async with served(config):
            console.print(f"Started a demo shop at http://{demo.host}:{demo.port} "
                          f"(data in {data}, mail sink on port {demo.smtp_port})\n")
            yield shop.settings
    except ServerNotStarted:
        raise DemoFailed("the demo shop stopped while starting") from None


async def run_demo(settings: ShopSettings, url: str | None, console: Console, *,
                   data: Path = DEMO_DATA, settle_timeout: float = 30.0) -> int:
    """Run the walkthrough (on a shop of its own in ``data``, or the one at ``url``); 0 when
    every outcome is the expected one, else 1. The last line printed says which."""
    try:
        if url is None:
            async with _own_shop(settings, data, console) as running:
                base = f"http://{running.host}:{running.port}"
                problems = await _walkthrough(base, running, console, settle_timeout)
        else:
            problems = await _walkthrough(url, settings.resolved(), console, settle_timeout)
    except (DemoFailed, httpx.HTTPError) as exc:
        console.print(f"[red]FAIL[/red]: the demo stopped: {exc}", soft_wrap=True)
        return 1
    if problems:
        console.print("[red]FAIL[/red]: " + "; ".join(problems), soft_wrap=True)
        return 1
    shipped = sum(1 for c in CASES if c.status == "shipped")
    console.print(f"[green]PASS[/green]: {len(CASES)} orders as expected ({shipped} shipped, "
                  f"{len(CASES) - shipped} cancelled); invoices, analytics and emails agree",
                  soft_wrap=True)
    return 0


async def _walkthrough(base: str, settings: ShopSettings, console: Console,
                       settle_timeout: float) -> list[str]:
    """Drive the shop; what differed from the expected outcomes (empty: nothing)."""
    customer = f"alice-{uuid.uuid4().hex[:6]}@example.com"  # new on every run, any shop
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        step = Steps(http, settings.data / "mail", console)
        admin = await step.login(settings.admin_email, settings.admin_password)
        before = await step.order_counts(admin)
        alice = await _sign_up(step, customer, console)
        orders = []
        for number, case in enumerate(CASES, start=2):
            console.rule(f"{number}. {case.title}")
            await step.provider(admin, case.provider)
            orders.append(await step.order(alice, case.lines))
        await step.provider(admin, "approve")
        console.print(_table(CASES, orders))
        downstream, lagging = await _settled(step, admin, alice, customer, orders, before,
                                             settle_timeout)
        _report(downstream, orders, before, customer, console)
    problems = [f"order {n} ({case.title}): {problem}"
                for n, (case, order) in enumerate(zip(CASES, orders, strict=True), start=2)
                for problem in case.differences(order)]
    if lagging:
        problems.append(f"not settled after {settle_timeout:g} s: " + ", ".join(lagging))
    return problems


async def _sign_up(step: Steps, customer: str, console: Console) -> Headers:
    console.rule("1. A customer signs up")
    await step.expect(201, "POST", "/identity/register",
                      json={"email": customer, "password": PASSWORD})
    console.print(f"Registered {customer}; waiting for the verification email...")
    code = await step.code_for(customer)
    console.print(f"The mail sink received the code [bold]{code}[/bold] (see {step.mail_dir})")
    await step.expect(200, "POST", "/identity/verify", json={"email": customer, "code": code})
    headers = await step.login(customer, PASSWORD)
    console.print("Verified and logged in.\n")
    return headers


async def _settled(step: Steps, admin: Headers, customer: Headers, to: str,
                   orders: Sequence[dict[str, Any]], before: dict[str, int],
                   timeout: float) -> tuple[Downstream, list[str]]:  # noqa: ASYNC109
    """Poll invoices, analytics and the mail sink until they agree with the final orders,
    or ``timeout`` seconds passed: what they show, and what still lags behind."""
    deadline = time.monotonic() + timeout
    while True:
        downstream = await step.downstream(admin, customer, to)
        lagging = downstream.lagging(orders, before)
        if not lagging or time.monotonic() > deadline:
            return downstream, lagging
        await asyncio.sleep(0.2)


def _table(cases: Sequence[OrderCase], orders: Sequence[dict[str, Any]]) -> Table:
    table = Table(title="Orders", show_lines=True)
    for column in ("order", "expected", "status", "details"):
        table.add_column(column)
    for case, order in zip(cases, orders, strict=True):
        fulfilment = order.get("fulfilment") or {}
        details = ", ".join(f"{k}: {v}" for k, v in fulfilment.items() if v not in (None, ""))
        table.add_row(order["order_id"][:8], case.expected, str(order.get("status")), details)
    return table


def _report(downstream: Downstream, orders: Sequence[dict[str, Any]], before: dict[str, int],
            customer: str, console: Console) -> None:
    statuses = sorted(downstream.invoices.values())
    console.print(f"Billing shows {len(statuses)} invoice(s) for {customer}: "
                  + ", ".join(statuses))
    counts = {k: n - before.get(k, 0) for k, n in downstream.counts.items()}
    console.print("Analytics (this walkthrough's orders): "
                  + ", ".join(f"{n} {k}" for k, n in counts.items()))
    console.print(f"{len(downstream.emails)} email(s) reached {customer} through outbox → "
                  "broker → notifications → job → SMTP.")

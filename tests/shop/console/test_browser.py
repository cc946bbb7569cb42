"""The console in a real browser (Debian's chromium driven by Playwright, never a
downloaded one): an operator logs in with the form, and clicks through the flows the
console is for. Screenshots go to /tmp (console-*.png) for a person to look at."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from invariant.messaging import deadletters
from tests.conftest import IN_CI
from tests.shop.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, ShopServer
from tests.shop.console.kit import PROBE, Poked, Troubles, park_probe_message

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path("/tmp")
WAIT = 20_000
"""Milliseconds a browser expectation waits for the page to show what it should."""


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if shutil.which(CHROMIUM) is None:
        message = f"no chromium at {CHROMIUM} (apt-get install chromium)"
        if IN_CI:
            pytest.fail(f"{message}; CI=true: the browser tests must run")
        pytest.skip(message)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        found = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield found
        finally:
            await found.close()


async def logged_in(browser: Any, shop: ShopServer, email: str, password: str) -> Any:
    page = await browser.new_page(base_url=shop.base_url)
    await page.goto("/console/projections")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", password)
    await page.click("form.stacked button")
    return page


async def shot(page: Any, name: str) -> None:
    await page.screenshot(path=str(SHOTS / f"console-{name}.png"), full_page=True)


async def test_an_operator_sees_a_poisoned_projection_fixes_it_and_resumes_it(
        browser: Any, shop: ShopServer, troubles: Troubles) -> None:
    from playwright.async_api import expect

    await shop.shop.app.store.append("poke-b", [Poked(), Poked(poison=True)])
    page = await logged_in(browser, shop, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert page.url.endswith("/console/streams")
    await page.goto("/console/projections")
    row = page.locator("#projection-console_pokes-v1")
    await expect(row.locator(".state")).to_have_text("failed", timeout=WAIT)
    await expect(row.locator(".last-error")).to_contain_text(
        "ValueError: cannot count poison poke", timeout=WAIT)
    await shot(page, "projection-failed")
    troubles.pokes.broken = False  # the fix is deployed
    await row.get_by_role("button", name="resume").click()
    await expect(page.locator(".notice")).to_contain_text("console_pokes v1 resumed")
    await expect(row.locator(".state")).to_have_text("running", timeout=WAIT)
    await expect(row.locator(".last-error")).to_have_text("", timeout=WAIT)
    await expect(row.locator("td").nth(5)).to_have_text("0", timeout=WAIT)  # no lag
    await shot(page, "projection-resumed")
    await page.goto("/console/activity")
    await expect(page.locator("#activity")).to_contain_text("projection resume")


async def test_a_dead_letter_replayed_from_the_console_reaches_its_consumer(
        browser: Any, shop: ShopServer, troubles: Troubles) -> None:
    from playwright.async_api import expect

    message = await park_probe_message(shop.shop)
    [letter] = await shop.shop.read_models.run(lambda c: deadletters.list_parked(c, PROBE),
                                               write=False)
    page = await logged_in(browser, shop, ADMIN_EMAIL, ADMIN_PASSWORD)
    await page.goto("/console/messaging")
    row = page.locator(f"#letter-{letter.id}")
    await expect(row).to_contain_text("probe cannot handle")
    await row.get_by_role("link", name=str(letter.id)).click()
    await expect(page.locator("#payload")).to_contain_text('"n": 1')
    await shot(page, "dead-letter")
    troubles.probe.broken = False
    await page.get_by_role("button", name="replay").click()
    await expect(page.locator(".notice")).to_contain_text(f"dead letter {letter.id} replayed")
    await expect(page.locator(f"#letter-{letter.id}")).to_have_count(0)
    await shot(page, "dead-letter-replayed")
    assert troubles.probe.handled == [message.message_id]


async def test_an_account_without_the_admin_role_is_refused(
        browser: Any, shop: ShopServer) -> None:
    from playwright.async_api import expect

    await shop.customer("dora@example.com", "dora-password-1")
    page = await logged_in(browser, shop, "dora@example.com", "dora-password-1")
    await expect(page.locator("p.error")).to_contain_text("needs an admin account")
    await expect(page.locator("nav")).to_have_count(0)
    await shot(page, "refused")
    await page.get_by_role("button", name="log in as someone else").click()
    await expect(page.locator("input[name=password]")).to_be_visible()


async def test_a_post_without_the_csrf_token_is_refused_even_with_a_session(
        browser: Any, shop: ShopServer) -> None:
    from playwright.async_api import expect

    page = await logged_in(browser, shop, ADMIN_EMAIL, ADMIN_PASSWORD)
    status = await page.evaluate(
        """async () => (await fetch('/console/projections/console_pokes/1/pause',
             {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'},
              body: 'back=/projections'})).status""")
    assert status == 403
    await page.goto("/console/projections")
    await expect(page.locator("#projection-console_pokes-v1 .state")).to_have_text("running")


async def test_the_log_shows_new_events_without_a_reload(
        browser: Any, shop: ShopServer) -> None:
    from playwright.async_api import expect

    page = await logged_in(browser, shop, ADMIN_EMAIL, ADMIN_PASSWORD)
    await page.goto("/console/log")
    await expect(page.locator("#log-tail")).not_to_contain_text("poke-live")
    position = (await shop.shop.app.store.append("poke-live", [Poked()])).position
    await expect(page.locator("#log-tail")).to_contain_text("poke-live", timeout=WAIT)
    await shot(page, "log")
    await page.goto("/console/streams")
    await page.fill("input[name=q]", "live")
    await page.get_by_role("button", name="search").click()
    await page.get_by_role("link", name="poke-live").click()
    await page.get_by_role("link", name=str(position), exact=True).click()
    await expect(page.locator("#data")).to_contain_text('"poison": false')
    await shot(page, "event")

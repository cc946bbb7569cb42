"""The console over HTTP against a running shop: who may use it, its CSRF defence, every
page, and every action (done, logged and audited with who and when)."""

from __future__ import annotations

import asyncio
import html
import logging
from urllib.parse import unquote_plus

import httpx2 as httpx
import pytest

from invariant.clock import utc_now
from invariant.messaging import deadletters, jobs
from invariant.processes import ProcessRecord, setup_tables
from invariant.processes import persistence as process_state
from tests.shop.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    ShopServer,
    eventually,
)
from tests.shop.console.kit import (
    PROBE,
    PROBE_JOB,
    ConsoleClient,
    Poked,
    Troubles,
    park_probe_message,
)


def said(response: httpx.Response) -> str:
    """Where an action sent the browser, with its notice or error decoded."""
    return unquote_plus(response.headers["location"])


async def active_versions(console: ConsoleClient) -> list[int]:
    """The versions of console_pokes the projections page calls active."""
    page = (await console.page("/projections/table")).text
    rows = page.split('id="projection-console_pokes-v')[1:]
    return [int(row.split('"', 1)[0]) for row in rows if "(active)" in row.split("</tr>")[0]]


async def state_of(console: ConsoleClient, projection: str, version: int = 1) -> str:
    page = await console.page("/projections/table")
    row = page.text.split(f'id="projection-{projection}-v{version}"', 1)[1]
    return row.split('<td class="state">', 1)[1].split("<", 1)[0]


async def admin_id(shop: ShopServer) -> str:
    me = await shop.client.get("/identity/me", headers=await shop.admin())
    return str(me.json()["user_id"])


async def test_a_browser_without_a_session_is_sent_to_the_log_in_form(
        shop: ShopServer) -> None:
    console = ConsoleClient(shop.client)
    response = await console.page("/projections")
    assert (response.status_code, response.headers["location"]) == (303, "/console/login")
    partial = await shop.client.get("/console/log/tail", headers={"X-Console-Partial": "1"})
    assert partial.status_code == 401
    form = await console.page("/login")
    assert form.status_code == 200 and 'name="password"' in form.text


async def test_a_wrong_password_is_refused_on_the_form(shop: ShopServer) -> None:
    console = ConsoleClient(shop.client)
    response = await console.log_in(ADMIN_EMAIL, "not the password")
    assert response.status_code == 401
    assert "the email or password is wrong" in response.text
    assert (await console.page("/streams")).status_code == 303


async def test_an_account_that_is_not_an_admin_is_refused_pages_and_actions(
        shop: ShopServer) -> None:
    await shop.customer("carol@example.com", "carol-password-1")
    console = ConsoleClient(shop.client)
    assert (await console.log_in("carol@example.com", "carol-password-1")).status_code == 303
    refused = await console.page("/projections")
    assert refused.status_code == 403
    assert "needs an admin account" in refused.text
    action = await console.post("/projections/console_pokes/1/pause")
    assert action.status_code == 403
    admin = ConsoleClient(shop.client)
    await admin.log_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    assert await state_of(admin, "console_pokes") == "running"


async def test_a_post_without_its_csrf_token_is_refused_and_changes_nothing(
        shop: ShopServer, admin: ConsoleClient) -> None:
    pause = "/console/projections/console_pokes/1/pause"
    without = await shop.client.post(pause, data={"back": "/projections"})
    assert without.status_code == 403 and "security token" in without.text
    forged = await shop.client.post(pause, data={"csrf": "0" * 64})
    assert forged.status_code == 403
    elsewhere = await shop.client.post(pause, data={"csrf": admin.csrf},
                                       headers={"Origin": "https://evil.example"})
    assert elsewhere.status_code == 403 and "another site" in elsewhere.text
    login = await shop.client.post("/console/login", data={"email": ADMIN_EMAIL,
                                                           "password": ADMIN_PASSWORD})
    assert login.status_code == 403
    assert await state_of(admin, "console_pokes") == "running"


async def test_every_page_answers_an_admin(shop: ShopServer, admin: ConsoleClient) -> None:
    position = (await shop.shop.app.store.append("poke-7", [Poked()])).position
    await park_probe_message(shop.shop)
    pages = ["/streams", "/streams/poke-7", f"/events/{position}", "/flows/anything",
             "/log", "/log/tail", "/projections", "/projections/table", "/processes",
             "/processes?status=needs-attention", "/messaging", "/deadletters/1",
             "/activity"]
    for page in pages:
        path, _, query = page.partition("?")
        response = await admin.page(path, **dict([query.split("=")]) if query else {})
        assert response.status_code == 200, (page, response.text)
        assert "poke" in response.text or page not in ("/streams/poke-7", "/log/tail")
    assert (await admin.page("/events/999999")).status_code == 404
    assert (await admin.page("/processes/nobody")).status_code == 404
    assert (await admin.page("/processes", status="sleeping")).status_code == 422
    assert (await admin.page("/deadletters/77")).status_code == 404
    assert (await admin.page("/streams", q="x" * 201)).status_code == 422
    assert (await admin.page("/streams/poke-7", **{"from": "-1"})).status_code == 422


async def test_streams_shows_categories_with_counts_and_finds_streams(
        shop: ShopServer, admin: ConsoleClient) -> None:
    store = shop.shop.app.store
    await store.append("poke-1", [Poked(), Poked()])
    await store.append("poke-2", [Poked()])
    page = await admin.page("/streams")
    assert "<td>poke</a></td><td>2</td><td>3</td>" in page.text.replace(
        '<a href="/console/streams?q=poke-">', "")
    found = await admin.page("/streams", q="ke-2")
    table = found.text.split('id="found"', 1)[1]
    assert "poke-2" in table and "poke-1" not in table


async def test_a_stream_is_paged_and_an_event_shows_its_data_metadata_and_flow(
        shop: ShopServer, admin: ConsoleClient) -> None:
    store = shop.shop.app.store
    await store.append("poke-9", [Poked() for _ in range(25)],
                       metadata={"correlation_id": "flow-9", "causation_id": "cmd-9"})
    first = await admin.page("/streams/poke-9")
    assert first.text.count("<td>Poked</td>") == 20 and "next page" in first.text
    second = await admin.page("/streams/poke-9", **{"from": "21"})
    assert second.text.count("<td>Poked</td>") == 5 and "next page" not in second.text
    [last] = await store.read_stream("poke-9", from_version=25)
    event = await admin.page(f"/events/{last.position}")
    shown = html.unescape(event.text)
    assert '"poison": false' in shown
    assert '"correlation_id": "flow-9"' in shown
    assert 'href="/console/flows/flow-9"' in event.text
    assert 'href="/console/flows/cmd-9"' in event.text
    flow = await admin.page("/flows/flow-9")
    assert flow.text.count("<td>Poked</td>") == 25


async def test_the_log_tail_shows_the_latest_events_first(
        shop: ShopServer, admin: ConsoleClient) -> None:
    await shop.shop.app.store.append("poke-a", [Poked()])
    await shop.shop.app.store.append("poke-b", [Poked()])
    tail = await admin.page("/log/tail")
    assert tail.text.index("poke-b") < tail.text.index("poke-a")
    assert "<html" not in tail.text


async def test_a_poison_event_stops_a_projection_and_the_operator_resumes_it_once_fixed(
        shop: ShopServer, admin: ConsoleClient, troubles: Troubles,
        caplog: pytest.LogCaptureFixture) -> None:
    poison = (await shop.shop.app.store.append("poke-p", [Poked(), Poked(poison=True)]))
    await eventually(lambda: _equals(state_of(admin, "console_pokes"), "failed"),
                     what="the projection to fail")
    table = (await admin.page("/projections/table")).text
    assert f"at {poison.position}: ValueError: cannot count poison poke" in table
    troubles.pokes.broken = False
    with caplog.at_level(logging.INFO, logger="invariant.console"):
        resumed = await admin.post("/projections/console_pokes/1/resume")
    assert resumed.status_code == 303
    await eventually(lambda: _contains(shop, troubles, poison.position),
                     what="the resumed projection to count the poison poke")
    assert await state_of(admin, "console_pokes") == "running"
    who = await admin_id(shop)
    assert any("projection resume console_pokes v1" in r.getMessage() and who in r.getMessage()
               for r in caplog.records)
    activity = (await admin.page("/activity")).text
    assert "projection resume" in activity and who in activity


async def _equals(probe: object, expected: str) -> bool | None:
    return True if await probe == expected else None  # type: ignore[misc]


async def test_the_operator_pauses_and_resumes_a_projection(
        shop: ShopServer, admin: ConsoleClient, troubles: Troubles) -> None:
    assert (await admin.post("/projections/console_pokes/1/pause")).status_code == 303
    assert await state_of(admin, "console_pokes") == "paused"
    written = await shop.shop.app.store.append("poke-q", [Poked()])
    page = await admin.page("/projections")
    assert "console_pokes v1 paused" in (await admin.page(
        "/projections", notice="console_pokes v1 paused")).text
    assert "resume</button>" in page.text
    assert written.position not in await shop.shop.read_models.run(troubles.pokes.positions,
                                                                   write=False)
    await admin.post("/projections/console_pokes/1/resume")
    await eventually(lambda: _contains(shop, troubles, written.position),
                     what="the resumed projection to count the poke")


async def _contains(shop: ShopServer, troubles: Troubles, position: int) -> bool | None:
    found = await shop.shop.read_models.run(troubles.pokes.positions, write=False)
    return True if position in found else None


async def test_the_operator_rebuilds_a_projection_from_a_position(
        shop: ShopServer, admin: ConsoleClient, troubles: Troubles) -> None:
    troubles.pokes.broken = False
    first = await shop.shop.app.store.append("poke-r", [Poked()])
    last = await shop.shop.app.store.append("poke-r", [Poked()])
    await eventually(lambda: _contains(shop, troubles, last.position))
    await shop.shop.read_models.run(lambda c: c.execute(troubles.pokes.pokes.delete().where(
        troubles.pokes.pokes.c.position == last.position)))  # a read model gone wrong
    refused = await admin.post("/projections/console_pokes/1/rebuild", **{"from": "ten"},
                               back="/projections")
    assert "give a position" in (await admin.page(
        refused.headers["location"].removeprefix("/console"))).text
    response = await admin.post("/projections/console_pokes/1/rebuild",
                                **{"from": str(first.position)})
    assert "rebuilding from position" in said(response)
    await eventually(lambda: _contains(shop, troubles, last.position),
                     what="the rebuilt projection to count the last poke again")
    assert first.position in await shop.shop.read_models.run(troubles.pokes.positions,
                                                             write=False)
    zero = await admin.post("/projections/ordering_orders/1/rebuild", **{"from": "5"})
    assert "cannot rebuild from position 5" in said(zero)
    assert "projection rebuild" in (await admin.page("/activity")).text


async def test_a_dead_letter_is_replayed_and_reaches_its_consumer(
        shop: ShopServer, admin: ConsoleClient, troubles: Troubles) -> None:
    message = await park_probe_message(shop.shop)
    [letter] = await shop.shop.read_models.run(lambda c: deadletters.list_parked(c, PROBE),
                                               write=False)
    page = (await admin.page("/messaging")).text
    assert f'id="letter-{letter.id}"' in page and "probe cannot handle" in page
    again = await admin.post(f"/deadletters/{letter.id}/replay")
    assert "failed again and stays parked" in said(again)
    troubles.probe.broken = False
    replayed = await admin.post(f"/deadletters/{letter.id}/replay")
    assert "replayed" in said(replayed)
    assert troubles.probe.handled == [message.message_id]
    assert f'id="letter-{letter.id}"' not in (await admin.page("/messaging")).text
    assert "dead letter replay" in (await admin.page("/activity")).text


async def test_a_dead_letter_is_discarded_without_reaching_its_consumer(
        shop: ShopServer, admin: ConsoleClient, troubles: Troubles) -> None:
    await park_probe_message(shop.shop)
    [letter] = await shop.shop.read_models.run(lambda c: deadletters.list_parked(c, PROBE),
                                               write=False)
    await admin.page("/messaging")
    assert (await admin.post(f"/deadletters/{letter.id}/discard")).status_code == 303
    assert await shop.shop.read_models.run(lambda c: deadletters.get(c, letter.id),
                                           write=False) is None
    assert troubles.probe.handled == []
    missing = await admin.post(f"/deadletters/{letter.id}/discard", back="/messaging")
    assert "no dead letter" in said(missing)


async def dead_job(shop: ShopServer, n: int) -> int:
    """A probe job that ran once, failed (the probe is broken) and is dead: its id."""
    job_id = await shop.shop.read_models.run(
        lambda c: jobs.enqueue(c, PROBE_JOB, {"n": n}, max_attempts=1))
    await eventually(lambda: is_dead(shop, job_id), what="the job to die")
    return job_id


async def is_dead(shop: ShopServer, job_id: int) -> bool | None:
    found = await shop.shop.read_models.run(jobs.dead_jobs, write=False)
    return True if any(j.id == job_id for j in found) else None


async def test_a_dead_job_is_retried_and_runs(
        shop: ShopServer, admin: ConsoleClient, troubles: Troubles) -> None:
    job_id = await dead_job(shop, 1)
    assert f'id="job-{job_id}"' in (await admin.page("/messaging")).text
    troubles.probe.broken = False
    assert (await admin.post(f"/jobs/{job_id}/retry")).status_code == 303

    async def ran() -> bool | None:
        return True if job_id in troubles.jobs_run else None

    await eventually(ran, what="the retried job to run")
    assert "job retry" in (await admin.page("/activity")).text


async def test_a_dead_job_is_discarded_and_never_runs(
        shop: ShopServer, admin: ConsoleClient, troubles: Troubles) -> None:
    job_id = await dead_job(shop, 2)
    page = (await admin.page("/messaging")).text
    assert f'/jobs/{job_id}/discard' in page
    runs = troubles.jobs_run.count(job_id)
    troubles.probe.broken = False
    assert (await admin.post(f"/jobs/{job_id}/discard")).status_code == 303
    assert await is_dead(shop, job_id) is None
    assert f'id="job-{job_id}"' not in (await admin.page("/messaging")).text
    assert "job discard" in (await admin.page("/activity")).text
    await asyncio.sleep(0.5)  # a worker would have run it by now, were it due again
    assert troubles.jobs_run.count(job_id) == runs
    missing = await admin.post(f"/jobs/{job_id}/discard", back="/messaging")
    assert f"no dead job {job_id}" in said(missing)


async def test_a_parked_process_is_shown_and_resumed(
        shop: ShopServer, admin: ConsoleClient) -> None:
    await setup_tables(shop.shop.read_models)
    record = ProcessRecord("console-proc-1", "console-test", "order-42",
                           {"attempts": 3}, status=process_state.NEEDS_ATTENTION,
                           error="payment provider kept failing")
    await shop.shop.read_models.run(lambda c: process_state.write(c, record, utc_now()))
    listing = (await admin.page("/processes", status="needs-attention")).text
    assert "console-proc-1" in listing and "payment provider kept failing" in listing
    page = (await admin.page("/processes/console-proc-1")).text
    assert "resume (retry)" in page and '"attempts": 3' in html.unescape(page)
    await admin.post("/process-resume/console-proc-1")
    resumed = await shop.shop.read_models.run(
        lambda c: process_state.read(c, "console-proc-1"), write=False)
    assert resumed is not None and resumed.status == process_state.RUNNING
    assert resumed.state["attempts"] == 0
    again = await admin.post("/process-resume/console-proc-1", back="/processes")
    assert "nothing to resume" in said(again)


async def test_a_new_version_is_built_beside_the_active_one_then_switched_to_and_the_old_retired(
        shop: ShopServer, admin: ConsoleClient, troubles: Troubles) -> None:
    troubles.pokes.broken = False
    await shop.shop.app.store.append("poke-v", [Poked(), Poked()])
    assert await active_versions(admin) == [1]
    await eventually(lambda: _equals(state_of(admin, "console_pokes", 2), "running"),
                     what="version 2 to catch up")
    switched = await admin.post("/projections/console_pokes/2/switch")
    assert "queries of console_pokes read version 2" in said(switched)
    assert await active_versions(admin) == [2]
    active = await admin.post("/projections/console_pokes/2/retire", back="/projections")
    assert "is the active version" in said(active)
    retired = await admin.post("/projections/console_pokes/1/retire")
    assert "retired" in said(retired)
    # (the running shop still declares v1, so its worker registers it again, inactive)
    assert await active_versions(admin) == [2]
    activity = (await admin.page("/activity")).text
    assert "projection switch" in activity and "projection retire" in activity

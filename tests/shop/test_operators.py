"""An operator runs ``invariant`` against a running shop with one setting,
``INVARIANT_APP=shop.operations:app`` (and the ``SHOP_DATA`` the shop runs with): the
commands are processes, as in a second terminal beside ``make run``; the shop runs in the
test (SQLite, its database found from ``SHOP_DATA`` as ``make run``'s is)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from invariant.config import Settings
from invariant.messaging import deadletters
from invariant.processes import persistence as process_state
from shop.cli import banner
from tests.shop.conftest import ShopServer, eventually, serve, shop_settings
from tests.shop.shopping import order_with, place, settled

ROOT = Path(__file__).resolve().parents[2]
INVARIANT = str(Path(sys.executable).parent / "invariant")


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[ShopServer]:
    """A running shop whose SQLite file is where SHOP_DATA puts it (``<data>/shop.db``)."""
    settings = shop_settings(tmp_path, Settings(store="sqlite",
                                                sqlite_path=tmp_path / "shop" / "shop.db"))
    async with serve(settings) as running:
        yield running


def operator_env(server: ShopServer) -> dict[str, str]:
    """An operator's shell: the shop's own SHOP_* settings, and the one setting."""
    s = server.shop.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVARIANT_", "SHOP_"))}
    return {**env, "INVARIANT_APP": "shop.operations:app", "SHOP_DATA": str(s.data),
            "SHOP_SECRET": s.secret, "SHOP_ADMIN_EMAIL": s.admin_email,
            "SHOP_ADMIN_PASSWORD": s.admin_password, "SHOP_SMTP_PORT": str(s.smtp_port)}


async def invariant(server: ShopServer, *args: str) -> tuple[int, str, str]:
    """Run ``invariant ARGS`` as a process (stdout a pipe): status, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        INVARIANT, *args, env=operator_env(server), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def rows(out: str) -> dict[str, list[str]]:
    """Tab-separated lines by their first field (the header's too)."""
    return {line.split("\t")[0]: line.split("\t") for line in out.splitlines()}


async def caught_up(server: ShopServer) -> dict[str, list[str]]:
    """``projections status`` once the shop's projections have applied the whole log
    (waited for in the shop's process: each command is a process of its own)."""
    runner = server.shop.app.projections
    assert runner is not None

    async def probe() -> bool | None:
        statuses = await runner.status()
        return True if all(s.lag_events == 0 and s.state == "running" for s in statuses) \
            else None

    await eventually(probe, timeout=30, what="the projections to catch up")
    code, out, err = await invariant(server, "projections", "status")
    assert code == 0, err
    return rows(out)


async def sql(server: ShopServer, statement: str) -> None:
    await server.shop.read_models.run(lambda conn: conn.exec_driver_sql(statement))


async def test_the_operator_commands_work_on_a_running_shop(shop: ShopServer) -> None:
    nia = await shop.customer("nia@example.com")
    order = await place(shop, nia, ("mouse", 1))
    assert (await settled(shop, nia, order))["status"] == "shipped"

    status = await caught_up(shop)
    assert status["projection"][:6] == ["projection", "version", "state", "checkpoint",
                                        "head", "lag"]
    head = await shop.shop.app.storage.head_position()
    for name in ("inventory_levels", "ordering_orders"):
        assert status[name][1:5] == ["v1 (active)", "running", str(head), str(head)]

    code, out, err = await invariant(shop, "projections", "rebuild", "ordering_orders")
    assert (code, out) == (0, f"ordering_orders rebuilt up to position {head}\n"), err
    assert err.startswith(f"rebuilding ordering_orders: {head:,}/{head:,} events (100%)")

    processes = await shop.shop.read_models.run(process_state.listing, write=False)
    assert processes, "fulfilment keeps a process per order"
    # Commands that only read run side by side (each is a process of its own).
    listed, shown, lag, wrong, dead = await asyncio.gather(
        invariant(shop, "processes", "list"),
        invariant(shop, "processes", "show", processes[0].id),
        invariant(shop, "relay", "lag"),
        invariant(shop, "consumers", "run", "--only", "biling"),
        invariant(shop, "jobs", "dead"))
    assert listed[0] == 0, listed[2]
    by_id = rows(listed[1])
    for process in processes:
        assert by_id[process.id][:4] == [process.id, process.kind, process.correlation,
                                         process.status]
    assert shown[0] == 0 and f'"id": "{processes[0].id}"' in shown[1], shown[2]
    assert lag[0] == 0 and re.fullmatch(r"pending \d+, oldest \d+\.\d s\n", lag[1]), lag[2]
    assert wrong[:2] == (2, "")
    assert wrong[2] == ("error: --only biling: no such consumer in "
                        "INVARIANT_APP=shop.operations:app; known: analytics, billing, "
                        "notifications\n")
    assert dead == (0, "id\tname\tattempts\tdue\tpayload\terror\n", "0 dead job(s)\n")

    # Workers beside the shop's own: they share the work through the database.
    relayed, consumed, worked = await asyncio.gather(
        invariant(shop, "relay", "run", "--seconds", "1"),
        invariant(shop, "consumers", "run", "--only", "billing", "--seconds", "1"),
        invariant(shop, "jobs", "work", "--seconds", "1"))
    assert relayed[0] == 0 and re.fullmatch(r"published \d+ message\(s\)\n", relayed[1])
    assert consumed[0] == 0, consumed[2]
    assert re.fullmatch(r"billing: handled \d+ message\(s\)\n", consumed[1])
    assert worked[:2] == (0, "worker stopped (database)\n"), worked[2]


async def test_a_failed_projection_is_seen_and_resumed_by_the_operator(shop: ShopServer
                                                                      ) -> None:
    nia = await shop.customer("nia@example.com")
    # The read model's table refuses rows (say, its disk filled up): the next order fails
    # the projection after its retries.
    await sql(shop, "CREATE TRIGGER full_disk BEFORE INSERT ON ordering_orders_orders_v1 "
                    "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
    await order_with(shop, nia, ("mouse", 1))

    runner = shop.shop.app.projections
    assert runner is not None

    async def failed() -> bool | None:
        return True if any(s.state == "failed" for s in await runner.status()) else None

    await eventually(failed, timeout=30, what="ordering_orders to fail")
    code, out, err = await invariant(shop, "projections", "status")
    assert code == 1, err
    row = rows(out)["ordering_orders"]
    assert row[2] == "failed"
    assert "database or disk is full" in row[7]
    stopped_at = int(row[7].split(":")[0].removeprefix("at "))

    await sql(shop, "DROP TRIGGER full_disk")  # the operator frees the disk
    code, out, err = await invariant(shop, "projections", "resume", "ordering_orders")
    assert (code, out) == (0, "ordering_orders resumed: its worker retries the event at "
                              f"position {stopped_at}\n"), err
    status = await caught_up(shop)  # the running shop's worker picked it up
    assert status["ordering_orders"][2] == "running"
    orders = await shop.client.get("/orders", headers=nia)
    assert [o["status"] for o in orders.json()["items"]] == ["draft"]
    code, out, err = await invariant(shop, "projections", "resume", "ordering_orders")
    assert code == 1 and err.startswith("ordering_orders has not failed (running, at ")


async def test_a_parked_message_is_listed_and_replayed_into_its_consumer(shop: ShopServer
                                                                        ) -> None:
    nia = await shop.customer("nia@example.com")
    admin = await shop.admin()
    await sql(shop, "CREATE TRIGGER locked BEFORE INSERT ON analytics_counters "
                    "BEGIN SELECT RAISE(ABORT, 'analytics is being migrated'); END")
    order = await place(shop, nia, ("mouse", 2))
    assert (await settled(shop, nia, order))["status"] == "shipped"

    async def parked() -> list[deadletters.DeadLetter] | None:
        found = await shop.shop.read_models.run(
            lambda conn: deadletters.list_parked(conn, "analytics"), write=False)
        types = sorted(d.message.message_type for d in found)
        return found if types == ["order.placed", "order.shipped"] else None

    letters = await eventually(parked, timeout=30, what="analytics to park two messages")
    code, out, err = await invariant(shop, "deadletters", "list", "--consumer", "analytics")
    assert code == 0 and err == "2 parked message(s)\n", err
    listed = rows(out)
    for letter in letters:
        row = listed[str(letter.id)]
        assert row[1:4] == ["analytics", f"{letter.message.message_type} v1",
                            letter.message.message_id]
        assert "analytics is being migrated" in row[6]

    code, out, err = await invariant(shop, "deadletters", "replay", str(letters[0].id))
    assert code == 1 and out == "replayed 0 of 1 dead letter(s)\n"
    assert "failed again and stays parked" in err and "analytics is being migrated" in err

    await sql(shop, "DROP TRIGGER locked")
    code, out, err = await invariant(shop, "deadletters", "replay", "--all", "--consumer",
                                     "analytics")
    assert (code, out) == (0, "replayed 2 of 2 dead letter(s)\n"), err
    report: dict[str, Any] = (await shop.client.get("/admin/analytics",
                                                    headers=admin)).json()
    assert (report["orders"]["placed"], report["orders"]["shipped"]) == (1, 1)
    code, out, err = await invariant(shop, "deadletters", "list")
    assert (code, err) == (0, "0 parked message(s)\n")


async def test_the_banner_prints_the_line_an_operator_runs(
        shop: ShopServer, capsys: pytest.CaptureFixture[str]) -> None:
    banner(shop.shop)
    printed = capsys.readouterr().out
    (line,) = [x for x in printed.splitlines() if x.startswith("Operators: ")]
    command = line.removeprefix("Operators: ")
    assert command.startswith(f"SHOP_DATA={shop.shop.settings.data} "
                              "INVARIANT_APP=shop.operations:app ")

    env = operator_env(shop)
    for name in ("INVARIANT_APP", "SHOP_DATA"):
        del env[name]  # the line sets them
    proc = await asyncio.create_subprocess_shell(
        command, env=env, cwd=os.getcwd(), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert {"inventory_levels", "ordering_orders"} <= set(rows(out.decode()))

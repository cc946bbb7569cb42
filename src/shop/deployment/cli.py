"""``python -m shop services`` (``make run-services``): the plan read from the settings, the
set started, a table of what runs where, and a watch that restarts a service that stops,
until Ctrl+C."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Mapping

import asyncpg
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from invariant.config import Settings, redact
from invariant.domain.errors import ConfigurationError
from shop.config import ShopSettings
from shop.deployment.plan import PASSED_ON, Plan
from shop.deployment.supervisor import GATEWAY, ServiceFailed, Supervisor, check_plan

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_NATS = "nats://127.0.0.1:4222"
DEFAULT_CHANNEL = "shop"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def plan_from(settings: ShopSettings, env: Mapping[str, str], first_port: int) -> Plan:
    """The plan the settings describe (a bad DSN, broker URL or channel is a
    ConfigurationError naming the setting)."""
    checked = Settings.from_env({
        "INVARIANT_STORE": "postgres",
        "INVARIANT_POSTGRES_DSN": env.get("INVARIANT_POSTGRES_DSN") or DEFAULT_DSN,
        "INVARIANT_BROKER": "nats",
        "INVARIANT_BROKER_URL": env.get("INVARIANT_BROKER_URL") or DEFAULT_NATS,
        "INVARIANT_BROKER_CHANNEL": env.get("INVARIANT_BROKER_CHANNEL") or DEFAULT_CHANNEL})
    resolved = settings.resolved()
    assert checked.postgres_dsn is not None and checked.broker_url is not None
    plan = Plan(admin_dsn=checked.postgres_dsn, broker_url=checked.broker_url,
                channel=checked.broker_channel, data=resolved.data, secret=resolved.secret,
                admin_password=resolved.admin_password, host=resolved.host,
                gateway_port=resolved.port, first_port=first_port,
                smtp_port=resolved.smtp_port,
                redis_url=resolved.analytics_redis_url or DEFAULT_REDIS,
                passed_on={k: env[k] for k in PASSED_ON if k in env})
    check_plan(plan)
    return plan


def run_services(settings: ShopSettings, env: Mapping[str, str], first_port: int,
                 console: Console) -> int:
    """Start the set and watch it until Ctrl+C; the exit status."""
    try:
        plan = plan_from(settings, env, first_port)
    except ConfigurationError as exc:
        console.print(f"Configuration error: {exc}", markup=False, soft_wrap=True)
        return 2
    console.print(f"Starting shop as services: PostgreSQL {redact(plan.admin_dsn)}, NATS "
                  f"{plan.broker_url} (stream {plan.channel}); logs in {plan.data / 'logs'}",
                  markup=False, soft_wrap=True)
    try:
        with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
            asyncio.run(_run(plan, console))
    except ServiceFailed as exc:
        console.print(f"shop's services could not start: {exc}", markup=False, soft_wrap=True)
        return 1
    except (OSError, asyncpg.PostgresError, SQLAlchemyError) as exc:
        console.print(f"shop's services could not start: PostgreSQL refused or did not "
                      f"answer ({type(exc).__name__}: {str(exc).splitlines()[0]}); check "
                      "INVARIANT_POSTGRES_DSN (an account that may create roles)",
                      markup=False, soft_wrap=True)
        return 1
    except ConfigurationError as exc:
        console.print(f"Configuration error: {exc}", markup=False, soft_wrap=True)
        return 2
    console.print("Every service has stopped.")
    return 0


async def _run(plan: Plan, console: Console) -> None:
    task = asyncio.current_task()
    assert task is not None
    # SIGTERM (e.g. from a process manager) stops the set as Ctrl+C does.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    async with Supervisor(plan) as running:
        console.print(_table(plan, running))
        base = running.url(GATEWAY)
        console.print(f"The gateway serves shop's API at {base} (docs: {base}/docs).\n"
                      f"Try it: make demo DEMO_URL={base}   Stop with Ctrl+C.",
                      markup=False, soft_wrap=True)
        while True:
            await asyncio.sleep(1.0)
            for name, status in running.exited().items():
                console.print(f"{name} stopped (status {status}): {running.tail(name, 3)}; "
                              "starting it again", markup=False, soft_wrap=True)
                await running.restart(name)


def _table(plan: Plan, running: Supervisor) -> Table:
    table = Table(title="shop's services (all ready)")
    for column in ("service", "URL", "data", "pid"):
        table.add_column(column)
    for service in plan.services:
        env = plan.store(service.context)
        redis = " + Redis counters" if service.context == "analytics" else ""
        table.add_row(service.name, plan.url(service),
                      f"schema {env['INVARIANT_POSTGRES_SCHEMA']} (role of its own){redis}",
                      str(running.processes[service.name].pid))
    table.add_row(GATEWAY, running.url(GATEWAY), "none (routes to the services)",
                  str(running.processes[GATEWAY].pid))
    return table

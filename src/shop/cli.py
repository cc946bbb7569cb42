"""shop's command line: ``serve`` (the default), ``migrate`` and ``demo``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from pathlib import Path
from typing import NoReturn

import asyncpg
import typer
from rich.console import Console
from rich.panel import Panel
from sqlalchemy.exc import SQLAlchemyError

from invariant.config import redact
from invariant.domain.errors import ConfigurationError
from invariant.migrations import SchemaBehindError
from invariant.telemetry import configure_logging, configure_tracing
from shop.config import ShopSettings
from shop.platform.runtime import Shop
from shop.platform.serving import CouldNotStart, listening_socket, serve

app = typer.Typer(add_completion=False, no_args_is_help=False,
                  help="shop, the reference system of invariant.")
console = Console()


def _fail(message: str, code: int) -> NoReturn:
    """``message`` as one line on stderr (never wrapped), and exit with ``code``."""
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _settings() -> ShopSettings:
    try:
        configure_logging(os.environ)
        configure_tracing(os.environ)
        return ShopSettings.from_env()
    except ConfigurationError as exc:
        _fail(f"Configuration error: {exc}", 2)


def banner(shop: Shop) -> None:
    s = shop.settings
    base = f"http://{s.host}:{s.port}"
    where = (f"SQLite file {s.invariant.sqlite_path}" if s.invariant.store == "sqlite"
             else f"PostgreSQL, schema {s.invariant.postgres_schema}")
    mail = (f"{s.data / 'mail'}/*.eml (local SMTP sink on port {s.smtp_port})"
            if s.mail_sink else f"SMTP server {s.smtp_host}:{s.smtp_port}")
    password = (f"{s.admin_password}  (kept in {s.data / 'admin.password'})"
                if s.admin_password_generated else "(from SHOP_ADMIN_PASSWORD)")
    data = "" if s.data == ShopSettings().data else f"SHOP_DATA={s.data} "
    script = Path(sys.executable).parent / "invariant"  # make run's: .venv/bin/invariant
    invariant = script.relative_to(Path.cwd()) if script.is_relative_to(Path.cwd()) else (
        "invariant")
    console.print(Panel.fit(
        f"[bold]shop is running[/bold] at {base}\n\n"
        f"  API docs     {base}/docs\n"
        f"  OpenAPI      {base}/openapi.json\n"
        "  health       /health (alive), /ready, /status (admins)\n"
        f"  console      {base}/console (log in as the admin)\n"
        f"  admin        {s.admin_email}\n"
        f"  password     {password}\n"
        f"  data         {where}\n"
        f"  mail         {mail}\n"
        f"  workers      projections, fulfilment, relay, {len(shop.consumers)} consumers, "
        "jobs\n\n"
        "Try it: make demo (in another terminal) walks through sign-up and orders.\n"
        "Stop with Ctrl+C.", title="shop"))
    # Outside the panel and never wrapped by Rich, so that it can be copied whole.
    console.print(f"Operators: {data}INVARIANT_APP=shop.operations:app {invariant} projections "
                  "status", soft_wrap=True, markup=False, highlight=False)


@app.command("serve")
def serve_command(
    contexts: str = typer.Argument(
        "", help="Serve only these contexts as a service (e.g. ordering, or billing,analytics); "
                 "default: every context and worker in this process (make run)"),
) -> None:
    """Start shop: the HTTP API and every worker, in this process (make run); or, with
    CONTEXTS, those contexts as one service of a distributed shop."""
    settings = _settings()
    if contexts:
        _serve_service(settings, contexts)
        return
    try:
        sock = listening_socket(settings.host, settings.port)
    except CouldNotStart as exc:
        _fail(f"shop cannot start: {exc}", 1)
    try:
        shop = Shop(settings)
    except ConfigurationError as exc:
        sock.close()
        _fail(f"Configuration error: {exc}", 2)
    if settings.invariant.store == "sqlite":
        _migrate_embedded(settings, sock)
    try:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C: the shop has stopped
            asyncio.run(serve(shop, sock, on_started=banner))
    except CouldNotStart as exc:
        _fail(f"shop cannot start: {exc}", 1)


def _serve_service(settings: ShopSettings, spec: str) -> None:
    """``serve CONTEXTS``: refuse bad settings and a schema behind the code before taking
    the port, then serve until interrupted."""
    from invariant.hosting import SERVICE_ROLES
    from shop.platform.schemas import check_database
    from shop.platform.service import contexts_of, require_network_broker, service_modules

    try:
        contexts = contexts_of(spec)
        require_network_broker(settings.invariant.broker)
        shop = Shop(settings, modules=service_modules(contexts, os.environ),
                    roles=SERVICE_ROLES)
    except ConfigurationError as exc:
        _fail(f"Configuration error: {exc}", 2)
    name = "+".join(contexts)
    try:
        for context in contexts:
            asyncio.run(check_database(settings.invariant, context))
    except SchemaBehindError as exc:
        _fail(f"the {name} service cannot start: {exc}", 1)
    except ConfigurationError as exc:
        _fail(f"Configuration error: {exc}", 2)
    except (OSError, SQLAlchemyError) as exc:
        _fail(f"the {name} service cannot start: its database did not answer "
              f"({_in_short(exc)}); check INVARIANT_POSTGRES_DSN and "
              "INVARIANT_POSTGRES_SCHEMA", 1)
    try:
        sock = listening_socket(settings.host, settings.port)
    except CouldNotStart as exc:
        _fail(f"the {name} service cannot start: {exc}", 1)

    def started(shop: Shop) -> None:
        base = f"http://{settings.host}:{settings.port}"
        console.print(f"shop's {name} service at {base} (alive: {base}/health, ready: "
                      f"{base}/ready)", markup=False, highlight=False, soft_wrap=True)

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(shop, sock, on_started=started))
    except CouldNotStart as exc:
        _fail(f"the {name} service cannot start: {exc}", 1)


def _migrate_embedded(settings: ShopSettings, sock: socket.socket) -> None:
    """make run's SQLite file, made (or brought up to date) by the same migrations as a
    service's schema; what the shop still creates at start-up is then already there."""
    from shop.platform.contexts import CONTEXTS
    from shop.platform.schemas import migrate_database

    try:
        asyncio.run(migrate_database(settings.invariant, CONTEXTS))
    except (OSError, SQLAlchemyError) as exc:
        sock.close()
        _fail(f"shop cannot start: its SQLite file {settings.invariant.sqlite_path} could not "
              f"be migrated ({type(exc).__name__}: {exc}); check INVARIANT_SQLITE_PATH", 1)


@app.command("gateway")
def gateway_command() -> None:
    """Serve the gateway: shop's public HTTP API in front of the contexts' services
    (SHOP_SERVICE_<CONTEXT>_URL), on SHOP_HOST:SHOP_PORT."""
    import os

    import uvicorn

    from shop.gateway import gateway

    settings = _settings()
    try:
        app_ = gateway(settings, os.environ)
    except ConfigurationError as exc:
        _fail(f"Configuration error: {exc}", 2)
    try:
        sock = listening_socket(settings.host, settings.port)
    except CouldNotStart as exc:
        _fail(f"the gateway cannot start: {exc}", 1)
    config = uvicorn.Config(app_, log_level="warning", lifespan="on")
    console.print(f"shop's gateway at http://{settings.host}:{settings.port}", markup=False)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])


@app.command("services")
def services_command(
    first_port: int = typer.Option(8101, help="The first service's port; the others follow"),
) -> None:
    """Run shop as services on this machine (make run-services): every context its own
    process on PostgreSQL (its own role and schema) and NATS, ordering and notifications
    twice, the gateway on SHOP_PORT; Ctrl+C stops them all."""
    from shop.deployment.cli import run_services

    sys.exit(run_services(_settings(), os.environ, first_port, console))


@app.command()
def migrate(
    context: str = typer.Argument(..., help="The context whose schema to migrate, or all"),
) -> None:
    """Apply the schema migrations of CONTEXT (invariant's tables and the context's own) to
    the database the INVARIANT_* settings name; ``all``: every context's, in that one
    database (a single-process shop)."""
    from shop.platform.contexts import CONTEXTS
    from shop.platform.schemas import migrate_database

    settings = _settings()
    contexts = list(CONTEXTS) if context == "all" else [context]
    try:
        for line in asyncio.run(migrate_database(settings.invariant, contexts)):
            console.print(line, markup=False, highlight=False)
    except ConfigurationError as exc:
        _fail(f"Configuration error: {exc}", 2)
    except (OSError, SQLAlchemyError) as exc:
        _fail(f"shop cannot migrate {context}: the database did not answer "
              f"({_in_short(exc)}); check INVARIANT_STORE and INVARIANT_POSTGRES_DSN", 1)


def _in_short(exc: BaseException) -> str:
    """A driver's error in one line: its type and the first line of its message."""
    text = str(exc)
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


@app.command()
def provision(
    context: str = typer.Argument(..., help="The context to give a role and schema, or all"),
    prefix: str = typer.Option("shop_", help="Role and schema names: PREFIX + context"),
) -> None:
    """Give CONTEXT (or every context) its own PostgreSQL role and a schema that role owns,
    and nothing else; run with an INVARIANT_POSTGRES_DSN allowed to create roles. Prints
    the settings each service then runs (and migrates) with."""
    from shop.platform.contexts import CONTEXTS
    from shop.platform.ownership import provision as provision_roles
    from shop.platform.ownership import service_dsn

    settings = _settings().invariant
    if not settings.postgres_dsn:
        _fail("Configuration error: INVARIANT_POSTGRES_DSN is not set; provision needs the "
              "PostgreSQL server (an account allowed to create roles)", 2)
    contexts = list(CONTEXTS) if context == "all" else [context]
    try:
        owners = asyncio.run(provision_roles(settings.postgres_dsn, contexts, prefix=prefix))
    except ConfigurationError as exc:
        _fail(f"Configuration error: {exc}", 2)
    except (OSError, asyncpg.PostgresError) as exc:
        _fail(f"shop cannot provision {context}: PostgreSQL refused or did not answer "
              f"({type(exc).__name__}: {exc}); check INVARIANT_POSTGRES_DSN", 1)
    for owner in owners:
        typer.echo(f"{owner.context}: INVARIANT_POSTGRES_DSN="
                   f"{redact(service_dsn(settings.postgres_dsn, owner))} "
                   f"INVARIANT_POSTGRES_SCHEMA={owner.schema}")


@app.command()
def demo(
    url: str = typer.Option("", help="Run against a shop already serving at this URL "
                                     "(default: start one in this process)"),
) -> None:
    """Walk through shop over HTTP: sign-up with the emailed code, then orders that
    succeed, fail on stock, fail on payment after retries, and time out."""
    from shop.demo import run_demo

    sys.exit(asyncio.run(run_demo(_settings(), url or None, console)))


def main() -> None:
    argv = sys.argv[1:]
    if not argv or (argv[0].startswith("-") and argv[0] not in ("--help", "-h")):
        sys.argv.insert(1, "serve")
    app()

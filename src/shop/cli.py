"""shop's command line: ``serve`` (the default) and ``demo``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import typer
import uvicorn
from rich.console import Console
from rich.panel import Panel

from invariant.domain.errors import ConfigurationError
from shop.config import ShopSettings
from shop.platform.http import create_app
from shop.platform.runtime import Shop

app = typer.Typer(add_completion=False, no_args_is_help=False,
                  help="shop, the reference system of invariant.")
console = Console()


def _settings() -> ShopSettings:
    try:
        return ShopSettings.from_env()
    except ConfigurationError as exc:
        console.print(f"[red]Configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


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
        f"  health       {base}/health\n"
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


@app.command()
def serve() -> None:
    """Start shop: the HTTP API and every worker, in this process (make run)."""
    settings = _settings()
    try:
        shop = Shop(settings)
    except ConfigurationError as exc:
        console.print(f"[red]Configuration error:[/red] {exc}")
        raise typer.Exit(2) from None
    api = create_app(shop, on_started=banner)
    config = uvicorn.Config(api, host=settings.host, port=settings.port, log_level="warning")
    try:
        uvicorn.Server(config).run()
    except OSError as exc:
        console.print(f"[red]Could not serve on {settings.host}:{settings.port}:[/red] {exc}; "
                      "set SHOP_PORT to a free port")
        raise typer.Exit(1) from None


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

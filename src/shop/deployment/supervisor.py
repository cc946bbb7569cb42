"""Starts the services mode on one machine and stops it (``make run-services``).

``async with Supervisor(plan) as running:`` gives every context its PostgreSQL role and
schema, migrates each schema as its own role, starts the local mail sink, then each
service (``python -m shop serve CONTEXT``) and the gateway as processes of their own, and
returns once every one answers ``/ready``. Leaving stops them all (SIGTERM, then SIGKILL
after a grace period). Each process writes its log to ``<data>/logs/<name>.log``.

A small supervisor of our own rather than honcho: it must provision and migrate before
anything starts, wait for readiness rather than for a port, and kill and restart one
service on demand (the tests that kill -9 a service mid-stream use it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2 as httpx

from invariant.config import Settings
from invariant.domain.errors import ConfigurationError
from shop.deployment.plan import Plan, Service
from shop.notifications.infrastructure import mail_sink
from shop.platform.contexts import CONTEXTS
from shop.platform.ownership import provision
from shop.platform.schemas import migrate_database

GATEWAY = "gateway"
STOP_GRACE = 10.0
READY_WITHIN = 90.0


class ServiceFailed(Exception):
    """A service exited or never became ready; the message quotes its log's last lines."""


class Supervisor:
    """The services of ``plan`` and its gateway, as child processes."""

    def __init__(self, plan: Plan, *, ready_within: float = READY_WITHIN) -> None:
        self.plan = plan
        self.ready_within = ready_within
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self._stack = contextlib.AsyncExitStack()

    @property
    def logs(self) -> Path:
        return self.plan.data / "logs"

    async def __aenter__(self) -> Supervisor:
        try:
            await self.prepare()
            await self._stack.enter_async_context(self._mail_sink())
            for service in self.plan.services:
                await self.spawn(service.name)
            await self.spawn(GATEWAY)
            await asyncio.gather(*(self.wait_ready(name) for name in self.processes))
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await asyncio.gather(*(self.stop(name) for name in list(self.processes)))
        finally:
            await self._stack.aclose()

    async def prepare(self) -> list[str]:
        """Provision every context's role and schema, and migrate each as its own role;
        one line per migration chain."""
        plan = self.plan
        await provision(plan.admin_dsn, list(CONTEXTS), prefix=plan.prefix)
        done: list[str] = []
        for context in CONTEXTS:
            env = plan.store(context)
            settings = Settings(store="postgres", postgres_dsn=env["INVARIANT_POSTGRES_DSN"],
                                postgres_schema=env["INVARIANT_POSTGRES_SCHEMA"])
            done += [f"{context}: {line}"
                     for line in await migrate_database(settings, [context])]
        return done

    @contextlib.asynccontextmanager
    async def _mail_sink(self) -> AsyncIterator[None]:
        async with mail_sink(self.plan.host, self.plan.smtp_port, self.plan.data / "mail"):
            yield

    def url(self, name: str) -> str:
        if name == GATEWAY:
            return f"http://{self.plan.host}:{self.plan.gateway_port}"
        return self.plan.url(self.plan.service(name))

    async def spawn(self, name: str) -> None:
        """Start ``name`` (a service or the gateway); it is not waited for."""
        if name == GATEWAY:
            args, env = ["gateway"], self.plan.gateway_environment()
        else:
            service: Service = self.plan.service(name)
            args, env = ["serve", service.context], self.plan.environment(service)
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("ab") as log:
            self.processes[name] = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "shop", *args, stdout=log, stderr=log,
                stdin=asyncio.subprocess.DEVNULL, env={**_inherited(), **env},
                preexec_fn=_die_with_parent)

    async def wait_ready(self, name: str) -> None:
        """Until ``name`` answers ``/ready`` with 200; ServiceFailed if it exits first or
        is not ready within the bound."""
        process = self.processes[name]
        deadline = asyncio.get_running_loop().time() + self.ready_within
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if process.returncode is not None:
                    raise ServiceFailed(f"{name} exited with status {process.returncode}: "
                                        f"{self.tail(name)}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url(name)}/ready")).status_code == 200:
                        return
                if asyncio.get_running_loop().time() > deadline:
                    raise ServiceFailed(f"{name} was not ready within {self.ready_within:.0f} "
                                        f"s: {self.tail(name)}")
                await asyncio.sleep(0.2)

    async def kill(self, name: str) -> None:
        """SIGKILL ``name`` (nothing it holds is flushed or released)."""
        process = self.processes[name]
        if process.returncode is None:
            process.kill()
        await process.wait()

    async def restart(self, name: str) -> None:
        """Start ``name`` again after it stopped, and wait until it is ready."""
        await self.spawn(name)
        await self.wait_ready(name)

    async def stop(self, name: str) -> None:
        """SIGTERM ``name``; SIGKILL after :data:`STOP_GRACE` seconds."""
        process = self.processes[name]
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_GRACE):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()

    def exited(self) -> dict[str, int]:
        """The processes that have stopped, with their exit status."""
        return {name: p.returncode for name, p in self.processes.items()
                if p.returncode is not None}

    def tail(self, name: str, lines: int = 8) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        last = [line for line in text.splitlines() if line.strip()][-lines:]
        return " | ".join(last) or f"(nothing in {path})"


def _die_with_parent() -> None:
    """In the child, before it runs: on Linux, SIGTERM when the supervisor dies (even by
    SIGKILL), so no service outlives it holding its port; its own process group, so a
    Ctrl+C in the terminal reaches the supervisor only and it stops them in order."""
    os.setpgrp()
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _inherited() -> dict[str, str]:
    """The supervisor's environment without its own shop and invariant settings: each
    process gets exactly the plan's."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("SHOP_", "INVARIANT_"))}


def check_plan(plan: Plan) -> None:
    """Refuse a plan whose ports collide (one line naming them)."""
    ports = [plan.gateway_port, plan.smtp_port, *(s.port for s in plan.services)]
    twice = sorted({p for p in ports if ports.count(p) > 1})
    if twice:
        raise ConfigurationError(f"port(s) {', '.join(map(str, twice))} given to two "
                                 "processes; set SHOP_PORT, SHOP_SMTP_PORT and --first-port apart")

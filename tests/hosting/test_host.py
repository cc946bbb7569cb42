"""One composition root: modules in, a host out that runs the roles it is for."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import APIRouter
from sqlalchemy import Column, Connection, MetaData, String, Table, select

from invariant import Settings
from invariant import bootstrap as root
from invariant.application import Command, UnitOfWork
from invariant.domain import ConfigurationError
from invariant.hosting import ALL_ROLES, Host, Module, Provision, Role, bootstrap, roles_from
from invariant.messaging.brokers.inprocess import InProcessBroker
from invariant.messaging.port import Message
from invariant.store import MemoryStorage
from invariant.store.records import OutboxMessage
from tests.messaging.helpers import wait_until

metadata = MetaData()
notes = Table("hosting_notes", metadata, Column("text", String, primary_key=True))


@dataclass(frozen=True, kw_only=True)
class TakeNote(Command):
    text: str


async def take_note(command: TakeNote, uow: UnitOfWork) -> str:
    uow.emit(OutboxMessage(uuid.uuid4(), "note.taken", 1, {"text": command.text}))
    return command.text


def keep_note(conn: Connection, message: Message) -> None:
    conn.execute(notes.insert().values(text=message.data["text"]))


GREETING: Provision[str] = Provision("greeting")


def notes_module(steps: list[str] | None = None) -> Module:
    """A context that takes notes (a command), publishes them (the outbox) and keeps them
    (a consumer into its own table); ``steps`` records its start-up and shut-down."""
    record = steps if steps is not None else []

    async def setup(host: Host) -> None:
        assert host.read_models is not None
        found = await host.read_models.run(lambda conn: conn.execute(select(notes)).all())
        record.append(f"setup: the table is there ({len(found)} notes)")

    @asynccontextmanager
    async def lifespan(host: Host) -> AsyncIterator[None]:
        record.append("lifespan entered")
        yield
        record.append("lifespan left")

    return Module(name="notes", commands={TakeNote: take_note},
                  consumers={"notes": keep_note}, tables=metadata, setup=setup,
                  lifespan=lifespan, router=APIRouter(), provides={GREETING: "hello"})


def sqlite(tmp_path: Path) -> Settings:
    return Settings(store="sqlite", sqlite_path=tmp_path / "app.db")


async def kept(host: Host) -> list[str]:
    assert host.read_models is not None
    rows = await host.read_models.run(lambda conn: conn.execute(select(notes.c.text)).all())
    return sorted(text for (text,) in rows)


async def holds(host: Host, texts: list[str]) -> bool:
    return await kept(host) == texts


async def test_a_host_with_every_role_runs_commands_relay_and_consumers(tmp_path: Path) -> None:
    steps: list[str] = []
    host = bootstrap(sqlite(tmp_path), [notes_module(steps)], broker=InProcessBroker())
    assert host.roles == ALL_ROLES
    async with host:
        assert steps == ["setup: the table is there (0 notes)", "lifespan entered"]
        await host.commands.dispatch(TakeNote(text="milk"))
        await wait_until(lambda: holds(host, ["milk"]), 10)
    assert steps[-1] == "lifespan left"
    assert [c.name for c in host.consumers] == ["notes"]
    assert host.relay is not None and host.provided(GREETING) == ["hello"]
    assert len(host.routers) == 1


async def test_a_host_runs_only_the_roles_it_is_for(tmp_path: Path) -> None:
    host = bootstrap(sqlite(tmp_path), [notes_module()], roles=["http"])
    assert (host.broker, host.relay, host.consumers, host.jobs, host.processes) == (
        None, None, [], None, None)
    async with host:
        await host.commands.dispatch(TakeNote(text="bread"))  # left in the outbox
        assert await kept(host) == []
    workers = bootstrap(sqlite(tmp_path), [notes_module()], roles=[Role.RELAY, Role.CONSUMERS],
                        broker=InProcessBroker())
    assert workers.routers == []
    async with workers:  # another process picks up what the first one wrote
        await wait_until(lambda: holds(workers, ["bread"]), 10)


def test_the_package_root_bootstrap_takes_modules_and_gives_a_host(tmp_path: Path) -> None:
    host = root(sqlite(tmp_path), modules=[notes_module()], roles=["http"])
    assert isinstance(host, Host)


def test_a_role_that_does_not_exist_is_named_with_those_that_do() -> None:
    assert roles_from([" HTTP ", "jobs"]) == {Role.HTTP, Role.JOBS}
    with pytest.raises(ConfigurationError, match=r"'web' is not a role; a host runs some of: "
                                                 r"http, projections, relay"):
        roles_from(["web"])


def test_a_module_given_twice_or_two_owners_of_a_command_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"module\(s\) registered twice: notes"):
        bootstrap(sqlite(tmp_path), [notes_module(), notes_module()])
    other = Module(name="other", commands={TakeNote: take_note})
    with pytest.raises(ConfigurationError,
                       match="command TakeNote is handled by both notes and other"):
        bootstrap(sqlite(tmp_path), [notes_module(), other])


def test_work_that_needs_a_database_is_refused_on_the_memory_store() -> None:
    with pytest.raises(ConfigurationError, match="set INVARIANT_STORE=sqlite or postgres "
                                                 r"\(or leave out the relay role\)"):
        bootstrap(Settings(store="memory"), [notes_module()])


async def test_a_host_of_commands_alone_runs_on_the_memory_store() -> None:
    storage = MemoryStorage()
    module = Module(name="notes", commands={TakeNote: take_note})
    async with bootstrap(Settings(store="memory"), [module], roles=[Role.HTTP],
                         storage=storage) as host:
        result = await host.commands.dispatch(TakeNote(text="eggs"))
    assert result.value == "eggs"
    assert host.read_models is None

"""The embedded mode: the bootstrap runs the relay inside the application, onto the
in-process broker; a command's events reach a consumer with no server at all. The broker
may come from the settings (``INVARIANT_BROKER``), a server's too."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from examples.bank.application import COMMAND_HANDLERS, COMMANDS, DepositMoney, OpenAccount
from examples.bank.domain import EVENTS
from examples.bank.wiring import upcasters
from invariant import App, Settings, bootstrap
from invariant.domain import ConfigurationError, Money
from invariant.messaging.brokers.inprocess import InProcessBroker
from invariant.testing.broker_contract import drain


async def test_commands_events_reach_the_in_process_broker_through_the_relay(
    tmp_path: Path
) -> None:
    settings = Settings.from_env({"INVARIANT_STORE": "sqlite",
                                  "INVARIANT_SQLITE_PATH": str(tmp_path / "app.db")})
    broker = InProcessBroker()
    await broker.declare("ledger")
    app = bootstrap(settings, events=EVENTS, upcasters=upcasters(),
                    command_handlers=COMMAND_HANDLERS, commands=COMMANDS, broker=broker)
    async with app:
        await app.commands.dispatch(OpenAccount(account_id="A1", owner_id="U1",
                                                initial_deposit=Money.of(5, "USD")))
        await app.commands.dispatch(DepositMoney(account_id="A1", amount=Money.of(7, "USD")))
        got = []
        async with asyncio.timeout(10):
            while len(got) < 2:
                got += await broker.fetch("ledger", max_messages=10, timeout=0.5)
        assert app.relay is not None
        assert (await app.relay.lag()).pending == 0
    assert [d.message.stream_id for d in got] == ["account-A1", "account-A1"]
    assert [d.message.message_type for d in got][1] == "MoneyDeposited"


def bank_app(settings: Settings) -> App:
    return bootstrap(settings, events=EVENTS, upcasters=upcasters(),
                     command_handlers=COMMAND_HANDLERS, commands=COMMANDS)


async def test_the_broker_can_come_from_the_settings(tmp_path: Path) -> None:
    settings = Settings.from_env({"INVARIANT_SQLITE_PATH": str(tmp_path / "app.db"),
                                  "INVARIANT_BROKER": "inprocess"})
    app = bank_app(settings)
    assert app.relay is not None and isinstance(app.relay.broker, InProcessBroker)
    broker = app.relay.broker
    await broker.declare("ledger")
    async with app:
        await app.commands.dispatch(OpenAccount(account_id="A1", owner_id="U1",
                                                initial_deposit=Money.of(5, "USD")))
        async with asyncio.timeout(10):
            got = await broker.fetch("ledger", max_messages=10, timeout=5)
    assert [d.message.stream_id for d in got] == ["account-A1"]


async def test_a_server_broker_from_the_settings_receives_the_events(tmp_path: Path) -> None:
    """INVARIANT_BROKER=nats: the application's relay publishes to the real NATS server."""
    from invariant.messaging.brokers.nats import NatsBroker
    from tests.messaging.conftest import NATS_URL, require_port

    require_port("NATS", 4222)
    channel = f"t{uuid.uuid4().hex[:10]}"
    settings = Settings.from_env({
        "INVARIANT_SQLITE_PATH": str(tmp_path / "app.db"), "INVARIANT_BROKER": "nats",
        "INVARIANT_BROKER_URL": NATS_URL, "INVARIANT_BROKER_CHANNEL": channel})
    consumer = NatsBroker(NATS_URL, stream=channel.upper())
    await consumer.connect()
    try:
        await consumer.declare("ledger")
        app = bank_app(settings)
        assert app.relay is not None and isinstance(app.relay.broker, NatsBroker)
        async with app:
            await app.commands.dispatch(OpenAccount(account_id="A1", owner_id="U1",
                                                    initial_deposit=Money.of(5, "USD")))
            await app.commands.dispatch(DepositMoney(account_id="A1",
                                                     amount=Money.of(7, "USD")))
            got = await drain(consumer, "ledger", 2, seconds=15)
        assert [d.message.message_type for d in got][1] == "MoneyDeposited"
    finally:
        await consumer._jetstream().delete_stream(channel.upper())
        await consumer.close()


def test_a_relay_on_the_memory_store_is_refused_with_advice() -> None:
    with pytest.raises(ConfigurationError, match=r"set INVARIANT_STORE=sqlite or postgres, "
                                                 r"or unset INVARIANT_BROKER"):
        bank_app(Settings.from_env({"INVARIANT_STORE": "memory",
                                    "INVARIANT_BROKER": "inprocess"}))

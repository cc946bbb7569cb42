"""The embedded mode: the bootstrap runs the relay inside the application, onto the
in-process broker; a command's events reach a consumer with no server at all."""

from __future__ import annotations

import asyncio
from pathlib import Path

from examples.bank.application import COMMAND_HANDLERS, COMMANDS, DepositMoney, OpenAccount
from examples.bank.domain import EVENTS
from examples.bank.wiring import upcasters
from invariant import Settings, bootstrap
from invariant.domain import Money
from invariant.messaging.inprocess import InProcessBroker


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

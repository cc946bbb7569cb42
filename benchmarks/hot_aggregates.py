"""Commands of one process on a few hot aggregates: CPU per command and retries.

The bank example's deposits on ``--accounts`` accounts, ``--window`` at a time, through
the default command bus (with its retries) on a SQLite store in a temporary directory:
what many orders reserving the stock of a few products look like to the framework. Run it
with each tree first on ``PYTHONPATH`` to compare two trees::

    PYTHONPATH=/work/main/src:/work/main python -m benchmarks.hot_aggregates
    python -m benchmarks.hot_aggregates --accounts 2000   # no contention

Prints the CPU time per command (``time.process_time``: steadier than wall-clock rates on
a shared machine), the commands per second and how many retries they took. Nothing here
is published.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from examples.bank.application import COMMAND_HANDLERS, COMMANDS, DepositMoney, OpenAccount
from examples.bank.wiring import bank_store
from invariant.application import Aggregates, CommandBus, default_middleware
from invariant.domain.money import Money
from invariant.store.sqlite import SQLiteStorage


async def measure(commands: int, window: int, accounts: int) -> str:
    with tempfile.TemporaryDirectory() as directory:
        storage = SQLiteStorage(Path(directory) / "events.db")
        await storage.setup()
        try:
            bus = CommandBus(Aggregates(bank_store(storage)), COMMAND_HANDLERS,
                             middleware=default_middleware(storage, retries=50),
                             commands=COMMANDS)
            ids = [f"A{i}" for i in range(accounts)]
            for account in ids:
                await bus.dispatch(OpenAccount(account_id=account, owner_id="U",
                                               initial_deposit=Money.of(0, "USD")))
            one = Money.of(1, "USD")

            async def deposits(first: int) -> int:
                results = await asyncio.gather(*[
                    bus.dispatch(DepositMoney(account_id=ids[i % accounts], amount=one))
                    for i in range(first, first + window)])
                return sum(r.retries for r in results)

            await deposits(0)  # warm: decoders, statements
            cpu, wall, retries = time.process_time(), time.perf_counter(), 0
            for first in range(0, commands, window):
                retries += await deposits(first)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        finally:
            await storage.close()
    return (f"{commands} deposits on {accounts} accounts, {window} at a time: "
            f"{1e6 * cpu / commands:.0f} µs of CPU each, {commands / wall:.0f}/s, "
            f"{retries} retries")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=3000)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--accounts", type=int, default=8)
    args = parser.parse_args()
    print(asyncio.run(measure(args.commands, args.window, args.accounts)))


if __name__ == "__main__":
    main()

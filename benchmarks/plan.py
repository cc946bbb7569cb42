"""The data every system works on: same accounts, same seeded deposit targets, same amounts."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from decimal import Decimal

SEED = 42
ACCOUNTS = 2_000
DEPOSITS = 18_000
LONG_STREAM = 10_000
SENDERS = 64
LOAD_RUNS = 20
LOAD_WARMUP = 2

OPENING_BALANCE = Decimal("100.00")
DEPOSIT = Decimal("10.00")
CURRENCY = "USD"
OWNER = "owner-1"


@dataclass(frozen=True, slots=True)
class Plan:
    """Counts after scaling, plus the seeded account ids and deposit targets."""

    scale: float
    accounts: tuple[uuid.UUID, ...]
    deposits: tuple[uuid.UUID, ...]
    long_stream: int
    long_stream_id: uuid.UUID
    senders: int
    load_runs: int

    @property
    def commands(self) -> int:
        return len(self.accounts) + len(self.deposits)

    def expected_balances(self) -> dict[uuid.UUID, Decimal]:
        balances = dict.fromkeys(self.accounts, OPENING_BALANCE)
        for a in self.deposits:
            balances[a] += DEPOSIT
        return balances


def make_plan(scale: float = 1.0, seed: int = SEED) -> Plan:
    """The plan at ``scale``; another ``seed`` gives other accounts (W5 runs several plans
    in one store)."""
    if scale <= 0:
        raise ValueError("scale must be > 0")
    rnd = random.Random(seed)
    n_accounts = max(10, round(ACCOUNTS * scale))
    n_deposits = max(10, round(DEPOSITS * scale))
    accounts = tuple(uuid.UUID(int=rnd.getrandbits(128), version=4) for _ in range(n_accounts))
    deposits = tuple(rnd.choice(accounts) for _ in range(n_deposits))
    long_id = uuid.UUID(int=rnd.getrandbits(128), version=4)
    return Plan(
        scale=scale,
        accounts=accounts,
        deposits=deposits,
        long_stream=max(100, round(LONG_STREAM * scale)),
        long_stream_id=long_id,
        senders=min(SENDERS, n_accounts),
        load_runs=LOAD_RUNS,
    )

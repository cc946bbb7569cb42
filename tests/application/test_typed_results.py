"""A command names its result type, and dispatching it is typed by it (checked by mypy)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from mypy import api

SNIPPET = '''
from invariant.application import CommandBus
from invariant.application.messages import CommandResult
from examples.bank.application import OpenAccount
from invariant.domain import Money


async def use(bus: CommandBus) -> None:
    result = await bus.dispatch(OpenAccount(account_id="A", owner_id="U",
                                            initial_deposit=Money.of(1, "USD")))
    typed: CommandResult[str] = result
    wrong: int = result.value
'''


def test_dispatching_a_command_gives_a_result_of_its_declared_type(tmp_path: Path) -> None:
    module = tmp_path / "typed_use.py"
    module.write_text(textwrap.dedent(SNIPPET))
    # The project's cache (mypy's own format, safe to share) keeps this to seconds.
    out, err, status = api.run([str(module), "--strict", "--follow-imports=silent"])
    assert status == 1, out + err
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 1, out
    assert 'Incompatible types in assignment (expression has type "str", variable has type ' \
           '"int")' in errors[0]

"""The one retry policy, as consumers, jobs, processes and projections use it."""

from __future__ import annotations

import pytest

from invariant.domain.errors import ConfigurationError
from invariant.messaging import RetryPolicy as MessagingRetryPolicy
from invariant.processes import RetryPolicy as ProcessesRetryPolicy
from invariant.projections import RetryPolicy as ProjectionsRetryPolicy
from invariant.retry import RetryPolicy


def test_waits_double_from_the_first_delay_up_to_the_maximum() -> None:
    policy = RetryPolicy(attempts=6, first_delay=0.5, max_delay=3.0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert RetryPolicy(first_delay=1.0, factor=3.0).delay(3) == 9.0


def test_every_package_hands_out_the_same_policy() -> None:
    assert MessagingRetryPolicy is ProcessesRetryPolicy is ProjectionsRetryPolicy is RetryPolicy


@pytest.mark.parametrize(("options", "message"), [
    ({"attempts": 0}, "attempts >= 1"),
    ({"first_delay": -1.0}, "must not be negative"),
    ({"max_delay": -0.1}, "must not be negative"),
    ({"factor": 0.5}, "factor >= 1"),
])
def test_a_policy_that_could_not_work_is_refused_with_the_reason(
    options: dict[str, float], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RetryPolicy(**options)  # type: ignore[arg-type]

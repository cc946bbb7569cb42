"""Property: any input yields a valid value object or invariant's ValidationError, nothing else."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from examples.users.contracts import UserProfile
from invariant.contracts import Contract
from invariant.domain import ValidationError
from tests.contracts.test_contract import Account

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-5, max_value=200),
    st.floats(allow_nan=True, allow_infinity=True), st.text(), st.binary(),
    st.decimals(allow_nan=True), st.datetimes(), st.datetimes(timezones=st.timezones()),
    st.dates(), st.uuids(), st.sampled_from(["active", "suspended", "pending", "Active"]),
    st.emails(), st.builds(object), st.just(float("nan")), st.characters(codec=None).map(str),
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner,
                                                                           max_size=3),
    max_leaves=6,
)
keys = st.one_of(
    st.sampled_from(["email", "status", "age", "opened", "closed", "balance", "key", "tier",
                     "active", "ratio"]),
    st.text(max_size=8), st.integers(), st.none(),
)
inputs = st.one_of(
    st.dictionaries(keys, values, max_size=6),
    st.fixed_dictionaries(
        {"email": st.emails() | st.text(), "status": st.sampled_from(["active", "pending"])},
        optional={"age": st.integers(min_value=0, max_value=150) | st.none() | values},
    ),
    values,
)


def check_outcome(contract: type[Contract], data: Any) -> None:
    try:
        value = contract.create(data)
    except ValidationError as exc:
        assert exc.errors, "a ValidationError lists at least one problem"
        for error in exc.errors:
            assert isinstance(error.field, str) and isinstance(error.code, str)
            assert error.message and isinstance(error.message, str)
        return
    assert isinstance(value, contract)
    # A valid value is storable and survives the trip through JSON unchanged.
    assert contract.from_json(orjson.loads(orjson.dumps(value.to_json()))) == value
    assert contract.from_row(value.to_row()) == value


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(inputs)
@example({"email": "a@b.co", "status": "active", "age": True})
@example({"email": "a@b.co", "status": "active", "age": 13.0})
@example({"email": "a@b.co", "status": "active", "age": float("nan")})
@example({"email": "\ud800@b.co", "status": "pending"})
@example({1: "x", "email": "a@b.co", "status": "pending"})
def test_any_input_gives_a_user_profile_or_a_validation_error(data: Any) -> None:
    check_outcome(UserProfile, data)


accounts = st.fixed_dictionaries(
    {"opened": st.datetimes(timezones=st.timezones()) | st.datetimes() | values},
    optional={
        "balance": st.decimals() | st.text() | values,
        "tier": st.sampled_from(["free", "pro", "gold"]), "ratio": st.floats() | values,
        "closed": st.datetimes(timezones=st.timezones()) | st.none() | values,
    },
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(inputs | accounts)
@example({"opened": "2024-01-01T00:00:00"})
@example({"opened": "2024-01-01T00:00:00+14:00", "balance": "NaN"})
@example({"opened": "2024-01-01T00:00:00Z", "balance": "1e400", "ratio": "inf"})
def test_any_input_gives_an_account_or_a_validation_error(data: Any) -> None:
    check_outcome(Account, data)


@settings(max_examples=200)
@given(st.emails(), st.sampled_from(["active", "suspended", "pending"]),
       st.integers(min_value=13, max_value=120) | st.none())
def test_every_valid_user_profile_is_accepted(email: str, status: str, age: int | None) -> None:
    if len(email) > 255 or (status == "active" and age is None):
        return
    profile = UserProfile.create({"email": email, "status": status, "age": age})
    assert (profile.email, profile.status, profile.age) == (email, status, age)

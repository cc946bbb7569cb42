"""The seed's User contract as a value object: validation, rules, immutability, serialization."""

from __future__ import annotations

import dataclasses
import enum
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

import orjson
import pytest

from examples.users.contracts import UserProfile
from invariant.contracts import Contract, UtcDateTime, field, rule
from invariant.domain import ConfigurationError, SerializationError, ValidationError

ACTIVE = {"email": "ada@example.com", "status": "active", "age": 36}


def problems(data: object) -> set[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        UserProfile.create(data)
    assert caught.value.subject == "UserProfile"
    return {(e.field, e.code) for e in caught.value.errors}


def test_a_valid_user_becomes_a_value_with_its_fields() -> None:
    user = UserProfile.create(ACTIVE)
    assert (user.email, user.status, user.age) == ("ada@example.com", "active", 36)
    assert user.is_active


def test_every_invalid_field_is_reported_at_once_with_field_message_and_code() -> None:
    with pytest.raises(ValidationError) as caught:
        UserProfile.create({"email": "not-an-email", "status": "deleted", "age": 7})
    by_field = {e.field: e for e in caught.value.errors}
    assert set(by_field) == {"email", "status", "age"}
    assert by_field["email"].code == "invalid_email"
    assert by_field["status"].code == "invalid_choice"
    assert "'active', 'suspended' or 'pending'" in by_field["status"].message
    assert by_field["age"].code == "too_small"
    assert caught.value.to_json()["errors"][0].keys() == {"field", "message", "code"}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"status": "pending"}, {("email", "required")}),
        ({**ACTIVE, "age": 121}, {("age", "too_large")}),
        ({**ACTIVE, "age": "old"}, {("age", "invalid_type")}),
        ({**ACTIVE, "email": "x@" + "a" * 250 + ".com"}, {("email", "too_long")}),
        ({**ACTIVE, "nickname": "ada"}, {("nickname", "unknown_field")}),
        ({**ACTIVE, 3: "x"}, {("3", "invalid_key")}),
        ([("email", "a@b.co")], {("", "invalid_type")}),
        (None, {("", "invalid_type")}),
        ("ada@example.com", {("", "invalid_type")}),
    ],
)
def test_invalid_inputs_name_the_field_and_a_stable_code(
    data: object, expected: set[tuple[str, str]]
) -> None:
    assert problems(data) == expected


def test_age_is_required_for_active_users_but_not_for_pending_ones() -> None:
    assert problems({"email": "ada@example.com", "status": "active"}) == {
        ("age", "required_when_active")
    }
    assert UserProfile.create({"email": "ada@example.com", "status": "pending"}).age is None


def test_the_constructor_raises_invariants_error_too_never_pydantics() -> None:
    with pytest.raises(ValidationError) as caught:
        UserProfile(email="nope", status="active", age=30)
    assert [e.field for e in caught.value.errors] == ["email"]
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_values_are_immutable_and_equal_by_value() -> None:
    user = UserProfile.create(ACTIVE)
    with pytest.raises(dataclasses.FrozenInstanceError, match="immutable"):
        user.email = "eve@example.com"  # type: ignore[misc]
    twin = UserProfile(email="ada@example.com", status="active", age=36)
    assert user == twin and hash(user) == hash(twin)
    assert user != user.suspend()


def test_a_transformation_returns_a_new_value_and_validates_it_again() -> None:
    pending = UserProfile.create({"email": "ada@example.com", "status": "pending"})
    assert pending.suspend().status == "suspended"
    assert pending.status == "pending"
    with pytest.raises(ValidationError) as caught:
        pending.activate()  # no age known: the rule refuses the new value
    assert [(e.field, e.code) for e in caught.value.errors] == [("age", "required_when_active")]
    assert pending.activate(age=20).is_active


def test_replace_refuses_fields_the_contract_does_not_have() -> None:
    with pytest.raises(ValidationError, match="nickname"):
        UserProfile.create(ACTIVE).replace(nickname="ada")


def test_to_json_is_explicit_and_round_trips() -> None:
    user = UserProfile.create(ACTIVE)
    data = user.to_json()
    assert data == {"email": "ada@example.com", "status": "active", "age": 36}
    assert UserProfile.from_json(orjson.loads(orjson.dumps(data))) == user


class Tier(enum.Enum):
    FREE = "free"
    PRO = "pro"


class Account(Contract):
    """Every supported field type, for serialization tests."""

    opened: UtcDateTime
    closed: UtcDateTime | None = None
    balance: Decimal = Decimal("0")
    key: UUID = UUID(int=1)
    tier: Tier = Tier.FREE
    active: bool = True
    ratio: float = 0.5


def test_date_times_are_utc_iso_8601_in_json_and_naive_ones_are_refused() -> None:
    paris = timezone(timedelta(hours=2))
    account = Account.create({"opened": datetime(2024, 5, 1, 14, 0, tzinfo=paris)})
    assert account.opened == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert account.opened.tzinfo is UTC
    data = account.to_json()
    assert data["opened"] == "2024-05-01T12:00:00+00:00"
    assert data["closed"] is None
    assert (data["balance"], data["key"], data["tier"]) == ("0", str(UUID(int=1)), "free")
    assert Account.from_json(orjson.loads(orjson.dumps(data))) == account
    with pytest.raises(ValidationError) as caught:
        Account.create({"opened": "2024-05-01T12:00:00"})
    assert [(e.field, e.code) for e in caught.value.errors] == [("opened", "timezone_required")]


def test_to_row_keeps_python_values_and_from_row_restores_the_value() -> None:
    account = Account.create({"opened": "2024-05-01T12:00:00Z", "tier": "pro"})
    row = account.to_row()
    assert row["tier"] == "pro" and row["balance"] == Decimal("0")
    naive_utc = {**row, "opened": datetime(2024, 5, 1, 12, 0)}  # what SQLite hands back
    assert Account.from_row(naive_utc) == account


def test_a_stored_row_that_breaks_the_contract_is_a_serialization_error() -> None:
    with pytest.raises(SerializationError, match="no longer satisfies its contract"):
        UserProfile.from_row({"email": "ada@example.com", "status": "active", "age": None})


def test_lone_surrogates_are_refused_as_text_that_cannot_be_stored() -> None:
    class Note(Contract):
        text: str

    with pytest.raises(ValidationError) as caught:
        Note.create({"text": "bad \ud800"})
    assert [(e.field, e.code) for e in caught.value.errors] == [("text", "invalid_text")]


def test_all_failing_rules_are_reported_together() -> None:
    class Range(Contract):
        low: int
        high: int

        @rule(field="high", code="inverted", message="must not be below low")
        def _ordered(self) -> bool:
            return self.low <= self.high

        @rule(code="too_wide", message="the range spans more than 10")
        def _narrow(self) -> bool:
            return self.high - self.low <= 10

    with pytest.raises(ValidationError) as caught:
        Range.create({"low": 50, "high": 20})
    assert {(e.field, e.code) for e in caught.value.errors} == {("high", "inverted")}
    with pytest.raises(ValidationError) as caught:
        Range.create({"low": 0, "high": 20})
    assert [(e.field, e.code) for e in caught.value.errors] == [("", "too_wide")]


def test_declaring_an_unmappable_contract_fails_when_the_class_is_defined() -> None:
    with pytest.raises(ConfigurationError, match="plain datetime"):
        class Naive(Contract):
            at: datetime

    with pytest.raises(ConfigurationError, match="cannot map"):
        class Nested(Contract):
            tags: list[str]

    with pytest.raises(ConfigurationError, match="column length is 4"):
        class Short(Contract, table="shorts"):
            state: Literal["active", "gone"] = field(length=4)

    with pytest.raises(ConfigurationError, match="already has id"):
        class Clash(Contract, table="clashes"):
            version: int

    with pytest.raises(ConfigurationError, match="unknown field format"):
        field(format="phone")


def test_length_is_both_the_column_length_and_the_longest_value_accepted() -> None:
    class Tagged(Contract):
        tag: str = field(length=3)

    assert Tagged.create({"tag": "abc"}).tag == "abc"
    with pytest.raises(ValidationError, match="at most 3"):
        Tagged.create({"tag": "abcd"})


def test_contract_values_carry_no_hidden_state_in_their_dump() -> None:
    # Pitfall 1 of the seed: what leaves the process is to_json(), which is plain data.
    data: dict[str, Any] = UserProfile.create(ACTIVE).to_json()
    assert all(isinstance(v, str | int | type(None)) for v in data.values())

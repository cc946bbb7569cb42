"""One contract, its table and its JSON Schema."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import BigInteger, Integer, String, Text, UniqueConstraint

from examples.users.contracts import UserProfile
from invariant.contracts import Contract, field
from invariant.contracts.jsonschema import json_schema
from invariant.contracts.sql import UtcDateTimeType, contracts_metadata, shard_key, table_for
from invariant.domain import ConfigurationError


def test_the_user_table_follows_the_contract() -> None:
    table = table_for(UserProfile, contracts_metadata())
    assert [c.name for c in table.columns] == [
        "id", "version", "email", "status", "age", "created_at", "updated_at"]
    assert isinstance(table.c.email.type, String) and table.c.email.type.length == 255
    assert table.c.status.type.length == 16  # type: ignore[attr-defined]
    assert isinstance(table.c.age.type, Integer) and table.c.age.nullable
    assert not table.c.email.nullable and not table.c.version.nullable
    assert table.c.id.primary_key and table.c.id.type.length == 36  # type: ignore[attr-defined]
    assert isinstance(table.c.created_at.type, UtcDateTimeType)
    uniques = [c for c in table.constraints if isinstance(c, UniqueConstraint)]
    assert [[col.name for col in u.columns] for u in uniques] == [["email"]]
    assert [[col.name for col in i.columns] for i in table.indexes] == [["status"]]
    assert shard_key(UserProfile) == "email"


def test_ranges_choose_integer_or_bigint_and_unbounded_text_is_text() -> None:
    class Counter(Contract, table="counters"):
        small: int = field(ge=0, le=1000)
        large: int
        note: str

    table = table_for(Counter, contracts_metadata())
    assert isinstance(table.c.large.type, BigInteger)
    assert not isinstance(table.c.small.type, BigInteger)
    assert isinstance(table.c.note.type, Text)


def test_a_contract_without_a_table_or_two_contracts_for_one_table_are_refused() -> None:
    class Plain(Contract):
        name: str

    with pytest.raises(ConfigurationError, match="declares no table"):
        table_for(Plain, contracts_metadata())

    class Twin(Contract, table="users"):
        name: str

    metadata = contracts_metadata([UserProfile])
    with pytest.raises(ConfigurationError, match="declared by two contracts"):
        table_for(Twin, metadata)


def test_the_json_schema_carries_rules_ranges_choices_and_db_metadata() -> None:
    schema = json_schema(UserProfile)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["email", "status"]
    assert schema["additionalProperties"] is False
    email = schema["properties"]["email"]
    assert (email["format"], email["maxLength"]) == ("email", 255)
    assert email["x-db"] == {"length": 255, "unique": True, "shard_key": True}
    assert schema["properties"]["status"]["enum"] == ["active", "suspended", "pending"]
    age = schema["properties"]["age"]["anyOf"][0]
    assert (age["minimum"], age["maximum"]) == (13, 120)
    assert schema["x-rules"] == [{"field": "age", "code": "required_when_active",
                                  "message": "is required for active users"}]
    assert schema["x-table"] == "users"


def test_the_example_domain_model_does_not_import_sqlalchemy() -> None:
    code = ("import sys, examples.users.domain; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('sqlalchemy', 'alembic', 'fastapi', 'aiosqlite')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"

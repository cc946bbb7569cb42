"""JSON Schema (draft 2020-12) of a contract, for publishing and for clients."""

from __future__ import annotations

from typing import Any

from invariant.contracts.contract import Contract

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema(contract: type[Contract]) -> dict[str, Any]:
    """The contract's JSON Schema, with its database metadata (``x-db``), table
    (``x-table``) and cross-field rules (``x-rules``) as annotations."""
    schema: dict[str, Any] = {"$schema": DIALECT, **contract.model_json_schema(mode="validation")}
    properties: dict[str, Any] = schema.get("properties", {})
    for shape in contract.__contract_shapes__:
        db = shape.db.to_json()
        if db:
            properties[shape.name]["x-db"] = db
    if contract.__contract_table__ is not None:
        schema["x-table"] = contract.__contract_table__.name
    if contract.__contract_rules__:
        schema["x-rules"] = [
            {"field": r.field, "code": r.code, "message": r.message}
            for r in contract.__contract_rules__
        ]
    return schema

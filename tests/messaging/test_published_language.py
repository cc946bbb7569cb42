"""Integration events: the published language, its schemas, the breaking-change check and
the anti-corruption layer in front of the payment provider."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from examples.integration.events import OrderCancelled, OrderLine, OrderPlaced
from examples.integration.payments import Payment, PaymentProviderTranslator
from invariant.cli import app
from invariant.domain.errors import ValidationError
from invariant.messaging import schemas
from invariant.messaging.acl import cents_to_dollars, dollars_to_cents, to_camel, to_snake
from invariant.messaging.errors import PermanentMessageError, UnsupportedVersionError
from invariant.messaging.port import Message
from invariant.messaging.published_language import (
    Amount,
    IntegrationEvent,
    IntegrationEvents,
    UtcTime,
    json_schema,
)

RELEASED = Path(__file__).resolve().parents[2] / "examples" / "integration" / "schemas"


def placed() -> OrderPlaced:
    return OrderPlaced(
        order_id="ORDER-001", customer_id="CUST-001",
        total=Amount(value=Decimal("200.00"), currency="USD"),
        items=[OrderLine(product_id="PROD-001", quantity=2,
                         unit_price=Amount(value=Decimal("50.00"), currency="USD")),
               OrderLine(product_id="PROD-002", quantity=1,
                         unit_price=Amount(value=Decimal("100.00"), currency="USD"))],
        placed_at=datetime(2026, 1, 31, 14, 0, tzinfo=timezone(timedelta(hours=2))))


def as_message(event: IntegrationEvent, **metadata: object) -> Message:
    out = event.to_outbox(source="orders")
    return Message(str(out.message_id), out.message_type, out.stream_id, out.schema_version,
                   out.data, {**out.metadata, **metadata})


def test_an_integration_event_speaks_the_published_language() -> None:
    out = placed().to_outbox(source="orders", stream_id="order-ORDER-001")
    assert (out.message_type, out.schema_version) == ("order.placed", 1)
    assert out.data["total"] == {"value": "200.00", "currency": "USD"}  # exact, as text
    assert out.data["placed_at"] == "2026-01-31T12:00:00Z"  # ISO 8601, UTC
    assert out.metadata["version"] == 1
    assert out.metadata["source"] == "orders"
    assert out.metadata["occurred_at"].endswith("Z")


class Stamped(IntegrationEvent):
    event_name: ClassVar[str] = "test.stamped"
    event_version: ClassVar[int] = 1
    occurred_at: UtcTime


def test_the_outbox_time_is_the_events_own_occurred_at_unless_given() -> None:
    at = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    assert Stamped(occurred_at=at).to_outbox(source="t").metadata["occurred_at"] == (
        "2026-03-01T08:30:00Z")
    given = datetime(2026, 3, 2, tzinfo=UTC)
    assert Stamped(occurred_at=at).to_outbox(source="t", occurred_at=given).metadata[
        "occurred_at"] == "2026-03-02T00:00:00Z"
    # An event without the field is stamped now.
    before = datetime.now(UTC)
    stamped = datetime.fromisoformat(placed().to_outbox(source="t").metadata["occurred_at"])
    assert before <= stamped <= datetime.now(UTC)


def test_a_consumer_decodes_the_versions_it_supports() -> None:
    events = IntegrationEvents(OrderPlaced, OrderCancelled)
    assert events.decode(as_message(placed())) == placed()


def test_an_unsupported_version_is_refused_with_a_clear_error() -> None:
    events = IntegrationEvents(OrderPlaced)
    with pytest.raises(UnsupportedVersionError, match=r"order.placed v2 is not supported.*v1"):
        events.decode(as_message(placed(), version=2))
    with pytest.raises(UnsupportedVersionError, match="supported versions: none"):
        events.decode(as_message(OrderCancelled(order_id="O", reason="r",
                                                cancelled_at=datetime.now(UTC))))


def test_invalid_data_is_a_permanent_error() -> None:
    message = as_message(placed())
    bad = Message(message.message_id, message.message_type, "", 1,
                  {**message.data, "total": {"value": "2", "currency": "usd"}},
                  message.metadata)
    with pytest.raises(PermanentMessageError, match="does not match its schema"):
        IntegrationEvents(OrderPlaced).decode(bad)


def test_naive_times_and_unknown_fields_are_refused() -> None:
    import pydantic

    data = placed().model_dump()
    with pytest.raises(pydantic.ValidationError):
        OrderPlaced.model_validate({**data, "placed_at": datetime(2026, 1, 1)})
    with pytest.raises(pydantic.ValidationError):
        OrderPlaced.model_validate({**data, "coupon": "X"})


def test_the_schema_is_generated_from_the_definition_and_matches_the_released_one() -> None:
    schema = json_schema(OrderPlaced)
    assert schema["properties"]["type"] == {"const": "order.placed"}
    data = schema["properties"]["data"]
    assert data["properties"]["placed_at"]["format"] == "date-time"
    assert schema["$defs"]["Amount"]["properties"]["currency"]["pattern"] == "^[A-Z]{3}$"
    released = json.loads((RELEASED / "order.placed.v1.schema.json").read_text())
    assert released == json.loads(json.dumps(schema))
    assert schemas.check(schemas.events_in("examples.integration.events"), RELEASED) == []


class RenamedTotal(IntegrationEvent):
    """order.placed v1 with ``total`` renamed: breaking."""

    event_name: ClassVar[str] = "order.placed"
    event_version: ClassVar[int] = 1
    order_id: str
    customer_id: str
    grand_total: Amount
    items: list[OrderLine]
    placed_at: UtcTime
    note: str


class WithOptionalNote(IntegrationEvent):
    """order.cancelled v1 plus an optional field: not breaking."""

    event_name: ClassVar[str] = "order.cancelled"
    event_version: ClassVar[int] = 1
    order_id: str
    reason: str
    cancelled_at: UtcTime
    note: str | None = None


def test_the_check_names_breaking_changes_and_accepts_compatible_ones() -> None:
    problems = schemas.check([RenamedTotal, WithOptionalNote], RELEASED)
    assert problems == ["order.placed.v1: data.total: removed",
                        "order.placed.v1: data.grand_total: newly required",
                        "order.placed.v1: data.note: newly required"]
    assert not any(p.startswith("order.cancelled") for p in problems)


def test_schemas_cli_exports_and_checks(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "schemas"
    result = runner.invoke(app, ["schemas", "export", "--events",
                                 "examples.integration.events", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "asyncapi.json", "order.cancelled.v1.schema.json", "order.placed.v1.schema.json"]
    assert asyncapi_problems(out) == []
    ok = runner.invoke(app, ["schemas", "check", "--events", "examples.integration.events",
                             "--released", str(out)])
    assert ok.exit_code == 0, ok.output
    (out / "order.shipped.v1.schema.json").write_text(
        (out / "order.cancelled.v1.schema.json").read_text())
    gone = runner.invoke(app, ["schemas", "check", "--events", "examples.integration.events",
                               "--released", str(out)])
    assert gone.exit_code == 1
    assert "order.shipped.v1: released, but no integration event defines it" in gone.output


ASYNCAPI_KEY = re.compile(r"^[a-zA-Z0-9.\-_]+$")  # AsyncAPI 3.0: channel, message, operation ids


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def asyncapi_problems(out: Path) -> list[str]:
    """Structural problems of ``out/asyncapi.json`` against AsyncAPI 3.0 (required keys,
    identifiers, references resolving, each payload schema present) and the schemas."""
    doc = json.loads((out / "asyncapi.json").read_text())
    problems = []
    if doc.get("asyncapi") != "3.0.0":
        problems.append(f"asyncapi: {doc.get('asyncapi')!r}")
    if not (doc.get("info", {}).get("title") and doc.get("info", {}).get("version")):
        problems.append("info.title and info.version are required")
    allowed = {"asyncapi", "id", "info", "servers", "defaultContentType", "channels",
               "operations", "components"}
    problems += [f"unknown top-level key {k}" for k in doc if k not in allowed
                 and not k.startswith("x-")]
    messages = doc.get("components", {}).get("messages", {})
    for section in ("channels", "operations"):
        problems += [f"{section}: bad id {k!r}" for k in doc.get(section, {})
                     if not ASYNCAPI_KEY.match(k)]
    problems += [f"messages: bad id {k!r}" for k in messages if not ASYNCAPI_KEY.match(k)]
    for name, channel in doc.get("channels", {}).items():
        if not isinstance(channel.get("address"), str):
            problems.append(f"channel {name}: no address")
        for key, ref in channel.get("messages", {}).items():
            if _resolve(doc, ref["$ref"]) is not messages.get(key):
                problems.append(f"channel {name}: {key} does not resolve")
    for op_id, operation in doc.get("operations", {}).items():
        if operation.get("action") not in ("send", "receive"):
            problems.append(f"operation {op_id}: action {operation.get('action')!r}")
        channel = _resolve(doc, operation["channel"]["$ref"])
        for ref in operation.get("messages", []):
            if not ref["$ref"].startswith(operation["channel"]["$ref"] + "/messages/"):
                problems.append(f"operation {op_id}: message not of its channel")
            assert _resolve(doc, ref["$ref"]) in channel["messages"].values()
    for key, message in messages.items():
        payload = message.get("payload", {})
        if not payload.get("schemaFormat", "").startswith("application/schema+json"):
            problems.append(f"message {key}: schemaFormat {payload.get('schemaFormat')!r}")
        schema_file = out / payload.get("schema", {}).get("$ref", "missing")
        if not schema_file.is_file():
            problems.append(f"message {key}: payload schema {schema_file.name} missing")
            continue
        schema = json.loads(schema_file.read_text())
        if schema["$id"] != f"urn:invariant:integration-event:{key}":
            problems.append(f"message {key}: payload schema is {schema['$id']}")
        if schema["properties"]["type"] != {"const": message["name"]}:
            problems.append(f"message {key}: payload is not of type {message['name']}")
    return problems


def test_the_asyncapi_document_describes_every_event_and_references_its_schema(
    tmp_path: Path
) -> None:
    events = schemas.events_in("examples.integration.events")
    schemas.export(events, tmp_path)
    path = schemas.export_asyncapi(events, tmp_path, title="orders", version="2.1.0")
    doc = json.loads(path.read_text())
    assert doc["info"]["title"] == "orders" and doc["info"]["version"] == "2.1.0"
    assert set(doc["channels"]) == {"order.placed", "order.cancelled"}
    assert set(doc["components"]["messages"]) == {"order.placed.v1", "order.cancelled.v1"}
    placed_msg = doc["components"]["messages"]["order.placed.v1"]
    assert placed_msg["payload"]["schema"] == {"$ref": "./order.placed.v1.schema.json"}
    assert doc["operations"]["send.order.placed"]["action"] == "send"
    assert asyncapi_problems(tmp_path) == []
    (tmp_path / "order.placed.v1.schema.json").unlink()  # the check notices a missing schema
    assert asyncapi_problems(tmp_path) == [
        "message order.placed.v1: payload schema order.placed.v1.schema.json missing"]


def test_two_versions_of_an_event_share_a_channel(tmp_path: Path) -> None:
    class PlacedV2(IntegrationEvent):
        """order.placed v2."""

        event_name: ClassVar[str] = "order.placed"
        event_version: ClassVar[int] = 2
        order_id: str

    events = [*schemas.events_in("examples.integration.events"), PlacedV2]
    schemas.export(events, tmp_path)
    doc = json.loads(schemas.export_asyncapi(events, tmp_path, title="t").read_text())
    assert list(doc["channels"]["order.placed"]["messages"]) == ["order.placed.v1",
                                                                  "order.placed.v2"]
    assert len(doc["operations"]["send.order.placed"]["messages"]) == 2
    assert asyncapi_problems(tmp_path) == []


# -- the anti-corruption layer in front of the payment provider (a conformist upstream) --

PROVIDER_PAYLOAD = {"paymentIntentId": "pi_123", "amountDollars": "19.99", "currency": "usd",
                    "status": "succeeded", "metadata": {"orderId": "ORDER-001"}}


def test_the_translator_keeps_the_providers_model_out() -> None:
    translator = PaymentProviderTranslator()
    payment = translator.to_domain(PROVIDER_PAYLOAD)
    assert payment == Payment("pi_123", "ORDER-001", 1999, "USD", "captured")
    assert translator.from_domain(payment) == {
        "paymentIntentId": "pi_123", "amountDollars": "19.99", "currency": "usd",
        "metadata": {"orderId": "ORDER-001"}}


@pytest.mark.parametrize(("dollars", "cents"), [
    ("0.10", 10), ("0.30", 30), ("19.99", 1999), ("1.005", 100), ("1.015", 102),
    ("1.025", 102), ("-2.50", -250), (3, 300), (Decimal("1234567890.12"), 123456789012),
])
def test_dollars_become_exact_cents_with_half_even_rounding(dollars: str, cents: int) -> None:
    assert dollars_to_cents(dollars) == cents


def test_cents_become_dollars_and_floats_and_fractions_are_refused() -> None:
    assert cents_to_dollars(1999) == Decimal("19.99")
    assert cents_to_dollars(dollars_to_cents("0.1") + dollars_to_cents("0.2")) == Decimal(
        "0.30")
    with pytest.raises(ValidationError, match="pass a Decimal or a string"):
        dollars_to_cents(0.1)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="fraction of a cent"):
        dollars_to_cents("1.005", exact=True)


def test_key_styles_round_trip() -> None:
    assert to_snake("paymentIntentId") == "payment_intent_id"
    assert to_snake("HTTPStatusCode") == "http_status_code"
    assert to_camel("payment_intent_id") == "paymentIntentId"


def test_money_enters_the_published_language_exactly() -> None:
    from invariant.domain import Money
    from invariant.messaging import Amount

    amount = Amount.of(Money.of("1234.50", "EUR"))
    assert amount.model_dump(mode="json") == {"value": "1234.50", "currency": "EUR"}
    assert Amount.of(Money.of("0.005", "BHD")).value == Decimal("0.005")  # 3-decimal currency

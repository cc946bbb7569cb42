"""Requests are read exactly as the OpenAPI document says (issue #14, item 5): no JSON type
is taken for another, decimal strings match the published pattern (ASCII digits only), and
what the document allows is accepted. Each case was accepted (or refused) before."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest

from tests.shop.conftest import PROBLEM, ShopServer
from tests.shop.shopping import order_with

PRICES_REFUSED = ["\uff11\uff12", "1e3", "1E-2", " 1.00", "1.00 ", "-0", "+1", "1_000", "12.", ".5",
                  "\u0663", "NaN", "Infinity"]


@pytest.fixture
def server(sqlite_server: ShopServer) -> ShopServer:
    """The shop on SQLite: what is read from a request does not depend on the store."""
    return sqlite_server


def refused(response: Any, field: str) -> None:
    """A 422 problem naming ``field``."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert field in [e["field"] for e in response.json()["errors"]], response.text


async def test_booleans_and_integers_are_json_booleans_and_integers(server: ShopServer
                                                                    ) -> None:
    admin = await server.admin()
    before = (await server.client.get("/inventory/keyboard")).json()["available"]
    for wrong in (False, True, "3", 2.5, None):
        response = await server.client.put("/admin/inventory/keyboard", headers=admin,
                                           json={"on_hand": wrong})
        refused(response, "body.on_hand")
    assert (await server.client.get("/inventory/keyboard")).json()["available"] == before
    # JSON Schema's integer: a number without a fractional part, 3.0 as well as 3
    counted = await server.client.put("/admin/inventory/keyboard", headers=admin,
                                      json={"on_hand": 3.0})
    assert counted.status_code == 200 and counted.json()["on_hand"] == 3
    for wrong in (0, 1, "true", "false", None):
        response = await server.client.put("/admin/shipping/failures", headers=admin,
                                           json={"refuse": wrong})
        refused(response, "body.refuse")
        response = await server.client.patch("/admin/catalog/products/mouse", headers=admin,
                                             json={"active": wrong})
        if wrong is None:  # "not given" in a change: null is documented for each field
            assert response.status_code == 200, response.text
        else:
            refused(response, "body.active")
    assert (await server.client.get("/admin/shipping/failures", headers=admin)
            ).json() == {"refuse": False}
    assert (await server.client.get("/catalog/products/mouse")).status_code == 200


async def test_quantities_are_json_integers(server: ShopServer) -> None:
    ann = await server.customer("ann@example.com")
    order_id = await order_with(server, ann)
    for wrong in (True, "1", 1.5, "one"):
        response = await server.client.post(f"/orders/{order_id}/items", headers=ann,
                                             json={"product_id": "mouse", "quantity": wrong})
        refused(response, "body.quantity")
        response = await server.client.patch(f"/orders/{order_id}/items/mouse", headers=ann,
                                             json={"quantity": wrong})
        refused(response, "body.quantity")
    order = (await server.client.get(f"/orders/{order_id}", headers=ann)).json()
    assert order["lines"] == []
    response = await server.client.post(f"/orders/{order_id}/items", headers=ann,
                                        json={"product_id": "mouse", "quantity": 2.0})
    assert response.status_code == 201 and response.json()["lines"][0]["quantity"] == 2


async def test_prices_are_decimal_strings_of_ascii_digits(server: ShopServer) -> None:
    admin = await server.admin()
    for amount in PRICES_REFUSED:
        response = await server.client.post("/admin/catalog/products", headers=admin, json={
            "id": "odd-price", "name": "Odd", "price": {"amount": amount, "currency": "USD"}})
        refused(response, "body.price.amount")
        response = await server.client.patch("/admin/catalog/products/mouse", headers=admin,
                                             json={"price": {"amount": amount,
                                                             "currency": "USD"}})
        refused(response, "body.price.amount")
    response = await server.client.post("/admin/catalog/products", headers=admin, json={
        "id": "odd-price", "name": "Odd", "price": {"amount": 12, "currency": "USD"}})
    refused(response, "body.price.amount")
    assert (await server.client.get("/admin/catalog/products/odd-price", headers=admin)
            ).status_code == 404
    response = await server.client.post("/admin/catalog/products", headers=admin, json={
        "id": "even-price", "name": "Even", "price": {"amount": "0012.5", "currency": "USD"}})
    assert response.status_code == 201, response.text
    assert response.json()["price"] == {"amount": "12.50", "currency": "USD"}


async def test_a_cancel_reason_is_what_the_document_says(server: ShopServer) -> None:
    """" " was refused though the document allowed it; the document now says what the
    server means (one line, not blank), and everything it allows is taken."""
    document = (await server.client.get("/openapi.json")).json()
    reason = jsonschema_rs.validator_for(
        document["components"]["schemas"]["Cancellation"]["properties"]["reason"])
    bob = await server.customer("bob@example.com")
    for text in (" ", "\u3000", "\t", "", "two\nlines", "nul\x00"):
        assert not reason.is_valid(text), repr(text)
        order_id = await order_with(server, bob, ("mouse", 1))
        response = await server.client.post(f"/orders/{order_id}/cancel", headers=bob,
                                            json={"reason": text})
        refused(response, "body.reason")
    for text in (" changed my mind ", "x", "\u00a0ok", "é" * 200):
        assert reason.is_valid(text), repr(text)
        order_id = await order_with(server, bob, ("mouse", 1))
        response = await server.client.post(f"/orders/{order_id}/cancel", headers=bob,
                                            json={"reason": text})
        assert response.status_code == 200, response.text
        assert response.json()["cancel_reason"] == text


async def test_the_document_names_the_currencies_and_decimal_places_the_server_takes(
        server: ShopServer) -> None:
    document = (await server.client.get("/openapi.json")).json()
    money = jsonschema_rs.validator_for(
        {**document["components"]["schemas"]["MoneyBody"], "components": document["components"]})
    admin = await server.admin()
    for price, valid in [({"amount": "1", "currency": "AAA"}, False),
                         ({"amount": "1.5", "currency": "JPY"}, False),
                         ({"amount": "1.123", "currency": "USD"}, False),
                         ({"amount": "1.123", "currency": "KWD"}, True),
                         ({"amount": "15", "currency": "JPY"}, True)]:
        assert money.is_valid(price) is valid, price
        response = await server.client.post("/admin/catalog/products", headers=admin, json={
            "name": "Priced", "price": price})
        assert response.status_code == (201 if valid else 422), (price, response.text)

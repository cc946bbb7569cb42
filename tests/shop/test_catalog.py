"""The catalog over real HTTP, on SQLite and PostgreSQL: the public window (list, get,
full-text search), admin product management, and problem+json for bad input."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import Connection, text

from invariant.domain import Money, NotFoundError
from shop.catalog.application import GetProductForSale, ProductForSale
from tests.shop.conftest import PROBLEM, ShopServer


def new_product(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "Red mug", "description": "A sturdy ceramic mug, red.",
                            "price": {"amount": "12.50", "currency": "USD"}}
    body.update(overrides)
    return body


async def test_the_sample_catalog_is_listed_by_name_in_pages(server: ShopServer) -> None:
    first = (await server.client.get("/catalog/products", params={"limit": 3})).json()
    assert first["total"] == 8 and first["offset"] == 0 and first["next_offset"] == 3
    assert [p["name"] for p in first["items"]] == sorted(p["name"] for p in first["items"])
    rest = (await server.client.get("/catalog/products",
                                    params={"offset": 3, "limit": 100})).json()
    assert rest["next_offset"] is None and len(rest["items"]) == 5
    ids = {p["id"] for p in first["items"] + rest["items"]}
    assert {"keyboard", "mouse", "monitor", "poster"} <= ids
    keyboard = (await server.client.get("/catalog/products/keyboard")).json()
    assert keyboard == {"id": "keyboard", "name": "Mechanical keyboard",
                        "description": keyboard["description"],
                        "price": {"amount": "89.00", "currency": "USD"}, "active": True}


async def test_an_admin_adds_and_changes_a_product(server: ShopServer) -> None:
    admin = await server.admin()
    created = await server.client.post("/admin/catalog/products", headers=admin,
                                       json=new_product(id="red-mug"))
    assert created.status_code == 201, created.text
    assert created.json()["price"] == {"amount": "12.50", "currency": "USD"}
    changed = await server.client.patch(
        "/admin/catalog/products/red-mug", headers=admin,
        json={"price": {"amount": "9.9", "currency": "EUR"}, "name": "Blue mug"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["price"] == {"amount": "9.90", "currency": "EUR"}
    shown = (await server.client.get("/catalog/products/red-mug")).json()
    assert shown["name"] == "Blue mug" and shown["description"].startswith("A sturdy")

    generated = await server.client.post("/admin/catalog/products", headers=admin,
                                         json=new_product(name="Green mug"))
    assert generated.status_code == 201 and len(generated.json()["id"]) == 36
    again = await server.client.post("/admin/catalog/products", headers=admin,
                                     json=new_product(id="red-mug"))
    assert again.status_code == 409 and again.json()["fields"] == ["id"]


async def test_withdrawn_products_leave_the_shop_window_but_not_the_admin_list(
        server: ShopServer) -> None:
    admin = await server.admin()
    response = await server.client.patch("/admin/catalog/products/webcam", headers=admin,
                                         json={"active": False})
    assert response.status_code == 200 and response.json()["active"] is False
    assert (await server.client.get("/catalog/products/webcam")).status_code == 404
    public = (await server.client.get("/catalog/products", params={"limit": 100})).json()
    assert "webcam" not in {p["id"] for p in public["items"]} and public["total"] == 7
    every = (await server.client.get("/admin/catalog/products", headers=admin,
                                     params={"limit": 100})).json()
    assert every["total"] == 8
    found = (await server.client.get("/catalog/search", params={"q": "webcam"})).json()
    assert found["total"] == 0
    with pytest.raises(NotFoundError):
        await server.shop.queries.ask(GetProductForSale("webcam"))


async def test_only_admins_manage_products(server: ShopServer) -> None:
    anonymous = await server.client.post("/admin/catalog/products", json=new_product())
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith(PROBLEM)
    customer = await server.customer("carla@example.com")
    for method, url in [("POST", "/admin/catalog/products"),
                        ("PATCH", "/admin/catalog/products/keyboard"),
                        ("GET", "/admin/catalog/products")]:
        refused = await server.client.request(method, url, headers=customer,
                                              json=new_product())
        assert refused.status_code == 403, (method, url)
    assert (await server.client.get("/catalog/products/keyboard")).json()["name"] == \
        "Mechanical keyboard"


async def test_search_finds_products_by_words_of_their_name_or_description(
        server: ShopServer) -> None:
    admin = await server.admin()
    await server.client.post("/admin/catalog/products", headers=admin, json=new_product(
        id="teapot", name="Cast iron teapot", description="Keeps tea warm for hours."))

    async def ids(q: str, **params: Any) -> list[str]:
        response = await server.client.get("/catalog/search", params={"q": q, **params})
        assert response.status_code == 200, response.text
        return [p["id"] for p in response.json()["items"]]

    assert await ids("keyboard") == ["keyboard"]
    assert await ids("Tactile SWITCHES") == ["keyboard"]  # description, any case
    assert await ids("teapot") == ["teapot"]
    assert await ids("warm tea") == ["teapot"]
    assert await ids("keyboard teapot") == []  # every word must match
    await server.client.patch("/admin/catalog/products/teapot", headers=admin,
                              json={"name": "Cast iron kettle"})
    assert await ids("kettle") == ["teapot"] and await ids("teapot") == []  # kept in step
    for colour in ("red", "green", "blue"):
        await server.client.post("/admin/catalog/products", headers=admin,
                                 json=new_product(name=f"{colour.title()} mug"))
    page = (await server.client.get("/catalog/search",
                                    params={"q": "mugs", "limit": 2})).json()  # stemmed
    assert page["total"] == 3 and len(page["items"]) == 2 and page["next_offset"] == 2
    last = (await server.client.get("/catalog/search",
                                    params={"q": "mug", "offset": 2})).json()
    assert len(last["items"]) == 1 and last["next_offset"] is None


UNSAFE_QUERIES = ['"', 'keyboard"', "NEAR(a b)", "a OR", "*", "name:keyboard", "-", "^x", "(",
                  "'; DROP TABLE catalog_products; --", "\u00e9t\u00e9 \u2603", "a\u0000b",
                  "AND", "keyboard*", "\\", "{a}", "x" * 200]


async def test_search_takes_any_text_safely(server: ShopServer) -> None:
    for q in UNSAFE_QUERIES:
        response = await server.client.get("/catalog/search", params={"q": q})
        assert response.status_code == 200, (q, response.text)
        assert response.json()["total"] >= 0
    quoted = (await server.client.get("/catalog/search", params={"q": 'keyboard"'})).json()
    assert [p["id"] for p in quoted["items"]] == ["keyboard"]
    for bad in ("", "x" * 201):
        assert (await server.client.get("/catalog/search",
                                        params={"q": bad})).status_code == 422


async def test_bad_product_input_is_a_problem_listing_every_field(server: ShopServer) -> None:
    admin = await server.admin()
    bad = await server.client.post("/admin/catalog/products", headers=admin, json={
        "id": "Not A Slug!", "name": "   ", "description": "x" * 2001,
        "price": {"amount": "12.345", "currency": "USD"}})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(PROBLEM)
    # the contract checks fields first, then its rules; the id is checked before both
    assert {e["field"] for e in bad.json()["errors"]} == {"body.id"}
    bad = await server.client.post("/admin/catalog/products", headers=admin, json={
        "name": "", "description": "x" * 2001, "price": {"amount": "12", "currency": "usd"}})
    fields = {e["field"]: e["code"] for e in bad.json()["errors"]}
    assert bad.status_code == 422
    assert set(fields) == {"body.name", "body.description", "body.price.currency"}
    # an amount that is not a decimal string cannot become the contract's Decimal: it is
    # refused on its own, as the wire format of the body
    bad = await server.client.post("/admin/catalog/products", headers=admin, json={
        "name": "", "price": {"amount": "abc", "currency": "USD"}})
    assert {e["field"] for e in bad.json()["errors"]} == {"body.price.amount"}
    rules = await server.client.post("/admin/catalog/products", headers=admin, json=new_product(
        name=" ", price={"amount": "1.001", "currency": "XYZ"}))
    assert {e["field"] for e in rules.json()["errors"]} == {"body.name", "body.price.currency"}
    precise = await server.client.patch("/admin/catalog/products/keyboard", headers=admin,
                                        json={"price": {"amount": "1.001", "currency": "USD"}})
    assert precise.status_code == 422
    assert precise.json()["errors"][0]["field"] == "body.price.amount"
    assert precise.json()["errors"][0]["code"] == "too_precise"
    not_json = await server.client.post("/admin/catalog/products", content=b"{", headers={
        **admin, "content-type": "application/json"})
    assert not_json.status_code == 422
    missing = await server.client.patch("/admin/catalog/products/no-such-thing",
                                        headers=admin, json={"name": "x"})
    assert missing.status_code == 404
    assert (await server.client.get("/catalog/products/NOT%20AN%20ID")).status_code == 404
    assert (await server.client.get("/catalog/products",
                                    params={"limit": 1000})).status_code == 422


async def test_ordering_asks_the_price_of_a_product_for_sale(server: ShopServer) -> None:
    answer = await server.shop.queries.ask(GetProductForSale("mouse"))
    assert answer == ProductForSale("mouse", "Wireless mouse", Money.of("29.50", "USD"))
    with pytest.raises(NotFoundError):
        await server.shop.queries.ask(GetProductForSale("no-such-product"))


async def test_concurrent_revisions_of_one_product_all_apply_and_no_ops_write_nothing(
        server: ShopServer) -> None:
    """Products are invariant's state-stored aggregates, saved on the shop's database:
    each revision bumps the row's version, a revision that changes nothing writes nothing,
    and concurrent revisions of one product queue for it (none is lost)."""
    admin = await server.admin()
    await server.client.post("/admin/catalog/products", headers=admin,
                             json=new_product(id="red-mug"))

    async def version() -> int:
        def read(conn: Connection) -> int:
            return int(conn.execute(text(
                "SELECT version FROM catalog_products WHERE id = 'red-mug'")).scalar_one())
        return await server.shop.read_models.run(read, write=False)

    assert await version() == 1
    same = await server.client.patch("/admin/catalog/products/red-mug", headers=admin,
                                     json={"name": "Red mug"})
    assert same.status_code == 200 and await version() == 1
    responses = await asyncio.gather(*(
        server.client.patch("/admin/catalog/products/red-mug", headers=admin,
                            json={"description": f"Revision {n}."}) for n in range(6)))
    assert [r.status_code for r in responses] == [200] * 6
    assert await version() == 7
    shown = (await server.client.get("/catalog/products/red-mug")).json()
    assert shown["description"] in {f"Revision {n}." for n in range(6)}

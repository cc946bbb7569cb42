"""The catalog's contract and model as a specification (no server): one declaration gives
the validated value, its field errors and its table."""

from __future__ import annotations

from decimal import Decimal

import pytest

from invariant.contracts.sql import contracts_metadata, table_for
from invariant.domain import Money, ValidationError
from shop.catalog.application import parse_product_id, search_terms
from shop.catalog.contracts import ProductDetails
from shop.catalog.domain import Product, ProductAdded, ProductNotForSale, ProductRevised
from shop.kernel import ProductId

VALID = {"name": "Red mug", "description": "Ceramic.", "price_amount": "12.5",
         "currency": "USD"}


def details(**changes: object) -> ProductDetails:
    return ProductDetails.create({**VALID, **changes})


def problems(data: dict[str, object]) -> dict[str, str]:
    with pytest.raises(ValidationError) as raised:
        ProductDetails.create(data)
    return {e.field: e.code for e in raised.value.errors}


def test_a_valid_product_has_its_price_as_money() -> None:
    value = details()
    assert value.price == Money.of("12.50", "USD") and value.active is True


def test_every_field_problem_is_listed() -> None:
    found = problems({"name": "", "description": "x" * 2001, "price_amount": "abc",
                      "currency": "usd"})
    assert set(found) == {"name", "description", "price_amount", "currency"}


def test_rules_catch_blank_names_unknown_currencies_and_overly_precise_prices() -> None:
    assert problems({**VALID, "name": "  ", "currency": "XYZ"}) == \
        {"name": "blank", "currency": "unknown_currency"}
    assert problems({**VALID, "price_amount": "1.001"}) == {"price_amount": "too_precise"}
    assert problems({**VALID, "price_amount": "5.5", "currency": "JPY"}) == \
        {"price_amount": "too_precise"}
    assert details(price_amount="5", currency="JPY").price == Money.of(5, "JPY")
    assert set(problems({**VALID, "price_amount": "-1"})) == {"price_amount"}
    assert set(problems({**VALID, "price_amount": "1000000"})) == {"price_amount"}
    assert "name" in problems({**VALID, "name": "bad\x00name"})


def test_the_table_comes_from_the_contract() -> None:
    table = table_for(ProductDetails, contracts_metadata())
    assert table.name == "catalog_products"
    assert {"id", "version", "name", "description", "price_amount", "currency", "active",
            "created_at", "updated_at"} == set(table.columns.keys())
    assert table.columns["name"].type.length == 120  # type: ignore[attr-defined]
    row = details().to_row()
    assert ProductDetails.from_row(row) == details() and row["price_amount"] == Decimal("12.5")


def test_a_product_records_what_happened_to_it() -> None:
    product = Product.add(ProductId("mug"), details())
    added = product.mark_saved(0)
    assert added == [ProductAdded("mug", "Red mug", Money.of("12.50", "USD"), True)]
    product.revise(details())
    assert not product.mark_saved(1)  # unchanged: nothing recorded
    product.revise(details(active=False))
    assert product.mark_saved(2) == [ProductRevised("mug", "Red mug",
                                                    Money.of("12.50", "USD"), False)]
    assert product.version == 2
    with pytest.raises(ProductNotForSale):
        product.unit_price_for_sale()


def test_search_text_becomes_plain_words() -> None:
    assert search_terms('Red "MUG" OR name:tea* -x') == ("red", "mug", "or", "name", "tea", "x")
    assert search_terms("\"'();--") == ()
    assert len(search_terms(" ".join(f"w{i}" for i in range(40)))) == 16


def test_product_ids_are_slugs_or_uuids() -> None:
    assert parse_product_id("red-mug") == ProductId("red-mug")
    assert parse_product_id("0b0f7d2e-8f0c-4e5e-9a63-0e1f1e0b7b7a")
    for bad in ("Red", "-x", "x-", "a b", "", "x" * 65):
        with pytest.raises(ValidationError):
            parse_product_id(bad)

"""Catalog's product-for-sale query asked of catalog's service over HTTP gives the same
answers as asked in process, and a quick UnavailableError while catalog is down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from invariant.config import Settings
from invariant.http import ServiceClient
from invariant.resilience import CallPolicy, CircuitOpenError, DependencyFailedError
from invariant.retry import RetryPolicy
from shop.catalog.application import GetProductForSale
from shop.catalog.domain import ProductNotForSale
from shop.catalog.remote import RemoteProductsForSale
from shop.catalog.sample import SAMPLE_PRODUCTS
from tests.shop.conftest import ShopServer, free_port, serve, shop_settings

POLICY = CallPolicy(timeout=2.0, retry=RetryPolicy(attempts=2, first_delay=0.01),
                    failures_to_open=2, open_for=30)


@pytest.fixture
async def catalog(tmp_path: Path) -> AsyncIterator[ShopServer]:
    settings = shop_settings(tmp_path, Settings(store="sqlite", sqlite_path=tmp_path / "c.db"))
    async with serve(settings) as running:
        yield running


async def test_the_remote_answer_is_the_in_process_one(catalog: ShopServer) -> None:
    product_id = SAMPLE_PRODUCTS[0].id
    async with ServiceClient("catalog", catalog.base_url, POLICY) as client:
        remote = await RemoteProductsForSale(client).for_sale(GetProductForSale(product_id))
    assert remote == await catalog.shop.queries.ask(GetProductForSale(product_id))


@pytest.mark.parametrize("product_id", ["no-such-product", "Not An Id/../x", "x" * 300])
async def test_an_unknown_or_malformed_product_is_not_for_sale(
        catalog: ShopServer, product_id: str) -> None:
    async with ServiceClient("catalog", catalog.base_url, POLICY) as client:
        with pytest.raises(ProductNotForSale):
            await RemoteProductsForSale(client).for_sale(GetProductForSale(product_id))
        assert client.caller.breaker.state == "closed"


async def test_a_withdrawn_product_is_not_for_sale(catalog: ShopServer) -> None:
    product_id = SAMPLE_PRODUCTS[1].id
    response = await catalog.client.patch(f"/admin/catalog/products/{product_id}",
                                          json={"active": False},
                                          headers=await catalog.admin())
    assert response.status_code == 200, response.text
    async with ServiceClient("catalog", catalog.base_url, POLICY) as client:
        with pytest.raises(ProductNotForSale):
            await RemoteProductsForSale(client).for_sale(GetProductForSale(product_id))


async def test_catalog_down_is_unavailable_then_refused_at_once() -> None:
    async with ServiceClient("catalog", f"http://127.0.0.1:{free_port()}", POLICY) as client:
        remote = RemoteProductsForSale(client)
        with pytest.raises(DependencyFailedError, match="cannot be reached"):
            await remote.for_sale(GetProductForSale("red-mug"))
        with pytest.raises(CircuitOpenError):
            await remote.for_sale(GetProductForSale("red-mug"))

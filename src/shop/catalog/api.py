"""The catalog's HTTP API: a public shop window and the admin's product management.

Bodies are parsed strictly (JSON types exactly as documented, amounts as decimal strings of
ASCII digits) and their values validated by the ``ProductDetails`` contract, so the rules
live in one place; its field errors are reported at their place in the body
(``body.price.amount``), like FastAPI's own. The document shows the contract's rules too:
its lengths and patterns, the currencies it knows, and their decimal places.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from invariant.domain import Currency, FieldError, Money, ValidationError
from shop.catalog.application import ID_PATTERN, CatalogService, ProductView
from shop.catalog.contracts import ProductDetails
from shop.kernel import TEXT_LINE
from shop.platform.auth import AdminUser
from shop.platform.routing import Body, Page, Paging

T = TypeVar("T")
ProductIdPath = Annotated[str, Path(min_length=1, max_length=64,
                                    description="A product id, e.g. 'keyboard'")]
_WIRE_NAMES = {"price_amount": "price.amount", "currency": "price.currency"}
_CONTRACT_SCHEMA = ProductDetails.model_json_schema()["properties"]
_DOCUMENTED = ("minLength", "maxLength", "pattern", "description")


def _as_in_contract(name: str) -> dict[str, Any]:
    """The contract's JSON Schema constraints of a field, to document the body with (the
    contract enforces them: one definition)."""
    return {k: v for k, v in _CONTRACT_SCHEMA[name].items() if k in _DOCUMENTED}


def _amount_pattern(decimals: int) -> str:
    """Below 1,000,000 with at most ``decimals`` decimal places, in ASCII digits (``\\d``
    would let other scripts' digits in)."""
    fraction = rf"(\.[0-9]{{1,{decimals}}})?" if decimals else ""
    return rf"^[0-9]{{1,6}}{fraction}$"


def _per_currency(schema: dict[str, Any]) -> None:
    """Document the contract's rules across the two fields: a currency it knows, and an
    amount with at most that currency's decimal places."""
    codes: dict[int, list[str]] = {}
    for code, decimals in sorted(Currency.known().items()):
        codes.setdefault(decimals, []).append(code)
    schema["anyOf"] = [{"properties": {"currency": {"enum": group},
                                       "amount": {"pattern": _amount_pattern(decimals)}}}
                       for decimals, group in sorted(codes.items())]


class MoneyBody(Body):
    """An amount of money on the wire: the amount as a decimal string."""

    model_config = ConfigDict(json_schema_extra=_per_currency)
    amount: str = Field(pattern=_amount_pattern(4), examples=["12.50"],
                        description="A decimal string, at most the currency's decimal places "
                                    "(2 for USD, 0 for JPY, 3 for KWD)")
    currency: str = Field(max_length=16, examples=["USD"],
                          json_schema_extra=_as_in_contract("currency"))

    @classmethod
    def of(cls, money: Money) -> MoneyBody:
        return cls(amount=f"{money.amount:.{money.currency.minor_units}f}",
                   currency=money.currency.code)


_NAME = {**_as_in_contract("name"), "pattern": TEXT_LINE.pattern}
"""The contract's one-line pattern and its rule that a name is not blank, as one pattern."""


class ProductOut(BaseModel):
    """A product of the catalog."""

    id: str
    name: str
    description: str
    price: MoneyBody
    active: bool

    @classmethod
    def of(cls, view: ProductView) -> ProductOut:
        return cls(id=view.product_id, name=view.name, description=view.description,
                   price=MoneyBody.of(view.price), active=view.active)


class NewProduct(Body):
    """A product to add. ``id`` is optional (a slug such as ``red-mug``; default: a UUID).
    Names are 1-120 characters, descriptions up to 2000, prices below 1,000,000 in an
    ISO 4217 currency with at most its decimal places."""

    id: str | None = Field(None, max_length=200, json_schema_extra={
        "pattern": "^" + ID_PATTERN.pattern + "$"})
    name: str = Field(max_length=10_000, json_schema_extra=_NAME)
    description: str = Field("", max_length=100_000,
                             json_schema_extra=_as_in_contract("description"))
    price: MoneyBody
    active: bool = True


class ProductChanges(Body):
    """Some of a product's fields, to change (the others stay as they are)."""

    name: str | None = Field(None, max_length=10_000, json_schema_extra=_NAME)
    description: str | None = Field(None, max_length=100_000,
                                    json_schema_extra=_as_in_contract("description"))
    price: MoneyBody | None = None
    active: bool | None = None


def _details(body: BaseModel) -> dict[str, object]:
    """The body as the contract's fields (only those given)."""
    data = body.model_dump(exclude_unset=True, exclude={"id"})
    price = data.pop("price", None)
    if price is not None:
        data["price_amount"], data["currency"] = price["amount"], price["currency"]
    return {key: value for key, value in data.items() if value is not None}


async def _in_body_terms(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work``; report the contract's field errors at their place in the body."""
    try:
        return await work()
    except ValidationError as exc:
        errors = [FieldError("body." + _WIRE_NAMES.get(e.field, e.field), e.message, e.code)
                  for e in exc.errors]
        raise ValidationError(errors, subject=exc.subject) from None


def router(catalog: CatalogService) -> APIRouter:
    """The catalog's routes, over ``catalog``."""
    api = APIRouter(tags=["catalog"])

    @api.get("/catalog/products", summary="Products on sale, by name")
    async def list_products(paging: Paging) -> Page[ProductOut]:
        views, total = await catalog.listing(offset=paging.offset, limit=paging.limit)
        return paging.page([ProductOut.of(v) for v in views], total)

    @api.get("/catalog/search", summary="Full-text search of products on sale")
    async def search_products(
        paging: Paging,
        q: Annotated[str, Query(min_length=1, max_length=200,
                                description="Words to find in names and descriptions")],
    ) -> Page[ProductOut]:
        views, total = await catalog.search(q, offset=paging.offset, limit=paging.limit)
        return paging.page([ProductOut.of(v) for v in views], total)

    @api.get("/catalog/products/{product_id}", summary="One product on sale")
    async def get_product(product_id: ProductIdPath) -> ProductOut:
        return ProductOut.of(await catalog.product(product_id))

    @api.get("/admin/catalog/products", summary="Every product, inactive ones included")
    async def admin_list_products(admin: AdminUser, paging: Paging) -> Page[ProductOut]:
        views, total = await catalog.listing(offset=paging.offset, limit=paging.limit,
                                             include_inactive=True)
        return paging.page([ProductOut.of(v) for v in views], total)

    @api.post("/admin/catalog/products", status_code=status.HTTP_201_CREATED,
              summary="Add a product")
    async def add_product(admin: AdminUser, body: NewProduct) -> ProductOut:
        view = await _in_body_terms(lambda: catalog.add(_details(body), body.id))
        return ProductOut.of(view)

    @api.patch("/admin/catalog/products/{product_id}", summary="Change a product")
    async def change_product(admin: AdminUser, product_id: ProductIdPath,
                             body: ProductChanges) -> ProductOut:
        view = await _in_body_terms(lambda: catalog.revise(product_id, _details(body)))
        return ProductOut.of(view)

    @api.get("/admin/catalog/products/{product_id}", summary="One product, even inactive")
    async def admin_get_product(admin: AdminUser, product_id: ProductIdPath) -> ProductOut:
        return ProductOut.of(await catalog.product(product_id, include_inactive=True))

    return api


__all__ = ["router"]

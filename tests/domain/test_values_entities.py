"""Value objects, entities and typed identities."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from examples.bank.domain import AccountId
from invariant.domain import (
    ConfigurationError,
    Entity,
    Identity,
    ValidationError,
    ValueObject,
)


@dataclass(frozen=True)
class Address(ValueObject):
    street: str
    city: str

    def validate(self) -> None:
        if not self.street.strip():
            raise ValidationError.single("street", "is required", "required", subject="Address")


@dataclass(frozen=True)
class Place(ValueObject):
    """Same fields as Address, a different type."""

    street: str
    city: str


@dataclass
class MutableAddress(ValueObject):
    street: str


@dataclass(frozen=True, slots=True)
class CustomerId(Identity):
    """Identifies a customer."""


class Customer(Entity[CustomerId]):
    def __init__(self, id: CustomerId, name: str) -> None:
        super().__init__(id)
        self.name = name


class Supplier(Entity[CustomerId]):
    pass


# -- value objects --------------------------------------------------------------------------


def test_a_value_object_is_validated_when_created() -> None:
    with pytest.raises(ValidationError, match="street: is required") as caught:
        Address("  ", "Paris")

    assert caught.value.errors[0].code == "required"
    assert caught.value.subject == "Address"


def test_value_objects_are_equal_by_value() -> None:
    assert Address("1 Main St", "Paris") == Address("1 Main St", "Paris")
    assert hash(Address("1 Main St", "Paris")) == hash(Address("1 Main St", "Paris"))
    assert Address("1 Main St", "Paris") != Address("2 Main St", "Paris")
    assert len({Address("1 Main St", "Paris"), Address("1 Main St", "Paris")}) == 1


def test_value_objects_of_different_types_are_not_equal_even_with_the_same_fields() -> None:
    assert Address("1 Main St", "Paris") != Place("1 Main St", "Paris")


def test_a_value_object_cannot_be_changed() -> None:
    address = Address("1 Main St", "Paris")

    with pytest.raises(dataclasses.FrozenInstanceError):
        address.city = "Lyon"  # type: ignore[misc]

    assert address.city == "Paris"


def test_replace_returns_a_new_value_and_leaves_the_original_alone() -> None:
    address = Address("1 Main St", "Paris")

    moved = address.replace(city="Lyon")

    assert moved == Address("1 Main St", "Lyon")
    assert moved is not address
    assert address == Address("1 Main St", "Paris")


def test_replace_validates_the_new_value() -> None:
    with pytest.raises(ValidationError, match="street: is required"):
        Address("1 Main St", "Paris").replace(street="")


def test_a_value_object_that_is_not_a_frozen_dataclass_is_refused_when_first_created() -> None:
    with pytest.raises(
        ConfigurationError,
        match=r"MutableAddress must be declared with "
        r"@dataclass\(frozen=True\)",
    ):
        MutableAddress("1 Main St")

    # It is refused every time, not only the first time.
    with pytest.raises(ConfigurationError):
        MutableAddress("1 Main St")


def test_a_value_object_without_validate_accepts_any_value() -> None:
    assert Place("", "").street == ""


# -- identities -----------------------------------------------------------------------------


def test_identities_are_equal_by_type_and_value() -> None:
    assert AccountId("1") == AccountId("1")
    assert hash(AccountId("1")) == hash(AccountId("1"))
    assert AccountId("1") != AccountId("2")


def test_identities_of_different_types_are_never_equal() -> None:
    assert AccountId("1") != CustomerId("1")
    assert CustomerId("1") != AccountId("1")
    assert AccountId("1") != "1"
    assert len({AccountId("1"), CustomerId("1")}) == 2


@pytest.mark.parametrize("value", ["", "   ", "\t\n", None, 1, b"id"])
def test_an_identity_needs_a_non_empty_string(value: object) -> None:
    with pytest.raises(ValidationError, match="AccountId needs a non-empty string") as caught:
        AccountId(value)  # type: ignore[arg-type]

    assert caught.value.errors[0].field == "id"
    assert caught.value.errors[0].code == "invalid_id"
    assert caught.value.subject == "AccountId"


def test_new_gives_a_fresh_identity_of_the_subclass_each_time() -> None:
    ids = {AccountId.new() for _ in range(100)}

    assert len(ids) == 100
    assert all(type(i) is AccountId for i in ids)


def test_an_identity_reads_as_its_value() -> None:
    assert str(AccountId("acc-42")) == "acc-42"
    assert f"{CustomerId('c-1')}" == "c-1"


def test_an_identity_cannot_be_changed() -> None:
    account_id = AccountId("1")

    with pytest.raises(dataclasses.FrozenInstanceError):
        account_id.value = "2"  # type: ignore[misc]

    assert account_id.value == "1"


# -- entities -------------------------------------------------------------------------------


def test_entities_are_equal_when_their_ids_are_equal_whatever_their_state() -> None:
    alice = Customer(CustomerId("c-1"), "Alice")
    renamed = Customer(CustomerId("c-1"), "Alicia")

    assert alice == renamed
    assert hash(alice) == hash(renamed)
    assert len({alice, renamed}) == 1


def test_entities_with_different_ids_are_different() -> None:
    assert Customer(CustomerId("c-1"), "Alice") != Customer(CustomerId("c-2"), "Alice")


def test_entities_of_different_types_with_one_id_are_different() -> None:
    customer = Customer(CustomerId("c-1"), "Alice")
    supplier = Supplier(CustomerId("c-1"))

    assert customer != supplier
    assert supplier != customer
    assert len({customer, supplier}) == 2


def test_an_entity_is_not_equal_to_its_id() -> None:
    assert Customer(CustomerId("c-1"), "Alice") != CustomerId("c-1")


def test_an_entity_shows_its_type_and_id() -> None:
    assert repr(Customer(CustomerId("c-1"), "Alice")) == "<Customer c-1>"

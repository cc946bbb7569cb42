"""Money and Currency: exact Decimal amounts, never a float, never mixing currencies."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from invariant.domain import (
    Currency,
    CurrencyMismatchError,
    DomainError,
    InvariantError,
    Money,
    NegativeAmountError,
    ValidationError,
)
from invariant.domain import money as money_module
from tests.money import usd


@pytest.fixture
def isolated_currencies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let a test register currencies without leaking them into other tests."""
    monkeypatch.setattr(money_module, "_MINOR_UNITS", dict(money_module._MINOR_UNITS))
    monkeypatch.setattr(money_module, "_CACHE", {})


# -- building money -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "expected"),
    [(Decimal("12.50"), "12.50"), (12, "12.00"), ("12.50", "12.50"), ("12.5", "12.50")],
)
def test_money_of_accepts_a_decimal_an_int_or_a_decimal_string(
    amount: Decimal | int | str, expected: str
) -> None:
    money = Money.of(amount, "USD")

    assert money.amount == Decimal(expected)
    assert money.currency == Currency("USD")


def test_money_of_accepts_a_currency_instance_as_well_as_a_code() -> None:
    assert Money.of("1", Currency.of("EUR")) == Money.of("1", "EUR")


@pytest.mark.parametrize("amount", [1.5, 0.1, 0.0, float("nan")])
def test_money_of_refuses_floats(amount: float) -> None:
    with pytest.raises(ValidationError, match="never a float") as caught:
        Money.of(amount, "USD")  # type: ignore[arg-type]

    assert caught.value.errors[0].field == "amount"
    assert caught.value.errors[0].code == "invalid_amount"


@pytest.mark.parametrize("amount", [True, False])
def test_money_of_refuses_bools_although_they_are_ints(amount: bool) -> None:
    with pytest.raises(ValidationError) as caught:
        Money.of(amount, "USD")

    assert caught.value.errors[0].code == "invalid_amount"


@pytest.mark.parametrize("text", ["", "abc", "1,50", "12.50 USD", "1.2.3"])
def test_money_of_refuses_text_that_is_not_a_decimal_number(text: str) -> None:
    with pytest.raises(ValidationError, match="not a decimal number"):
        Money.of(text, "USD")


@pytest.mark.parametrize("text", ["NaN", "sNaN", "Infinity", "-Infinity"])
def test_money_of_refuses_non_finite_amounts(text: str) -> None:
    with pytest.raises(ValidationError, match="finite") as caught:
        Money.of(text, "USD")

    assert caught.value.errors[0].code == "invalid_amount"


def test_money_is_kept_at_the_currency_minor_unit() -> None:
    five = Money.of(5, "USD")

    assert five.amount == Decimal("5.00")
    assert str(five.amount) == "5.00"
    assert str(Money.of("5.1", "USD").amount) == "5.10"
    assert str(five) == "5.00 USD"


@pytest.mark.parametrize("text", ["0.001", "5.001", "1E-7", "0.015"])
def test_money_of_refuses_amounts_finer_than_the_minor_unit_instead_of_rounding(
    text: str,
) -> None:
    with pytest.raises(ValidationError, match="more decimal places than USD allows") as caught:
        Money.of(text, "USD")

    assert caught.value.errors[0].code == "too_precise"


@pytest.mark.parametrize("amount", [-1, "-0.01", Decimal("-100")])
def test_money_of_refuses_negative_amounts(amount: Decimal | int | str) -> None:
    with pytest.raises(NegativeAmountError, match="must not be negative") as caught:
        Money.of(amount, "USD")

    assert caught.value.errors[0].code == "negative_amount"


def test_a_negative_amount_is_a_validation_error_and_a_domain_error() -> None:
    with pytest.raises(NegativeAmountError) as caught:
        Money.of(-1, "USD")

    assert isinstance(caught.value, ValidationError)
    assert isinstance(caught.value, DomainError)
    assert isinstance(caught.value, InvariantError)


def test_money_built_directly_is_validated_too() -> None:
    with pytest.raises(ValidationError, match="finite Decimal"):
        Money(1.5, Currency.of("USD"))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="more decimal places"):
        Money(Decimal("1.001"), Currency.of("USD"))
    with pytest.raises(NegativeAmountError):
        Money(Decimal("-1"), Currency.of("USD"))


def test_zero_is_zero_in_the_currency_scale() -> None:
    zero = Money.zero("USD")

    assert zero.is_zero()
    assert str(zero.amount) == "0.00"
    assert not usd("0.01").is_zero()


@pytest.mark.parametrize("amount", ["1E+27", 10**27])
def test_money_of_a_very_large_amount_never_leaks_a_decimal_context_error(
    amount: Decimal | int | str,
) -> None:
    # Either it is representable (and exact) or it is a ValidationError, like any bad input.
    try:
        money = Money.of(amount, "USD")
    except ValidationError:
        return
    assert money.amount == Decimal(amount)


# -- arithmetic -----------------------------------------------------------------------------


def test_adding_money_of_one_currency() -> None:
    assert usd("10.25") + usd("0.75") == usd("11.00")
    assert usd("10.25").add(usd("0.75")) == usd(11)


def test_subtracting_money_of_one_currency() -> None:
    assert usd("10.25") - usd("0.25") == usd(10)
    assert usd("10.25").subtract(usd("10.25")).is_zero()


def test_subtracting_below_zero_raises_negative_amount_error() -> None:
    with pytest.raises(NegativeAmountError, match="would be negative"):
        usd("1.00") - usd("1.01")


def test_multiplying_rounds_half_even_to_the_minor_unit() -> None:
    assert usd("0.05").multiply(Decimal("0.5")) == usd("0.02")  # 0.025 -> 0.02
    assert usd("0.15").multiply(Decimal("0.5")) == usd("0.08")  # 0.075 -> 0.08
    assert usd("0.25").multiply(Decimal("0.5")) == usd("0.12")  # 0.125 -> 0.12
    assert usd("10.00").multiply(3) == usd("30.00")
    assert str(usd("10").multiply(Decimal("0.333")).amount) == "3.33"


def test_products_are_exact_whatever_the_callers_decimal_context_and_too_large_is_refused(
        ) -> None:
    with localcontext() as narrow:
        narrow.prec = 3  # a caller's context never rounds a product early
        assert usd("12345.67").multiply(3) == usd("37037.01")
        assert usd("0.05").multiply(Decimal("0.5")) == usd("0.02")
    assert usd("12345.67").multiply(3).amount.as_tuple().exponent == -2
    for factor in (10 ** 18, Decimal("1e30"), 10 ** 100):
        with pytest.raises(ValidationError, match="too large") as caught:
            usd("1.00").multiply(factor)
        assert caught.value.errors[0].code == "amount_too_large"


@pytest.mark.parametrize("factor", [0.5, True])
def test_multiplying_by_a_float_or_a_bool_is_refused(factor: float) -> None:
    with pytest.raises(ValidationError, match="never a float") as caught:
        usd("1.00").multiply(factor)  # type: ignore[arg-type]

    assert caught.value.errors[0].field == "factor"


def test_multiplying_by_a_negative_factor_is_refused() -> None:
    with pytest.raises(NegativeAmountError):
        usd("1.00").multiply(-1)


@pytest.mark.parametrize(
    "operation",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: a > b,
        lambda a, b: a >= b,
    ],
    ids=["add", "subtract", "lt", "le", "gt", "ge"],
)
def test_combining_two_currencies_raises_currency_mismatch_naming_both(operation) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CurrencyMismatchError) as caught:
        operation(usd(1), Money.of(1, "EUR"))

    assert "USD" in str(caught.value)
    assert "EUR" in str(caught.value)
    assert (caught.value.left, caught.value.right) == ("USD", "EUR")


def test_sums_near_the_limit_are_exact_and_beyond_it_are_refused() -> None:
    assert usd("499999999999999999.99") + usd("0.01") == usd("500000000000000000.00")
    big = usd("999999999999999999.99")
    with pytest.raises(ValidationError, match="too large") as caught:
        big + big
    assert caught.value.errors[0].code == "amount_too_large"


# -- comparisons ----------------------------------------------------------------------------


def test_money_compares_by_amount_within_a_currency() -> None:
    assert usd("1.00") < usd("1.01")
    assert usd("1.01") > usd("1.00")
    assert usd("1.00") <= usd(1)
    assert usd("1.00") >= usd(1)
    assert not usd("2") < usd("1")
    assert sorted([usd(3), usd(1), usd(2)]) == [usd(1), usd(2), usd(3)]


def test_money_equality_is_by_value_and_currency() -> None:
    assert usd("5") == usd("5.00")
    assert hash(usd("5")) == hash(usd("5.00"))
    assert usd("5") != Money.of("5", "EUR")
    assert usd("5") != usd("5.01")


# -- currencies -----------------------------------------------------------------------------


def test_jpy_has_no_minor_unit() -> None:
    yen = Money.of(100, "JPY")

    assert Currency.of("JPY").minor_units == 0
    assert str(yen.amount) == "100"
    assert str(yen) == "100 JPY"
    with pytest.raises(ValidationError, match="more decimal places than JPY allows"):
        Money.of("100.5", "JPY")
    assert Money.of(101, "JPY").multiply(Decimal("0.5")) == Money.of(50, "JPY")  # 50.5 -> 50
    assert Money.of(103, "JPY").multiply(Decimal("0.5")) == Money.of(52, "JPY")  # 51.5 -> 52


def test_kwd_has_three_minor_units() -> None:
    dinar = Money.of(1, "KWD")

    assert Currency.of("KWD").minor_units == 3
    assert str(dinar.amount) == "1.000"
    assert Money.of("1.234", "KWD").amount == Decimal("1.234")
    with pytest.raises(ValidationError, match="more decimal places than KWD allows"):
        Money.of("1.2345", "KWD")


@pytest.mark.parametrize("code", ["XYZ", "usd", "", "US"])
def test_an_unknown_currency_is_refused(code: str) -> None:
    with pytest.raises(ValidationError, match="unknown ISO 4217 currency code") as caught:
        Money.of(1, code)

    assert caught.value.errors[0].code == "unknown_currency"


def test_currency_of_returns_one_cached_instance_per_code() -> None:
    assert Currency.of("USD") is Currency.of("USD")
    assert Currency.of("USD") == Currency("USD")
    assert str(Currency.of("USD")) == "USD"


@pytest.mark.usefixtures("isolated_currencies")
def test_a_registered_currency_can_be_used_with_its_minor_units() -> None:
    with pytest.raises(ValidationError):
        Currency("XTS")

    Currency.register("XTS", 4)

    assert Currency.of("XTS").minor_units == 4
    assert str(Money.of(1, "XTS").amount) == "1.0000"
    with pytest.raises(ValidationError, match="more decimal places"):
        Money.of("1.00001", "XTS")


@pytest.mark.usefixtures("isolated_currencies")
@pytest.mark.parametrize("code", ["xts", "XT", "XTSS", "X1S", ""])
def test_registering_a_malformed_code_is_refused(code: str) -> None:
    with pytest.raises(ValidationError, match="three-letter upper-case code"):
        Currency.register(code, 2)

    with pytest.raises(ValidationError):
        Currency(code)


# -- stored form ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [("12.50", "USD"), ("12.5", "USD"), ("0", "USD"), ("100", "JPY"), ("1.234", "KWD")],
)
def test_from_stored_rebuilds_the_same_money(text: str, code: str) -> None:
    assert Money.from_stored(text, code) == Money.of(text, code)


def test_from_stored_refuses_too_precise_text() -> None:
    with pytest.raises(ValidationError) as caught:
        Money.from_stored("1.001", "USD")

    assert caught.value.errors[0].code == "too_precise"


def test_from_stored_refuses_a_negative_amount() -> None:
    with pytest.raises(NegativeAmountError):
        Money.from_stored("-1", "USD")


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-NaN"])
def test_from_stored_refuses_non_finite_text(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Money.from_stored(text, "USD")

    assert caught.value.errors[0].code == "invalid_amount"


@pytest.mark.parametrize("text", ["1E-7", "1e-3"])
def test_from_stored_refuses_exponent_notation_finer_than_the_minor_unit(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Money.from_stored(text, "USD")

    assert caught.value.errors[0].code == "too_precise"


def test_from_stored_refuses_text_that_is_no_number_and_unknown_currencies() -> None:
    with pytest.raises(ValidationError, match="not a decimal number"):
        Money.from_stored("twelve", "USD")
    with pytest.raises(ValidationError, match="unknown ISO 4217"):
        Money.from_stored("1.00", "XYZ")
    with pytest.raises(ValidationError, match="more decimal places than JPY"):
        Money.from_stored("1.5", "JPY")


# -- properties -----------------------------------------------------------------------------

amounts = st.decimals(min_value=0, max_value=Decimal("1E17"), places=2, allow_nan=False,
                      allow_infinity=False)


@given(amounts)
@example(Decimal("1E+17"))
def test_any_valid_amount_round_trips_through_its_stored_text(x: Decimal) -> None:
    money = Money.of(x, "USD")

    assert money.amount == x
    assert Money.from_stored(str(money.amount), "USD") == money


@given(amounts, amounts)
def test_adding_is_commutative(a: Decimal, b: Decimal) -> None:
    assert usd(a) + usd(b) == usd(b) + usd(a)


@given(amounts, amounts, amounts)
@example(Decimal("99999999999999999.99"), Decimal("0.04"), Decimal("0.03"))
def test_adding_is_associative(a: Decimal, b: Decimal, c: Decimal) -> None:
    assert (usd(a) + usd(b)) + usd(c) == usd(a) + (usd(b) + usd(c))


numeric_text = st.from_regex(r"[+-]?\d{0,40}(\.\d{0,6})?([eE][+-]?\d{1,4})?", fullmatch=True)


@given(st.one_of(st.text(), numeric_text))
@example("1E+30")
@example("sNaN")
def test_any_text_gives_money_or_a_validation_error_never_another_exception(text: str) -> None:
    try:
        money = Money.of(text, "USD")
    except ValidationError:
        return
    assert isinstance(money, Money)
    assert money.amount >= 0
    assert Money.from_stored(str(money.amount), "USD") == money

"""The one documented exception tree, and messages that say what was wrong and what to do."""

from __future__ import annotations

import dataclasses
import importlib

import pytest

from invariant import domain
from invariant.domain import (
    AggregateNotFoundError,
    ConcurrencyError,
    ConfigurationError,
    ConflictError,
    CurrencyMismatchError,
    DomainError,
    DuplicateCommandError,
    DuplicateEventError,
    FieldError,
    InvariantError,
    NegativeAmountError,
    NotFoundError,
    OutcomeUnknownError,
    ProjectionError,
    ProjectionFailedError,
    ProjectionLagError,
    SerializationError,
    StoreError,
    UnavailableError,
    UniquenessError,
    ValidationError,
)

# (error, its documented parent) for every edge of the tree in invariant/domain/errors.py
DOCUMENTED_TREE = [
    (DomainError, InvariantError),
    (ValidationError, DomainError),
    (NegativeAmountError, ValidationError),
    (CurrencyMismatchError, DomainError),
    (NotFoundError, InvariantError),
    (AggregateNotFoundError, NotFoundError),
    (ConflictError, InvariantError),
    (ConcurrencyError, ConflictError),
    (DuplicateEventError, ConflictError),
    (DuplicateCommandError, ConflictError),
    (UniquenessError, ConflictError),
    (ConfigurationError, InvariantError),
    (SerializationError, InvariantError),
    (StoreError, InvariantError),
    (ProjectionError, InvariantError),
    (ProjectionLagError, ProjectionError),
    (ProjectionFailedError, ProjectionError),
    (UnavailableError, InvariantError),
    (OutcomeUnknownError, InvariantError),
]


@pytest.mark.parametrize(
    ("error", "parent"), DOCUMENTED_TREE, ids=[e.__name__ for e, _ in DOCUMENTED_TREE]
)
def test_each_error_derives_from_its_documented_parent(
    error: type[Exception], parent: type[Exception]
) -> None:
    assert error.__bases__ == (parent,)


def test_the_base_error_is_an_ordinary_exception() -> None:
    assert InvariantError.__bases__ == (Exception,)


@pytest.mark.parametrize(
    ("error", "unrelated"),
    [
        (ConcurrencyError, DomainError),
        (ValidationError, ConflictError),
        (CurrencyMismatchError, ValidationError),
        (SerializationError, DomainError),
        (ConfigurationError, DomainError),
        (StoreError, ConflictError),
        (AggregateNotFoundError, DomainError),
    ],
)
def test_branches_of_the_tree_do_not_overlap(
    error: type[Exception], unrelated: type[Exception]
) -> None:
    assert not issubclass(error, unrelated)


def test_every_exported_error_is_in_the_tree() -> None:
    exported = [getattr(domain, name) for name in domain.__all__]
    errors = {e for e in exported if isinstance(e, type) and issubclass(e, Exception)}

    assert errors == {InvariantError} | {error for error, _ in DOCUMENTED_TREE}


def test_invariant_errors_re_exports_the_tree_for_application_code() -> None:
    # errors.py: ":mod:`invariant.errors` re-exports it for application code."
    errors_module = importlib.import_module("invariant.errors")

    for error, _ in DOCUMENTED_TREE:
        assert getattr(errors_module, error.__name__) is error


# -- messages and details -------------------------------------------------------------------


def test_a_concurrency_error_names_the_stream_and_both_versions() -> None:
    error = ConcurrencyError("account-42", 3, 5)

    assert (error.stream_id, error.expected, error.actual) == ("account-42", 3, 5)
    assert "'account-42'" in str(error)
    assert "expected version 3" in str(error)
    assert "actual version 5" in str(error)
    assert "retry" in str(error)


@pytest.mark.parametrize(("expected", "said"), [
    (0, "expected version 0 (no stream yet), actual version 5"),
    (None, "expected any version, actual version 5"),
])
def test_a_concurrency_error_says_what_no_stream_and_any_expected(
    expected: int | None, said: str
) -> None:
    error = ConcurrencyError("account-42", expected, 5)

    assert error.expected == expected
    assert said in str(error)


def test_a_duplicate_event_error_names_the_event_ids() -> None:
    error = DuplicateEventError(["e-1", "e-2"])

    assert error.event_ids == ["e-1", "e-2"]
    assert "e-1, e-2" in str(error)
    assert "nothing of this append was written" in str(error)


def test_an_aggregate_not_found_error_names_the_type_and_id() -> None:
    error = AggregateNotFoundError("BankAccount", "acc-1")

    assert str(error) == "BankAccount 'acc-1' does not exist"
    assert (error.aggregate_type, error.aggregate_id) == ("BankAccount", "acc-1")


def test_a_projection_lag_error_names_projection_reached_and_wanted_positions() -> None:
    error = ProjectionLagError("account_summary", 41, 57, 2.5)

    assert (error.projection, error.reached, error.wanted) == ("account_summary", 41, 57)
    assert str(error).startswith(
        "projection 'account_summary' reached position 41, not 57, within 2.5 s"
    )


def test_a_projection_failed_error_names_the_event_and_the_handler_error() -> None:
    error = ProjectionFailedError("account_summary", 12, "ZeroDivisionError: division by zero")

    assert "stopped at event 12: ZeroDivisionError" in str(error)
    assert "resume or rebuild" in str(error)


def test_a_currency_mismatch_names_both_currencies() -> None:
    error = CurrencyMismatchError("USD", "EUR")

    assert (error.left, error.right) == ("USD", "EUR")
    assert "USD" in str(error)
    assert "EUR" in str(error)
    assert "convert" in str(error)


def test_a_validation_error_collects_every_field_error() -> None:
    error = ValidationError(
        [
            FieldError("email", "is not an e-mail address", "invalid_email"),
            FieldError("age", "must be at least 18", "too_young"),
        ],
        subject="Customer",
    )

    assert [e.field for e in error.errors] == ["email", "age"]
    assert error.subject == "Customer"
    assert str(error) == (
        "invalid Customer: email: is not an e-mail address; age: must be at least 18"
    )


def test_field_errors_convert_to_json() -> None:
    error = ValidationError(
        [FieldError("email", "is required", "required"), FieldError("age", "too low", "min")]
    )

    assert [e.to_json() for e in error.errors] == [
        {"field": "email", "message": "is required", "code": "required"},
        {"field": "age", "message": "too low", "code": "min"},
    ]


def test_a_validation_error_accepts_a_single_field_error() -> None:
    error = ValidationError(FieldError("name", "is required", "required"))

    assert error.errors == (FieldError("name", "is required", "required"),)
    assert error.subject == "value"
    assert str(error) == "invalid value: name: is required"


def test_single_builds_a_validation_error_with_one_field_error() -> None:
    error = ValidationError.single("name", "is required", "required", subject="Customer")

    assert isinstance(error, ValidationError)
    assert error.errors == (FieldError("name", "is required", "required"),)
    assert str(error) == "invalid Customer: name: is required"


def test_single_on_a_subclass_builds_the_subclass() -> None:
    error = NegativeAmountError.single("amount", "must not be negative", "negative_amount")

    assert type(error) is NegativeAmountError


def test_the_errors_of_a_validation_error_do_not_follow_later_changes_to_the_list() -> None:
    problems = [FieldError("a", "bad", "bad")]
    error = ValidationError(problems)

    problems.append(FieldError("b", "bad", "bad"))

    assert len(error.errors) == 1


def test_a_field_error_cannot_be_changed() -> None:
    error = FieldError("name", "is required", "required")

    with pytest.raises(dataclasses.FrozenInstanceError):
        error.field = "other"  # type: ignore[misc]

"""notifications without a server: which message becomes which email, and rendering."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from invariant.messaging.errors import PermanentMessageError, UnsupportedVersionError
from invariant.messaging.port import Message
from shop.identity.published import CodeSeal
from shop.notifications import domain
from shop.notifications.application import (
    EmailJob,
    UnknownRecipient,
    emails_for,
    render,
    send_email,
)
from shop.notifications.domain import Email

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SECRET = "unit-test-secret-0123456789-abcdefghijklmnop"


class Book:
    """Recipients in a dict."""

    def __init__(self, **known: str) -> None:
        self.known = dict(known)

    def remember(self, user_id: str, email: str) -> None:
        self.known[user_id] = email

    def email_of(self, user_id: str) -> str | None:
        return self.known.get(user_id)


def message(kind: str, data: dict[str, Any], version: int = 1) -> Message:
    return Message("m-1", kind, "s", version, data, {"version": version})


def test_identity_events_are_remembered_and_codes_stay_sealed() -> None:
    book = Book()
    assert emails_for(message("identity.user_registered", {
        "user_id": "u-1", "email": "ada@example.com", "registered_at": "x"}), book) == []
    assert book.known == {"u-1": "ada@example.com"}
    [job] = emails_for(message("identity.verification_code_issued", {
        "user_id": "u-1", "email": "ada@example.com", "sealed_code": "SEALED",
        "expires_at": "2026-03-01T09:10:00Z"}), book)
    assert job == EmailJob("verification_code", "ada@example.com",
                           {"sealed_code": "SEALED", "expires_at": "2026-03-01T09:10:00Z"})
    [welcome] = emails_for(message("identity.user_verified", {
        "user_id": "u-1", "email": "ada@example.com"}), book)
    assert welcome.kind == "welcome"


def test_order_events_are_read_defensively() -> None:
    book = Book(**{"c-1": "ada@example.com"})
    [placed] = emails_for(message("order.placed", {
        "order_id": "o-1", "customer_id": "c-1", "total": {"value": "9.50",
                                                            "currency": "EUR"},
        "something_new": [1, 2]}), book)
    assert placed.params == {"order_id": "o-1", "total": "9.50 EUR"}
    [bare] = emails_for(message("order.placed", {
        "order_id": "o-2", "customer_id": "c-1", "total": "not an amount"}), book)
    assert bare.params == {"order_id": "o-2"}
    with pytest.raises(PermanentMessageError):
        emails_for(message("order.shipped", {"order_id": "o-1"}), book)
    with pytest.raises(UnknownRecipient):  # retried: the registration may be late
        emails_for(message("order.shipped", {"order_id": "o-1", "customer_id": "c-9"}), book)


def test_unsupported_versions_are_refused_and_foreign_events_ignored() -> None:
    with pytest.raises(UnsupportedVersionError):
        emails_for(message("order.placed", {"order_id": "o", "customer_id": "c"}, 2), Book())
    assert emails_for(message("payment.charged", {}, 7), Book()) == []


def test_the_verification_email_opens_the_sealed_code_only_while_it_is_valid() -> None:
    seal = CodeSeal(SECRET)
    job = EmailJob("verification_code", "ada@example.com", {
        "sealed_code": seal.seal("314159", NOW),
        "expires_at": (NOW + timedelta(minutes=10)).isoformat()})
    email = render(job, seal, NOW + timedelta(minutes=2))
    assert email is not None and "314159" in email.text
    assert render(job, seal, NOW + timedelta(minutes=10)) is None


async def test_an_expired_code_is_not_mailed() -> None:
    sent: list[Email] = []

    class Mailer:
        async def send(self, email: Email) -> None:
            sent.append(email)

    seal = CodeSeal(SECRET)
    payload = EmailJob("verification_code", "a@example.com", {
        "sealed_code": seal.seal("271828", NOW),
        "expires_at": (NOW + timedelta(minutes=10)).isoformat()}).payload()
    await send_email(1, payload, Mailer(), seal, lambda: NOW + timedelta(minutes=11))
    assert sent == []
    await send_email(2, payload, Mailer(), seal, lambda: NOW + timedelta(minutes=1))
    assert [e.to for e in sent] == ["a@example.com"]


def test_only_the_verification_email_has_a_six_digit_number() -> None:
    others = [domain.welcome("a@x.io"), domain.password_changed("a@x.io", NOW),
              domain.order_placed("a@x.io", "7f3a9c2e-1b4d-4e8a-9c1f-123456789abc",
                                  "89.00 USD"),
              domain.order_cancelled("a@x.io", "o-1", "payment declined 3 times"),
              domain.order_shipped("a@x.io", "o-1", "TRK-0123456789")]
    for email in others:
        assert not re.search(r"\b\d{6}\b", email.text), email.subject
    assert re.search(r"\b\d{6}\b", domain.verification_code("a@x.io", "000042", NOW).text)

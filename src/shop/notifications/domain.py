"""The emails shop sends, as plain values: who to, the subject and the text.

Pure: the standard library only. Only :func:`verification_code` carries a code; the other
emails never contain a standalone 6-digit number (so nobody mistakes one for a code).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Email:
    """One email to send."""

    to: str
    subject: str
    text: str


def _signature(text: str) -> str:
    return f"{text}\n\n-- \nshop\n"


def verification_code(to: str, code: str, expires_at: datetime) -> Email:
    """The email carrying the one-time code that verifies ``to``."""
    return Email(to, "Your shop verification code", _signature(
        f"Your verification code is {code}\n\n"
        f"Enter it to verify your email address. It works until "
        f"{expires_at:%H:%M} UTC and only once. If you did not sign up for shop, ignore this "
        "email."))


def welcome(to: str) -> Email:
    """The account is verified."""
    return Email(to, "Welcome to shop", _signature(
        "Your email address is verified and your account is ready: log in to shop."))


def password_changed(to: str, changed_at: datetime) -> Email:
    """The password was changed: tell the owner, in case it was not them."""
    return Email(to, "Your shop password was changed", _signature(
        f"The password of your shop account was changed on {changed_at:%Y-%m-%d at %H:%M} "
        "UTC. If this was not you, contact us at once."))


def order_placed(to: str, order_id: str, total: str | None) -> Email:
    """We have the order and are fulfilling it."""
    amount = f" for {total}" if total else ""
    return Email(to, f"Order {order_id} received", _signature(
        f"Thank you! We received your order {order_id}{amount} and are preparing it. We will "
        "email you again when it ships."))


def order_cancelled(to: str, order_id: str, reason: str | None) -> Email:
    """The order will not be delivered."""
    why = f"\n\nReason: {reason}" if reason else ""
    return Email(to, f"Order {order_id} cancelled", _signature(
        f"Your order {order_id} was cancelled; any payment taken is refunded.{why}"))


def order_shipped(to: str, order_id: str, tracking_number: str | None) -> Email:
    """The order is on its way."""
    tracking = f" Tracking number: {tracking_number}." if tracking_number else ""
    return Email(to, f"Order {order_id} shipped", _signature(
        f"Good news: your order {order_id} is on its way.{tracking}"))

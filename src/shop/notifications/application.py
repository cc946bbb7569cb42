"""notifications' use cases: which integration event becomes which email, and sending one.

Consuming (in the consumer's inbox transaction): identity's and ordering's integration
events, matched by name (``identity.*``, ``order.placed|cancelled|shipped``) and read
defensively (missing optional fields are left out of the email). A version other than 1 is
parked at once (:class:`~invariant.messaging.errors.UnsupportedVersionError`); an event
without what an email needs (no customer id, say) is parked as malformed; an order of a
customer we have no address for yet is retried, then parked. Each email becomes a job
(:data:`SEND_EMAIL`) queued in that same transaction.

Sending (the job worker): the job's payload is rendered into an :class:`Email` (the
verification code is opened from its seal only here) and handed to the :class:`Mailer`.
A failure raises: the job worker retries with backoff and finally marks the job dead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from invariant.messaging.errors import PermanentMessageError, UnsupportedVersionError
from invariant.messaging.port import Message
from shop.notifications import domain
from shop.notifications.domain import Email

log = logging.getLogger("shop.notifications")

SEND_EMAIL = "notifications.send_email"
"""The job that sends one email."""
SUPPORTED_VERSION = 1
SEAL_TTL = timedelta(minutes=15)
"""A sealed code older than this does not open (codes work for 10 minutes anyway)."""

USER_REGISTERED = "identity.user_registered"
CODE_ISSUED = "identity.verification_code_issued"
USER_VERIFIED = "identity.user_verified"
PASSWORD_CHANGED = "identity.password_changed"
ORDER_PLACED, ORDER_CANCELLED, ORDER_SHIPPED = "order.placed", "order.cancelled", "order.shipped"
CONSUMED = frozenset({USER_REGISTERED, CODE_ISSUED, USER_VERIFIED, PASSWORD_CHANGED,
                      ORDER_PLACED, ORDER_CANCELLED, ORDER_SHIPPED})


class Recipients(Protocol):
    """Who each customer is, by email (notifications' own copy, from identity's events)."""

    def remember(self, user_id: str, email: str) -> None: ...

    def email_of(self, user_id: str) -> str | None: ...


class Mailer(Protocol):
    """Sends an email (SMTP); raises when it could not."""

    async def send(self, email: Email) -> None: ...


class CodeOpener(Protocol):
    """Opens a sealed code (identity's :class:`~shop.identity.published.CodeSeal`)."""

    def open(self, sealed: str, now: datetime, ttl: timedelta) -> str: ...


class UnknownRecipient(LookupError):
    """An order event for a customer whose address we have not heard of (yet)."""


@dataclass(frozen=True, slots=True)
class EmailJob:
    """An email to send later: its ``kind`` (template), recipient and template values.
    A verification code is in ``params`` only sealed."""

    kind: str
    to: str
    params: dict[str, str] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        return {"kind": self.kind, "to": self.to, "params": dict(self.params)}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> EmailJob:
        return cls(str(payload["kind"]), str(payload["to"]),
                   {str(k): str(v) for k, v in dict(payload.get("params") or {}).items()})


# -- consuming ------------------------------------------------------------------------------

def emails_for(message: Message, recipients: Recipients) -> list[EmailJob]:
    """The emails ``message`` asks for (none for events this context does not consume)."""
    if message.message_type not in CONSUMED:
        return []
    version = _version(message)
    if version != SUPPORTED_VERSION:
        raise UnsupportedVersionError(
            f"{message.message_type} v{version} is not supported by notifications (supported: "
            f"v{SUPPORTED_VERSION}); upgrade notifications, then replay the parked message")
    data = message.data if isinstance(message.data, dict) else {}
    if message.message_type.startswith("identity."):
        return _identity(message.message_type, data, recipients)
    return _order(message.message_type, data, recipients)


def _version(message: Message) -> object:
    version = message.metadata.get("version", message.schema_version)
    try:
        return int(version)
    except (TypeError, ValueError):
        return version


def _identity(kind: str, data: dict[str, Any], recipients: Recipients) -> list[EmailJob]:
    user_id, email = _required(kind, data, "user_id"), _required(kind, data, "email")
    recipients.remember(user_id, email)
    if kind == CODE_ISSUED:
        return [EmailJob("verification_code", email, {
            "sealed_code": _required(kind, data, "sealed_code"),
            "expires_at": _required(kind, data, "expires_at")})]
    if kind == USER_VERIFIED:
        return [EmailJob("welcome", email)]
    if kind == PASSWORD_CHANGED:
        return [EmailJob("password_changed", email,
                         {"changed_at": _required(kind, data, "changed_at")})]
    return []


def _order(kind: str, data: dict[str, Any], recipients: Recipients) -> list[EmailJob]:
    customer_id, order_id = _required(kind, data, "customer_id"), _required(kind, data,
                                                                             "order_id")
    to = recipients.email_of(customer_id)
    if to is None:
        raise UnknownRecipient(f"no email address known for customer {customer_id} (its "
                               "identity.user_registered has not arrived)")
    params = {"order_id": order_id}
    if kind == ORDER_PLACED and (total := _amount(data.get("total"))):
        params["total"] = total
    if kind == ORDER_CANCELLED and isinstance(data.get("reason"), str):
        params["reason"] = data["reason"][:500]
    if kind == ORDER_SHIPPED and isinstance(data.get("tracking_number"), str):
        params["tracking_number"] = data["tracking_number"][:100]
    return [EmailJob(kind.replace(".", "_"), to, params)]


def _required(kind: str, data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise PermanentMessageError(f"{kind} v1 without {name}: cannot send its email")
    return value


def _amount(value: object) -> str | None:
    if not isinstance(value, dict):
        return None
    amount = value.get("value", value.get("amount"))
    currency = value.get("currency")
    if amount is None or not isinstance(currency, str):
        return None
    return f"{amount} {currency}"


# -- sending --------------------------------------------------------------------------------

def render(job: EmailJob, opener: CodeOpener, now: datetime) -> Email | None:
    """The email of ``job``; None for a verification code that has expired (a stale code
    is useless: it is not sent)."""
    p = job.params
    if job.kind == "verification_code":
        expires_at = datetime.fromisoformat(p["expires_at"])
        if now >= expires_at:
            return None
        code = opener.open(p["sealed_code"], now, SEAL_TTL)
        return domain.verification_code(job.to, code, expires_at)
    if job.kind == "welcome":
        return domain.welcome(job.to)
    if job.kind == "password_changed":
        return domain.password_changed(job.to, datetime.fromisoformat(p["changed_at"]))
    if job.kind == "order_placed":
        return domain.order_placed(job.to, p["order_id"], p.get("total"))
    if job.kind == "order_cancelled":
        return domain.order_cancelled(job.to, p["order_id"], p.get("reason"))
    if job.kind == "order_shipped":
        return domain.order_shipped(job.to, p["order_id"], p.get("tracking_number"))
    raise ValueError(f"unknown email kind {job.kind!r}")


async def send_email(job_id: int, payload: Mapping[str, Any], mailer: Mailer,
                     opener: CodeOpener, clock: Callable[[], datetime]) -> None:
    """Render and send the email of one job (raises when sending failed)."""
    job = EmailJob.from_payload(payload)
    email = render(job, opener, clock())
    if email is None:
        log.warning("email job %s: the verification code expired before it could be sent; "
                    "the user can ask for a new one", job_id)
        return
    await mailer.send(email)
    log.info("email job %s: sent the %s email", job_id, job.kind)

"""What the walkthrough expects of shop, and how it tells that the flows have settled.

Orders settle in the ordering context; invoices, analytics and emails follow through the
outbox and the broker, moments later (on a real broker, later still). The walkthrough waits
until all of them agree with the orders' final states before it judges anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

Order = Mapping[str, Any]
"""An order as ``GET /orders/{id}`` answers."""


@dataclass(frozen=True)
class OrderCase:
    """One scripted order: its lines, how the payment provider answers meanwhile, and what
    should become of it (``reason``: what the cancellation must say)."""

    title: str
    lines: tuple[tuple[str, int], ...]
    provider: str
    status: str
    reason: str = ""

    @property
    def expected(self) -> str:
        """The expected outcome, in words."""
        return self.status + (f": {self.reason}" if self.reason else " with a tracking number")

    def differences(self, order: Order) -> list[str]:
        """How ``order`` differs from what this case expects (empty: as expected)."""
        problems = []
        if order.get("status") != self.status:
            why = f" ({order['cancel_reason']})" if order.get("cancel_reason") else ""
            problems.append(f"{order.get('status')}{why}, expected {self.status}")
        elif self.status == "shipped" and not order.get("tracking_number"):
            problems.append("shipped without a tracking number")
        elif self.reason and self.reason not in (order.get("cancel_reason") or ""):
            problems.append(f"cancelled because {order.get('cancel_reason')!r}, expected "
                            f"{self.reason!r}")
        return problems


CASES = (
    OrderCase("An order that ships", (("keyboard", 1), ("mouse", 2)), "approve", "shipped"),
    OrderCase("An order the stock cannot cover", (("poster", 2),), "approve", "cancelled",
              "out of stock: poster: 2 wanted, 1 available"),
    OrderCase("A payment declined three times", (("mouse", 1),), "decline", "cancelled",
              "payment declined 3 times"),
    OrderCase("A payment provider that never answers in time", (("mouse", 1),), "timeout",
              "cancelled", "payment timed out 3 times"),
)

SETTLED_INVOICE = {"shipped": ("paid",), "cancelled": ("void", "refunded")}


@dataclass(frozen=True)
class Downstream:
    """What the asynchronous side shows: analytics' order counts, the customer's invoices
    (status per order id) and the emails the customer received."""

    counts: Mapping[str, int]
    invoices: Mapping[str, str]
    emails: Sequence[EmailMessage]

    def lagging(self, orders: Sequence[Order], before: Mapping[str, int]) -> list[str]:
        """What does not agree yet with the final ``orders`` (``before``: the analytics
        counts when the walkthrough began); empty once everything has caught up."""
        waiting = []
        for kind in ("placed", "shipped", "cancelled"):
            want = before.get(kind, 0) + sum(
                1 for o in orders if kind == "placed" or o["status"] == kind)
            if self.counts.get(kind, 0) != want:
                waiting.append(f"analytics counts {self.counts.get(kind, 0)} {kind} orders, "
                               f"expected {want}")
        subjects = [str(m["Subject"]) for m in self.emails]
        for order in orders:
            order_id, status = order["order_id"], order["status"]
            invoice = self.invoices.get(order_id)
            if invoice not in SETTLED_INVOICE.get(status, ()):
                waiting.append(f"the invoice of order {order_id[:8]} is {invoice or 'missing'}")
            for word in ("received", status):
                if f"Order {order_id} {word}" not in subjects:
                    waiting.append(f"no '{word}' email for order {order_id[:8]} yet")
        return waiting

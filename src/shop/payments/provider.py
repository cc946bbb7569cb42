"""A FAKE external payment provider, in process, with its own model: snake_case JSON-like
dicts, amounts in integer minor units ("cents"), lower-case currency codes, and its own
result codes (``"00"`` approved, ``"51"`` insufficient funds, ``"05"`` do not honour).

It stands for a remote service shop does not own: nothing of shop imports this model except
the anti-corruption layer (:mod:`shop.payments.infrastructure`). An admin switch sets its
``mode``: ``approve``, ``decline``, or ``timeout`` (it hangs, far longer than shop waits).
Requests with an ``idempotency_key`` it has answered before get the same answer again.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Literal

Mode = Literal["approve", "decline", "timeout"]
MODES: tuple[Mode, ...] = ("approve", "decline", "timeout")
APPROVED, INSUFFICIENT_FUNDS, NOT_FOUND = "00", "51", "14"


class FakePaymentProvider:
    """The provider's API: :meth:`create_charge` and :meth:`create_refund`."""

    def __init__(self, mode: Mode = "approve", *, hang: float = 60.0) -> None:
        self.mode: Mode = mode
        self.hang = hang
        self._answers: dict[str, dict[str, Any]] = {}
        self._charges: dict[str, dict[str, Any]] = {}
        self.charges = 0
        """Charges made (approved), for the operator's view."""
        self.refunds = 0
        self.requests = 0

    async def create_charge(self, request: dict[str, Any]) -> dict[str, Any]:
        """``{idempotency_key, amount_cents, currency_code, merchant_reference, payer_ref}``
        → ``{charge_ref, result_code, result_text, amount_cents, currency_code}``."""
        self.requests += 1
        key = str(request["idempotency_key"])
        if key in self._answers:
            return dict(self._answers[key])
        if self.mode == "timeout":
            await asyncio.sleep(self.hang)
        if self.mode == "decline":
            answer = {"charge_ref": None, "result_code": INSUFFICIENT_FUNDS,
                      "result_text": "insufficient funds", "amount_cents": 0,
                      "currency_code": request["currency_code"]}
        else:
            ref = f"ch_{uuid.uuid4().hex[:20]}"
            answer = {"charge_ref": ref, "result_code": APPROVED, "result_text": "approved",
                      "amount_cents": int(request["amount_cents"]),
                      "currency_code": request["currency_code"]}
            self._charges[ref] = dict(answer, refunded=False)
            self.charges += 1
        self._answers[key] = answer
        return dict(answer)

    async def create_refund(self, request: dict[str, Any]) -> dict[str, Any]:
        """``{idempotency_key, charge_ref}`` → ``{refund_ref, result_code, amount_cents}``
        (refunds are not affected by the mode: only charges decline or hang)."""
        self.requests += 1
        key = str(request["idempotency_key"])
        if key in self._answers:
            return dict(self._answers[key])
        charge = self._charges.get(str(request["charge_ref"]))
        if charge is None:
            return {"refund_ref": None, "result_code": NOT_FOUND,
                    "result_text": "no such charge", "amount_cents": 0}
        answer = {"refund_ref": f"re_{uuid.uuid4().hex[:20]}", "result_code": APPROVED,
                  "result_text": "refunded", "amount_cents": charge["amount_cents"]}
        if not charge["refunded"]:
            charge["refunded"] = True
            self.refunds += 1
        self._answers[key] = answer
        return dict(answer)

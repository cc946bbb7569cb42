"""Given/when/then for event-sourced aggregates: past events, a command, the new events.

A command method on the aggregate, with no storage at all::

    AggregateScenario(BankAccount, AccountId("ACC-1")) \\
        .given(AccountOpened("USER-1", usd(100))) \\
        .when(lambda account: account.withdraw(usd(30))) \\
        .then(MoneyWithdrawn(usd(30)))

A command handler (``async def handle(command, uow)``, as the command bus runs it), through
a real unit of work on an in-memory event store holding the given events::

    s = AggregateScenario(BankAccount, AccountId("ACC-1"), store=bank_store)
    await s.given(AccountOpened("USER-1", usd(100))).when_handling(
        WithdrawMoney(account_id="ACC-1", amount=usd(500)), withdraw_money)
    s.then_raises(InsufficientFunds, match="only 100.00 USD available")
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Self, TypeVar

from invariant.application import Aggregates, UnitOfWork
from invariant.domain import AggregateRoot, ConfigurationError, DomainEvent, stream_id_for
from invariant.store import EventStorage, EventStore, MemoryStorage, StreamState
from invariant.testing.clock import ManualClock
from invariant.testing.diff import differences, listing

A = TypeVar("A", bound=AggregateRoot[Any])

StoreFactory = Callable[[EventStorage], EventStore]
"""Builds the application's event store (its registry and upcasters) on a storage, like
``bank_store`` in ``examples/bank/wiring.py``."""


class AggregateScenario(Generic[A]):
    """Feeds one aggregate its history and a command, and checks what the command recorded.

    ``given`` adds past events (they are not checked: they happened). ``when`` runs a
    command on the aggregate rebuilt from them (a blank one when there are none); when the
    function returns an aggregate of this type (a factory such as ``BankAccount.open``),
    that one's new events are checked. ``when_handling`` runs a command handler in a unit
    of work on an in-memory event store (``store=`` builds it) whose clock is ``clock``;
    every event the command committed, in any stream, is then checked. An error the
    command raises is kept for :meth:`then_raises`; :meth:`then` reports it with the
    events expected.
    """

    def __init__(self, aggregate_type: type[A], aggregate_id: Any, *,
                 store: StoreFactory | None = None, clock: ManualClock | None = None) -> None:
        self.aggregate_type = aggregate_type
        self.aggregate_id = aggregate_id
        self.clock = clock or ManualClock()
        self.history: list[DomainEvent] = []
        self.aggregate: A | None = None
        """The aggregate after the last ``when`` (None before, or when it does not exist)."""
        self.value: Any = None
        """What the last ``when``'s function or handler returned."""
        self.recorded: list[DomainEvent] | None = None
        self.error: Exception | None = None
        self.store: EventStore | None = None
        """The in-memory event store of the last ``when_handling``."""
        self._store = store

    # -- given / when --------------------------------------------------------------------

    def given(self, *events: DomainEvent) -> Self:
        """These events happened to the aggregate (in this order, after earlier ones)."""
        self.history.extend(events)
        return self

    def when(self, command: Callable[[A], object]) -> Self:
        """Run ``command`` on the aggregate as the given events left it."""
        aggregate = self._rebuilt()
        self.recorded, self.error = [], None
        try:
            self.value = command(aggregate)
        except Exception as exc:
            self.aggregate, self.error = aggregate, exc
            return self
        if inspect.isawaitable(self.value):
            close = getattr(self.value, "close", None)
            if close is not None:
                close()  # never awaited: say so instead of leaving a warning
            raise ConfigurationError(
                "when() runs synchronous commands on the aggregate; for an async command "
                "handler use `await scenario.when_handling(command, handler)`")
        if isinstance(self.value, self.aggregate_type):
            aggregate = self.value  # a factory made the aggregate: check its events
        self.aggregate = aggregate
        self.recorded = list(aggregate.pending_events)
        return self

    async def when_handling(self, command: Any,
                            handler: Callable[[Any, UnitOfWork], Awaitable[object]]) -> Self:
        """Run ``handler(command, uow)`` in a unit of work on an event store holding the
        given events, and keep every event its commit appended."""
        if self._store is None:
            raise ConfigurationError(
                "when_handling runs the handler on an event store: pass store=, a function "
                "that builds your application's EventStore on a storage (e.g. bank_store)")
        store = self.store = self._store(MemoryStorage(clock=self.clock))
        stream = stream_id_for(self.aggregate_type, self.aggregate_id)
        if self.history:
            await store.append(stream, self.history, StreamState.NO_STREAM)
        head = await store.storage.head_position()
        aggregates = Aggregates(store, cache_size=0)
        self.recorded, self.error, self.value = [], None, None
        try:
            self.value = (await aggregates.run(lambda uow: handler(command, uow))).value
        except Exception as exc:
            self.error = exc
        self.recorded = [e.event for e in await store.read_all(after_position=head,
                                                               limit=1_000_000)]
        self.aggregate = await aggregates.repository(self.aggregate_type).find(
            self.aggregate_id)
        return self

    def _rebuilt(self) -> A:
        if not self.history:
            return self.aggregate_type(self.aggregate_id)
        return self.aggregate_type.rehydrate(self.aggregate_id, self.history)

    # -- then ----------------------------------------------------------------------------

    def then(self, *events: DomainEvent) -> Self:
        """The command succeeded and recorded exactly these events, in this order."""
        recorded = self._outcome()
        if self.error is not None:
            raise AssertionError(
                f"the command raised {type(self.error).__name__}: {self.error}\n"
                f"expected it to record:\n{listing(events)}") from self.error
        if list(events) != recorded:
            raise AssertionError(differences("recorded events", events, recorded))
        return self

    def then_nothing(self) -> Self:
        """The command succeeded and recorded nothing (e.g. it was already done)."""
        return self.then()

    def then_raises(self, error_type: type[BaseException], *, match: str | None = None
                    ) -> Self:
        """The command raised ``error_type`` (a subclass counts) whose message contains a
        match for the regular expression ``match``."""
        recorded = self._outcome()
        error = self.error
        if error is None:
            raise AssertionError(
                f"expected {error_type.__name__}, but the command succeeded and recorded:\n"
                f"{listing(recorded)}")
        if not isinstance(error, error_type):
            raise AssertionError(
                f"expected {error_type.__name__}, but the command raised "
                f"{type(error).__name__}: {error}") from error
        if match is not None and re.search(match, str(error)) is None:
            raise AssertionError(
                f"{type(error).__name__} was raised, but its message {str(error)!r} does not "
                f"match {match!r}") from error
        return self

    def _outcome(self) -> list[DomainEvent]:
        if self.recorded is None:
            raise AssertionError("no command has run yet: call when(...) or "
                                 "when_handling(...) before then(...)")
        return self.recorded

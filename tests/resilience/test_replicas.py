"""A service run as several instances, called as one: in turn; an instance that is down
is passed over for calls that may be repeated; when every circuit is open the call fails
at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from invariant.domain.errors import ConfigurationError, OutcomeUnknownError
from invariant.http import Replicas
from invariant.resilience import CallPolicy, CircuitOpenError, DependencyFailedError
from invariant.retry import RetryPolicy
from tests.resilience.toy_service import ToyService, free_port

POLICY = CallPolicy(timeout=1.0, retry=RetryPolicy(attempts=1), failures_to_open=2,
                    open_for=30)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[ToyService, ToyService]]:
    first, second = ToyService(), ToyService()
    await first.start()
    await second.start()
    yield first, second
    await first.stop()
    await second.stop()


async def test_calls_go_to_each_instance_in_turn(pair: tuple[ToyService, ToyService]) -> None:
    first, second = pair
    async with Replicas("ordering", [first.url, second.url], POLICY) as replicas:
        for _ in range(6):
            assert (await replicas.request("POST", "/thing", json={})).status_code == 200
    assert (first.requests, second.requests) == (3, 3)


async def test_an_instance_down_is_passed_over_for_a_repeatable_call(
        pair: tuple[ToyService, ToyService]) -> None:
    first, _ = pair
    nowhere = f"http://127.0.0.1:{free_port()}"
    async with Replicas("ordering", [nowhere, first.url], POLICY) as replicas:
        for _ in range(4):
            assert (await replicas.request("GET", "/thing")).status_code == 200
        assert first.requests == 4
        down = replicas.instances[0].caller.breaker
        assert down.state == "open"  # and no longer tried while open
        assert (await replicas.request("GET", "/thing")).status_code == 200
        assert first.requests == 5


async def test_a_post_that_never_left_goes_to_the_next_instance(
        pair: tuple[ToyService, ToyService]) -> None:
    first, _ = pair
    nowhere = f"http://127.0.0.1:{free_port()}"  # no connection: nothing was sent there
    async with Replicas("ordering", [nowhere, first.url], POLICY) as replicas:
        assert (await replicas.request("POST", "/thing", json={})).status_code == 200
        assert first.requests == 1


async def test_a_post_an_instance_may_have_received_is_never_sent_to_another(
        pair: tuple[ToyService, ToyService]) -> None:
    first, second = pair
    first.hold = asyncio.Event()  # it takes the request and never answers
    slow = CallPolicy(timeout=0.2, retry=RetryPolicy(attempts=1), failures_to_open=5)
    async with Replicas("ordering", [first.url, second.url], slow) as replicas:
        with pytest.raises(OutcomeUnknownError, match="may have been carried out"):
            await replicas.request("POST", "/thing", json={})
    assert (first.requests, second.requests) == (1, 0)


async def test_a_post_answered_with_a_failure_is_not_sent_to_another(
        pair: tuple[ToyService, ToyService]) -> None:
    first, second = pair
    first.statuses = [500]
    async with Replicas("ordering", [first.url, second.url], POLICY) as replicas:
        with pytest.raises(DependencyFailedError, match="answered 500"):
            await replicas.request("POST", "/thing", json={})
    assert (first.requests, second.requests) == (1, 0)


async def test_every_circuit_open_fails_at_once() -> None:
    urls = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    async with Replicas("ordering", urls, POLICY) as replicas:
        for _ in range(2):
            with pytest.raises(DependencyFailedError):
                await replicas.request("GET", "/thing")
        with pytest.raises(CircuitOpenError, match="ordering is unavailable"):
            await replicas.request("GET", "/thing")


def test_no_instance_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="no URL for ordering"):
        Replicas("ordering", [], POLICY)

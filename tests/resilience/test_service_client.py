"""The resilient client against a real HTTP service that is stopped and started again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from invariant.domain.errors import ConfigurationError, UnavailableError
from invariant.http import ServiceClient, problem_for
from invariant.resilience import (
    BreakerState,
    BusyError,
    CallPolicy,
    CallTimeoutError,
    CircuitOpenError,
    DependencyFailedError,
)
from invariant.retry import RetryPolicy
from tests.resilience.toy_service import ToyService, free_port

FAST_RETRY = RetryPolicy(attempts=3, first_delay=0.01, max_delay=0.02, jitter=0.01)
POLICY = CallPolicy(timeout=1.0, retry=FAST_RETRY, failures_to_open=3, open_for=0.3)


@pytest.fixture
async def service() -> AsyncIterator[ToyService]:
    toy = ToyService()
    await toy.start()
    yield toy
    await toy.stop()


def client_for(service: ToyService, policy: CallPolicy = POLICY) -> ServiceClient:
    return ServiceClient("catalog", service.url, policy)


async def test_an_idempotent_call_is_retried_until_the_service_answers(
        service: ToyService) -> None:
    service.statuses = [503, 502]
    async with client_for(service) as client:
        response = await client.request("GET", "/thing")
    assert response.status_code == 200
    assert service.requests == 3


async def test_a_call_that_may_not_be_repeated_is_tried_once(service: ToyService) -> None:
    service.statuses = [503]
    async with client_for(service) as client:
        with pytest.raises(DependencyFailedError, match="answered 503 to POST /thing"):
            await client.request("POST", "/thing", json={})
    assert service.requests == 1


async def test_a_refusal_is_an_answer_not_a_failure(service: ToyService) -> None:
    service.statuses = [404] * 10
    async with client_for(service) as client:
        for _ in range(10):
            assert (await client.request("GET", "/thing")).status_code == 404
        assert client.caller.breaker.state is BreakerState.CLOSED
    assert service.requests == 10


async def test_a_503_problem_is_the_service_declining_and_passes_through(
        service: ToyService) -> None:
    # The service answered in its own words (e.g. a dependency of its own is down): the
    # caller gets the answer, and this service's breaker stays closed.
    service.statuses, service.problems = [503] * 10, True
    async with client_for(service) as client:
        for _ in range(10):
            answer = await client.request("GET", "/thing")
            assert answer.status_code == 503 and answer.headers["retry-after"] == "2"
        assert client.caller.breaker.state is BreakerState.CLOSED
    assert service.requests == 10


async def test_retries_stop_after_the_policy_s_attempts(service: ToyService) -> None:
    service.statuses = [500] * 10
    policy = CallPolicy(timeout=1.0, retry=FAST_RETRY, failures_to_open=100)
    async with client_for(service, policy) as client:
        with pytest.raises(DependencyFailedError, match="answered 500"):
            await client.request("GET", "/thing")
    assert service.requests == 3


async def test_a_slow_service_times_out_and_counts_as_a_failure(service: ToyService) -> None:
    service.hold = asyncio.Event()
    policy = CallPolicy(timeout=0.2, retry=RetryPolicy(attempts=2, first_delay=0.01),
                        failures_to_open=2, open_for=30)
    async with client_for(service, policy) as client:
        with pytest.raises(CallTimeoutError, match=r"did not answer within 0\.2 s"):
            await client.request("GET", "/thing")
        assert service.requests == 2
        assert client.caller.breaker.state is BreakerState.OPEN


async def test_the_circuit_opens_fails_fast_then_closes_when_the_service_is_back(
        service: ToyService) -> None:
    async with client_for(service) as client:
        assert (await client.request("GET", "/thing")).status_code == 200
        await service.stop()
        with pytest.raises(DependencyFailedError, match="cannot be reached"):
            await client.request("GET", "/thing")  # three attempts: the circuit opens
        assert client.caller.breaker.state is BreakerState.OPEN

        await service.start()
        before = service.requests
        for _ in range(5):  # refused without reaching the service, though it is back
            with pytest.raises(CircuitOpenError) as refused:
                await client.request("GET", "/thing")
        assert service.requests == before
        assert 0 < refused.value.retry_after <= POLICY.open_for

        await asyncio.sleep(POLICY.open_for)
        assert client.caller.breaker.state is BreakerState.HALF_OPEN
        assert (await client.request("GET", "/thing")).status_code == 200
        assert service.requests == before + 1
        assert client.caller.breaker.state is BreakerState.CLOSED
        assert list(client.caller.breaker.history)[-3:] == [
            BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


async def test_a_failed_probe_opens_the_circuit_again(service: ToyService) -> None:
    async with client_for(service) as client:
        await service.stop()
        with pytest.raises(DependencyFailedError):
            await client.request("GET", "/thing")
        await asyncio.sleep(POLICY.open_for)
        with pytest.raises(DependencyFailedError):  # the probe: one attempt, no retry
            await client.request("GET", "/thing")
        assert client.caller.breaker.state is BreakerState.OPEN
        with pytest.raises(CircuitOpenError):
            await client.request("GET", "/thing")


async def test_while_one_call_probes_the_others_are_refused(service: ToyService) -> None:
    async with client_for(service) as client:
        service.statuses = [500, 500, 500]
        with pytest.raises(DependencyFailedError):
            await client.request("GET", "/thing")
        assert client.caller.breaker.state is BreakerState.OPEN
        await asyncio.sleep(POLICY.open_for)
        service.hold = asyncio.Event()
        probe = asyncio.create_task(client.request("GET", "/thing"))
        await service.until_in_flight(1)
        with pytest.raises(CircuitOpenError):
            await client.request("GET", "/thing")
        service.hold.set()
        assert (await probe).status_code == 200
        assert service.requests == 4
        assert client.caller.breaker.state is BreakerState.CLOSED


async def test_no_more_calls_are_in_flight_than_the_limit(service: ToyService) -> None:
    service.hold = asyncio.Event()
    policy = CallPolicy(timeout=0.3, retry=FAST_RETRY, max_concurrent=2)
    async with client_for(service, policy) as client:
        calls = [asyncio.create_task(client.request("GET", "/thing")) for _ in range(3)]
        await service.until_in_flight(2)
        with pytest.raises(BusyError, match="2 calls to it are in flight"):
            await calls[2]
        service.hold.set()
        assert [(await c).status_code for c in calls[:2]] == [200, 200]
    assert service.most_in_flight == 2
    assert client.caller.breaker.state is BreakerState.CLOSED


async def test_an_unavailable_service_is_a_503_with_retry_after() -> None:
    problem = problem_for(CircuitOpenError("catalog", 2.2))
    assert problem.status == 503
    assert problem.headers == {"Retry-After": "3"}
    assert problem.body["retry_after"] == 3
    assert "catalog is unavailable" in problem.body["detail"]
    assert isinstance(CircuitOpenError("catalog", 1), UnavailableError)


async def test_nothing_listening_is_unreachable_not_a_hang() -> None:
    policy = CallPolicy(timeout=1.0, retry=FAST_RETRY, failures_to_open=10)
    async with ServiceClient("catalog", f"http://127.0.0.1:{free_port()}", policy) as client:
        with pytest.raises(DependencyFailedError, match="cannot be reached"):
            await client.request("GET", "/thing")


@pytest.mark.parametrize("url", ["", "catalog:8001", "ftp://x", "http://", "http://h:99999"])
def test_a_wrong_service_url_is_refused_naming_the_service(url: str) -> None:
    with pytest.raises(ConfigurationError, match="URL of catalog"):
        ServiceClient("catalog", url)


# -- a call that may not be repeated, without an answer ----------------------------------------

async def test_a_post_without_an_answer_in_time_is_an_unknown_outcome_not_unavailable(
        service: ToyService) -> None:
    from invariant.domain.errors import OutcomeUnknownError

    service.hold = asyncio.Event()
    policy = CallPolicy(timeout=0.2, retry=FAST_RETRY, failures_to_open=1, open_for=30)
    async with client_for(service, policy) as client:
        with pytest.raises(OutcomeUnknownError) as raised:
            await client.request("POST", "/orders/o-1/place", json={})
        assert service.requests == 1  # never sent again
        assert client.caller.breaker.state is BreakerState.OPEN  # still a failure of it
    error = raised.value
    assert not isinstance(error, UnavailableError)  # that would promise nothing was done
    assert "catalog gave no answer to POST /orders/o-1/place (none within 0.2 s)" in str(error)
    problem = problem_for(error)
    assert problem.status == 504 and "Retry-After" not in problem.headers
    assert problem.body["type"] == "urn:invariant:problem:outcome-unknown"
    assert problem.body["service"] == "catalog"


async def test_a_post_whose_connection_breaks_after_sending_is_an_unknown_outcome() -> None:
    from invariant.domain.errors import OutcomeUnknownError

    async def read_then_hang_up(reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the request arrived...
        writer.close()  # ...and the connection breaks before any answer

    server = await asyncio.start_server(read_then_hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with ServiceClient("ordering", f"http://127.0.0.1:{port}", POLICY) as client:
            with pytest.raises(OutcomeUnknownError, match="connection broke before its answer"):
                await client.request("POST", "/orders", json={})
            with pytest.raises(DependencyFailedError):  # a GET may be sent again: 503
                await client.request("GET", "/orders/o-1")
    finally:
        server.close()
        await server.wait_closed()


async def test_a_post_that_never_left_is_unavailable_and_may_be_sent_again() -> None:
    async with ServiceClient("ordering", f"http://127.0.0.1:{free_port()}", POLICY) as client:
        with pytest.raises(DependencyFailedError, match="cannot be reached") as raised:
            await client.request("POST", "/orders", json={})
    assert problem_for(raised.value).status == 503

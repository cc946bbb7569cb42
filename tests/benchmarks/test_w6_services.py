"""W6's services mode without starting it (tests/shop/services starts the set): that W6
accepts the mode, that each run's set is isolated from any other on the same servers, that
the supervisor's process gets the plan as W6 made it, and that the logs are judged right."""

from __future__ import annotations

from pathlib import Path

from benchmarks.w6 import parse_args
from benchmarks.w6_services import (
    POOL,
    ServicesSet,
    crash_in,
    plan_for,
    plan_from_json,
    plan_to_json,
    retried,
)
from shop.deployment.ports import ephemeral_range
from shop.deployment.supervisor import check_plan

DSN = "postgresql://postgres@127.0.0.1:5432/test"
NATS = "nats://127.0.0.1:4222"


def test_w6_runs_the_services_mode_beside_one_process() -> None:
    args = parse_args(["--modes", "sqlite,services", "--customers", "8,32"])
    assert args.modes == ["sqlite", "services"]


def test_each_run_gets_a_set_of_its_own(tmp_path: Path) -> None:
    one, other = plan_for(DSN, NATS, tmp_path / "a"), plan_for(DSN, NATS, tmp_path / "b")
    assert one.prefix != other.prefix and one.channel != other.channel
    assert one.prefix.startswith("w6") and one.channel.startswith("w6")
    assert one.redis_prefix != other.redis_prefix
    check_plan(one)  # no port given twice
    low, _ = ephemeral_range()
    assert all(p < low for p in (one.gateway_port, one.smtp_port,
                                 *(s.port for s in one.services)))
    assert len(one.services) >= 12  # ordering and notifications twice
    for service in one.services:
        env = one.environment(service)
        assert env["INVARIANT_POSTGRES_SCHEMA"] == one.prefix + service.context
        assert env["INVARIANT_POSTGRES_POOL"] == str(POOL)
        assert env["SHOP_SAMPLE_CATALOG"] == "on"
        assert env["INVARIANT_BROKER_CHANNEL"] == one.channel
        assert env["SHOP_DATA"].startswith(str(tmp_path / "a"))


def test_the_report_judges_the_services_mode_against_one_process() -> None:
    from benchmarks.report import SUBJECT, w6_name, w6_targets

    def judged(services: float, one: float) -> str:
        got = {("services", w6_name(32, "completed")): services,
               ("sqlite", w6_name(32, "completed")): one}
        lines = w6_targets(lambda w, b, s: got.get((b, w)) if s == SUBJECT else None)
        return next(line for line in lines if "1.6x" in line)

    assert " PASS " in judged(16.0, 10.0)
    assert " FAIL " in judged(15.9, 10.0)


def test_profile_samples_ordering_and_the_cpu_counts_every_process() -> None:
    from benchmarks.w6_services import _profiled_first

    pids = {"identity": 1, "ordering": 2, "ordering-2": 3, "gateway": 4, "supervisor": 5}
    assert _profiled_first(pids) == (2, 1, 3, 4, 5)


def test_the_supervisors_process_gets_the_plan_as_w6_made_it(tmp_path: Path) -> None:
    plan = plan_for(DSN, NATS, tmp_path)
    again = plan_from_json(plan_to_json(plan))
    assert again == plan
    assert again.services == plan.services


def test_the_mode_reads_the_order_streams_from_each_contexts_schema(tmp_path: Path) -> None:
    from benchmarks.w6_services import ServicesEventLog

    plan = plan_for(DSN, NATS, tmp_path, tag="abc")
    log = ServicesEventLog(DSN, plan)
    assert {c: one.schema for c, one in log.logs.items()} == {
        "ordering": "w6abc_ordering", "inventory": "w6abc_inventory",
        "payments": "w6abc_payments", "shipping": "w6abc_shipping"}
    assert ServicesSet(DSN, NATS).name == "services"


RETRIED_FAILURE = """\
projection p@v1: cannot connect to PostgreSQL for a projection lease: too many; retrying in 0.1 s
Traceback (most recent call last):
  File "x.py", line 1, in f
asyncpg.exceptions.TooManyConnectionsError: too many

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "y.py", line 2, in g
invariant.domain.errors.StoreError: cannot connect
"""


def test_a_failure_a_worker_retried_is_counted_not_taken_for_a_crash(tmp_path: Path) -> None:
    log = tmp_path / "ordering.log"
    log.write_text(RETRIED_FAILURE)
    assert crash_in([log]) is None
    assert retried([log]) == 1


def test_a_readiness_probe_that_failed_is_not_taken_for_a_crash(tmp_path: Path) -> None:
    log = tmp_path / "analytics.log"
    log.write_text("readiness: the database did not answer\n"
                   + RETRIED_FAILURE.split("\n", 1)[1])
    assert crash_in([log]) is None
    assert retried([log]) == 1


def test_a_failure_not_retried_is_a_crash(tmp_path: Path) -> None:
    log = tmp_path / "ordering.log"
    log.write_text("consumer notifications: handler failed\n" + RETRIED_FAILURE.split("\n", 1)[1])
    crash = crash_in([log])
    assert crash is not None and crash.startswith("ordering.log logged a failure")
    stopped = tmp_path / "payments.log"
    stopped.write_text("relay: worker stopped\n")
    assert crash_in([stopped]) is not None

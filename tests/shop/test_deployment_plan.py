"""The plan of the services mode refuses ports given to two processes, naming them and the
settings that move them."""

from __future__ import annotations

from pathlib import Path

import pytest

from invariant.domain.errors import ConfigurationError
from shop.deployment.plan import Plan
from shop.deployment.supervisor import check_plan


def test_a_port_given_twice_is_named_with_the_settings_that_move_it(tmp_path: Path) -> None:
    plan = Plan(admin_dsn="postgresql://postgres@127.0.0.1/x", broker_url="nats://x:4222",
                channel="c", data=tmp_path, secret="s", admin_password="p",
                gateway_port=8102, first_port=8101)
    with pytest.raises(ConfigurationError, match=r"port\(s\) 8102 given to two processes; "
                                                 "set SHOP_PORT, SHOP_SMTP_PORT and "
                                                 "--first-port apart"):
        check_plan(plan)
    check_plan(Plan(admin_dsn=plan.admin_dsn, broker_url=plan.broker_url, channel="c",
                    data=tmp_path, secret="s", admin_password="p"))


def test_services_have_no_bound_on_the_oldest_items_wait_unless_given_one(
    tmp_path: Path
) -> None:
    def plan(**passed_on: str) -> Plan:
        return Plan(admin_dsn="postgresql://postgres@127.0.0.1/x", broker_url="nats://x:4222",
                    channel="c", data=tmp_path, secret="s", admin_password="p",
                    passed_on=passed_on)
    ordering = plan().service("ordering")
    assert plan().environment(ordering)["SHOP_BACKLOG_OLDEST"] == "0"
    given = plan(SHOP_BACKLOG_OLDEST="1.5")
    assert given.environment(ordering)["SHOP_BACKLOG_OLDEST"] == "1.5"

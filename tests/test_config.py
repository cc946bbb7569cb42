"""Settings: the broker and job-queue settings, their errors, and the adapters they open."""

from __future__ import annotations

from pathlib import Path

import pytest

from invariant import Settings
from invariant.bootstrap import open_broker, open_job_queue
from invariant.domain import ConfigurationError


def settings(**env: str) -> Settings:
    return Settings.from_env({f"INVARIANT_{k.upper()}": v for k, v in env.items()})


def test_by_default_no_broker_and_jobs_in_the_database() -> None:
    found = settings()
    assert (found.broker, found.broker_url, found.broker_channel) == (None, None, "invariant")
    assert (found.jobs, found.jobs_url) == ("database", None)
    assert open_job_queue(found) is None
    from invariant.messaging.brokers.inprocess import InProcessBroker

    assert isinstance(open_broker(found), InProcessBroker)  # the embedded default


@pytest.mark.parametrize(("broker", "url", "adapter", "channel_attribute", "channel"), [
    ("nats", "nats://127.0.0.1:4222", "NatsBroker", "stream", "ORDERS"),
    ("rabbitmq", "amqp://guest:guest@127.0.0.1:5672/", "RabbitMQBroker", "exchange_name",
     "orders"),
    ("redis", "redis://127.0.0.1:6379/0", "RedisStreamsBroker", "stream", "orders:messages"),
    ("kafka", "kafka://127.0.0.1:9092", "KafkaBroker", "topic", "orders"),
])
def test_each_broker_setting_opens_its_adapter_on_the_channel(
    broker: str, url: str, adapter: str, channel_attribute: str, channel: str
) -> None:
    found = settings(broker=broker.upper(), broker_url=url, broker_channel="orders")
    assert (found.broker, found.broker_url) == (broker, url)
    opened = open_broker(found)  # not connected: nothing is reached
    assert type(opened).__name__ == adapter
    assert getattr(opened, channel_attribute) == channel


@pytest.mark.parametrize(("env", "message"), [
    ({"broker": "kafak"}, "INVARIANT_BROKER='kafak' is not one of sql, inprocess, nats, rabbitmq, "
                          "redis, kafka"),
    ({"broker": "nats"}, "INVARIANT_BROKER=nats needs INVARIANT_BROKER_URL, e.g. "
                         "nats://127.0.0.1:4222"),
    ({"broker": "rabbitmq", "broker_url": "redis://h:6379"},
     "INVARIANT_BROKER_URL='redis://h:6379' is not a rabbitmq URL: it must start with amqp:// "
     "or amqps://"),
    ({"broker_url": "redis://h:6379/0"},
     "INVARIANT_BROKER_URL is set but INVARIANT_BROKER is not: set INVARIANT_BROKER=redis"),
    ({"broker": "inprocess", "broker_url": "nats://h:4222"},
     "INVARIANT_BROKER=inprocess lives in the application's memory and takes no URL: unset "
     "INVARIANT_BROKER_URL"),
    ({"broker": "redis", "broker_url": "redis://h:1", "broker_channel": "a.b"},
     "INVARIANT_BROKER_CHANNEL='a.b' must be 1 to 64 letters, digits, '-' or '_'"),
    ({"jobs": "celery"}, "INVARIANT_JOBS='celery' is not one of database, nats"),
    ({"jobs": "nats"}, "INVARIANT_JOBS=nats needs a NATS server: set INVARIANT_JOBS_URL"),
    ({"jobs": "nats", "broker": "redis", "broker_url": "redis://h:1"},
     "INVARIANT_JOBS=nats needs a NATS server"),
    ({"jobs_url": "nats://h:4222"}, "INVARIANT_JOBS_URL is set but jobs stay in the database: "
                                    "set INVARIANT_JOBS=nats"),
    ({"jobs": "nats", "jobs_url": "redis://h:1"}, "INVARIANT_JOBS_URL='redis://h:1' is not a "
                                                  "NATS URL"),
])
def test_bad_broker_and_job_settings_say_what_to_set(env: dict[str, str], message: str
                                                     ) -> None:
    with pytest.raises(ConfigurationError) as caught:
        settings(**env)
    assert message in str(caught.value)


def test_a_password_never_appears_in_an_error() -> None:
    with pytest.raises(ConfigurationError) as caught:
        settings(broker="nats", broker_url="amqp://user:s3cret@host:5672/")
    assert "s3cret" not in str(caught.value)
    assert "amqp://user:***@host:5672/" in str(caught.value)


def test_settings_built_by_hand_are_checked_when_opened() -> None:
    with pytest.raises(ConfigurationError, match="needs INVARIANT_BROKER_URL"):
        open_broker(Settings(broker="redis"))
    with pytest.raises(ConfigurationError, match="INVARIANT_JOBS=nats needs a NATS server"):
        open_job_queue(Settings(jobs="nats"))


def test_the_job_queue_is_on_its_own_url_or_the_nats_brokers() -> None:
    from invariant.messaging.jobs.nats import NatsJobQueue

    own = open_job_queue(settings(jobs="nats", jobs_url="nats://jobs:4222"))
    assert isinstance(own, NatsJobQueue)
    assert (own.url, own.stream) == ("nats://jobs:4222", "INVARIANT_JOBS")
    shared = open_job_queue(settings(jobs="nats", broker="nats", broker_url="nats://b:4222",
                                     broker_channel="shop-events"))
    assert isinstance(shared, NatsJobQueue)
    assert (shared.url, shared.stream) == ("nats://b:4222", "SHOP_EVENTS_JOBS")


def test_unknown_keys_are_still_errors_and_name_the_new_ones() -> None:
    with pytest.raises(ConfigurationError) as caught:
        settings(brokr="nats")
    assert "INVARIANT_BROKER_URL" in str(caught.value)
    assert "INVARIANT_JOBS" in str(caught.value)


def test_the_sql_broker_keeps_messages_in_the_applications_database(tmp_path: Path) -> None:
    from invariant.messaging.brokers.sql import SqlBroker

    found = Settings.from_env({"INVARIANT_BROKER": "sql",
                               "INVARIANT_SQLITE_PATH": str(tmp_path / "app.db")})
    opened = open_broker(found)
    assert isinstance(opened, SqlBroker)
    with pytest.raises(ConfigurationError, match="own database and takes no URL"):
        settings(broker="sql", broker_url="nats://127.0.0.1:4222")


async def test_bootstrap_relays_to_the_sql_broker_on_its_own_database(tmp_path: Path) -> None:
    from invariant.bootstrap import bootstrap
    from invariant.messaging.brokers.sql import SqlBroker

    found = Settings.from_env({"INVARIANT_BROKER": "sql",
                               "INVARIANT_SQLITE_PATH": str(tmp_path / "app.db")})
    app = bootstrap(found, events=[], command_handlers={})
    assert app.relay is not None and isinstance(app.relay.broker, SqlBroker)
    assert app.relay.broker.database is app.read_models  # one database, one transaction scope
    with pytest.raises(ConfigurationError, match="INVARIANT_STORE=sqlite or postgres"):
        bootstrap(Settings.from_env({"INVARIANT_BROKER": "sql", "INVARIANT_STORE": "memory"}),
                  events=[], command_handlers={})

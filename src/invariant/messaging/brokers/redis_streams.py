"""Redis Streams adapter (redis.asyncio): XADD to one stream, consumer groups read with
XREADGROUP and acknowledge with XACK. De-duplication: a Lua script adds a message only if
``SET <prefix>:seen:<id> NX EX <window>`` succeeds, atomically. Deliveries left pending by
a dead consumer are claimed again (XAUTOCLAIM) once idle for ``claim_after`` seconds.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any
from uuid import uuid4

from invariant.extras import needs_extra
from invariant.messaging.errors import BrokerError
from invariant.messaging.port import Delivery, Message, read_body

with needs_extra("redis"):
    import redis.asyncio as aioredis
    from redis import exceptions as redis_errors


_ERRORS = (redis_errors.RedisError, OSError)

_ADD = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then
  return redis.call('XADD', KEYS[1], '*', 'm', ARGV[1])
end
return false
"""


class _RedisDelivery:
    def __init__(self, broker: RedisStreamsBroker, group: str, entry_id: str, body: bytes,
                 redelivered: bool) -> None:
        self._broker, self._group, self._entry_id = broker, group, entry_id
        self._message = read_body(body, f"redis:{broker.stream}:{entry_id}")
        self._redelivered = redelivered

    @property
    def message(self) -> Message:
        return self._message

    @property
    def redelivered(self) -> bool:
        return self._redelivered

    async def ack(self) -> None:
        try:
            await self._broker._client().xack(self._broker.stream, self._group,
                                              self._entry_id)
        except _ERRORS as exc:
            raise BrokerError(f"Redis XACK failed (the message will be redelivered): {exc}"
                              ) from exc

    async def nack(self) -> None:
        # Left pending: claimed again once idle (XAUTOCLAIM in fetch).
        return None


class RedisStreamsBroker:
    """Redis at ``url`` (e.g. ``redis://127.0.0.1:6379/0``), stream key ``stream``."""

    name = "redis"

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *,
                 stream: str = "invariant:messages", dedupe_window: int = 120,
                 claim_after: float = 30.0, consumer: str | None = None) -> None:
        self.url = url
        self.stream = stream
        self.dedupe_window = dedupe_window
        self.claim_after = claim_after
        self.consumer = consumer or f"c-{uuid4().hex[:12]}"
        self._redis: aioredis.Redis | None = None
        self._add: Any = None

    async def connect(self) -> None:
        """Create the client (connections are made, and remade, on demand)."""
        if self._redis is None:
            self._redis = aioredis.Redis.from_url(
                self.url, socket_timeout=10, socket_connect_timeout=5,
                retry_on_error=[redis_errors.ConnectionError], client_name="invariant")
            self._add = self._redis.register_script(_ADD)
            try:
                await self._redis.ping()
            except _ERRORS as exc:
                raise BrokerError(f"cannot connect to Redis at {self.url}: {exc}") from exc

    async def close(self) -> None:
        """Close the client."""
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()

    def _client(self) -> aioredis.Redis:
        if self._redis is None:
            raise BrokerError("RedisStreamsBroker is not connected: call connect() first")
        return self._redis

    async def declare(self, group: str, *, types: Collection[str] | None = None
                      ) -> None:
        """The consumer group (new messages only). ``types`` is not
        filtered here: every type is delivered (the consumer skips the others)."""
        try:
            await self._client().xgroup_create(self.stream, group, id="$", mkstream=True)
        except redis_errors.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise BrokerError(f"cannot create Redis group {group!r}: {exc}") from exc
        except _ERRORS as exc:
            raise BrokerError(f"cannot create Redis group {group!r}: {exc}") from exc

    async def publish(self, batch: Sequence[Message]) -> None:
        """One pipelined round trip; each message added once per de-duplication window."""
        client = self._client()
        try:
            async with client.pipeline(transaction=False) as pipe:
                for m in batch:
                    await self._add(keys=[self.stream, f"{self.stream}:seen:{m.message_id}"],
                                    args=[m.encode(), self.dedupe_window], client=pipe)
                await pipe.execute()
        except _ERRORS as exc:
            raise BrokerError(f"Redis publish failed: {exc}") from exc

    async def fetch(self, group: str, *, max_messages: int, timeout: float  # noqa: ASYNC109
                    ) -> list[Delivery]:
        """Stale pending deliveries first (XAUTOCLAIM), then new ones (XREADGROUP)."""
        client = self._client()
        try:
            claimed: Any = await client.xautoclaim(
                self.stream, group, self.consumer, int(self.claim_after * 1000),
                start_id="0-0", count=max_messages)
            stale = [(e, f) for e, f in claimed[1] if f]
            if stale:
                return [_RedisDelivery(self, group, _text(e), f[b"m"], True)
                        for e, f in stale]
            block = max(int(timeout * 1000), 1)
            reply: Any = await client.xreadgroup(group, self.consumer, {self.stream: ">"},
                                            count=max_messages, block=block)
        except _ERRORS as exc:
            raise BrokerError(f"Redis read failed: {exc}") from exc
        out: list[Delivery] = []
        for _stream, entries in reply or []:
            out.extend(_RedisDelivery(self, group, _text(e), f[b"m"], False)
                       for e, f in entries)
        return out

    async def drop_connection(self) -> None:
        """Kill this client's connections from the server side (tests)."""
        admin = aioredis.Redis.from_url(self.url)
        try:
            for info in await admin.client_list():
                if info.get("name") == "invariant":
                    await admin.client_kill_filter(_id=info["id"])
        finally:
            await admin.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

"""Per-client rate limits: fixed windows counted in memory (embedded) or in Redis (scaled)."""

from __future__ import annotations

import time
from typing import Protocol

from redis.asyncio import Redis


class RateLimiter(Protocol):
    async def hit(self, bucket: str, key: str, limit: int, window: int) -> int:
        """Count one request; return 0 when allowed, else the seconds until the window resets."""


class MemoryRateLimiter:
    """Counters in this process's memory; fine for a single embedded process."""

    def __init__(self, clock: callable = time.monotonic) -> None:  # type: ignore[valid-type]
        self._counts: dict[tuple[str, str, int], int] = {}
        self._clock = clock

    async def hit(self, bucket: str, key: str, limit: int, window: int) -> int:
        now = self._clock()
        slot = int(now // window)
        counter = (bucket, key, slot)
        count = self._counts.get(counter, 0) + 1
        self._counts[counter] = count
        if len(self._counts) > 100_000:
            self._counts = {k: v for k, v in self._counts.items() if k[2] >= slot - 1}
        if count > limit:
            return max(1, int((slot + 1) * window - now) + 1)
        return 0


class RedisRateLimiter:
    """Counters in Redis, shared by every web process of a scaled instance."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def hit(self, bucket: str, key: str, limit: int, window: int) -> int:
        now = time.time()
        slot = int(now // window)
        name = f"{self._prefix}:rl:{bucket}:{key}:{slot}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, window + 1)
            count, _ = await pipe.execute()
        if int(count) > limit:
            return max(1, int((slot + 1) * window - now) + 1)
        return 0

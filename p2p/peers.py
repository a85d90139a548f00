"""The tracker's swarms: the peers of each (kind, infohash), in memory or in Redis.

In the embedded mode one web process holds every swarm in its memory; in the scaled mode they
live in Redis (a hash per swarm, peer id → JSON record with its expiry), so any web process
answers any peer. A peer that stops announcing expires after the TTL it announced with.
"""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

from redis.asyncio import Redis


class Swarms(Protocol):
    """Peers of each (kind, infohash): a record per peer id, expiring after ``ttl`` seconds."""

    async def put(
        self, kind: str, info_hash: str, peer_id: str, record: dict[str, Any], ttl: int
    ) -> None: ...

    async def remove(self, kind: str, info_hash: str, peer_id: str) -> None: ...

    async def peers(self, kind: str, info_hash: str) -> dict[str, dict[str, Any]]: ...

    async def completed(self, info_hash: str) -> None: ...

    async def downloaded(self, info_hash: str) -> int: ...

    async def sweep(self) -> int: ...


class MemorySwarms:
    """Swarms in this process's memory (embedded mode: one web process)."""

    def __init__(self) -> None:
        self._swarms: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self._downloaded: dict[str, int] = {}

    async def put(self, kind: str, info_hash: str, peer_id: str, record: dict[str, Any], ttl: int) -> None:
        self._swarms.setdefault((kind, info_hash), {})[peer_id] = {**record, "exp": time.time() + ttl}

    async def remove(self, kind: str, info_hash: str, peer_id: str) -> None:
        swarm = self._swarms.get((kind, info_hash))
        if swarm is not None:
            swarm.pop(peer_id, None)
            if not swarm:
                del self._swarms[(kind, info_hash)]

    async def peers(self, kind: str, info_hash: str) -> dict[str, dict[str, Any]]:
        now = time.time()
        swarm = self._swarms.get((kind, info_hash), {})
        for peer_id in [p for p, r in swarm.items() if r["exp"] < now]:
            del swarm[peer_id]
        return dict(swarm)

    async def completed(self, info_hash: str) -> None:
        self._downloaded[info_hash] = self._downloaded.get(info_hash, 0) + 1

    async def downloaded(self, info_hash: str) -> int:
        return self._downloaded.get(info_hash, 0)

    async def sweep(self) -> int:
        now, removed = time.time(), 0
        for key in list(self._swarms):
            swarm = self._swarms[key]
            for peer_id in [p for p, r in swarm.items() if r["exp"] < now]:
                del swarm[peer_id]
                removed += 1
            if not swarm:
                del self._swarms[key]
        return removed


class RedisSwarms:
    """Swarms in Redis (scaled mode): a hash per swarm, peer id → JSON record with its expiry."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}:trk"

    def _key(self, kind: str, info_hash: str) -> str:
        return f"{self._prefix}:{kind}:{info_hash}"

    async def put(self, kind: str, info_hash: str, peer_id: str, record: dict[str, Any], ttl: int) -> None:
        key = self._key(kind, info_hash)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, peer_id, json.dumps({**record, "exp": time.time() + ttl}))
            pipe.expire(key, ttl)
            await pipe.execute()

    async def remove(self, kind: str, info_hash: str, peer_id: str) -> None:
        await self._redis.hdel(self._key(kind, info_hash), peer_id)

    async def peers(self, kind: str, info_hash: str) -> dict[str, dict[str, Any]]:
        key = self._key(kind, info_hash)
        raw = await self._redis.hgetall(key)
        now, out, stale = time.time(), {}, []
        for field, value in raw.items():
            record = json.loads(value)
            peer_id = field.decode() if isinstance(field, bytes) else field
            if record["exp"] < now:
                stale.append(peer_id)
            else:
                out[peer_id] = record
        if stale:
            await self._redis.hdel(key, *stale)
        return out

    async def completed(self, info_hash: str) -> None:
        await self._redis.hincrby(f"{self._prefix}:downloaded", info_hash, 1)

    async def downloaded(self, info_hash: str) -> int:
        value = await self._redis.hget(f"{self._prefix}:downloaded", info_hash)
        return int(value or 0)

    async def sweep(self) -> int:
        return 0  # each swarm's key expires with its last announce; stale fields go on read


def counts(peers: dict[str, dict[str, Any]]) -> tuple[int, int]:
    """(complete, incomplete): seeds and the other peers of a swarm."""
    complete = sum(1 for r in peers.values() if r.get("left", 1) == 0)
    return complete, len(peers) - complete

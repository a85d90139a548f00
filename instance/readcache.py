"""One small read cache for hot paths: values kept a few seconds, concurrent misses sharing one load.

Each cache belongs to one :class:`~instance.core.Shoal` (``shoal.state(name, ReadCache)``), so two
apps in one process (tests run several) never see each other's entries.

- An entry lives until its expiry (given per load: a constant, or a function of the value).
- ``stamp`` (optional) names a counter that outdates every entry when it moves, such as
  :data:`instance.db.write_generation`: an entry stored under an older stamp is not returned.
- :meth:`ReadCache.forget` drops one key, and a load that was under way when any key was
  forgotten answers its callers but is not stored (it may have read the state before the change).
- Callers that miss while a load of the same key is under way wait for it instead of loading
  again. When that load fails or its caller is cancelled, each waiter loads for itself (so each
  sees its own error, such as a 404).
- Past ``max_entries`` the oldest entries go first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, NamedTuple, TypeVar

log = logging.getLogger("shoal.readcache")

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Load = Callable[[], Awaitable[V]]
TTL = float | Callable[[V], float]


class Entry(NamedTuple, Generic[V]):
    """A kept value: ``expires`` (monotonic seconds), the value, and the stamp it was loaded under.

    Each store makes a new entry, so a caller holding one learns by identity whether it was replaced.
    """

    expires: float
    value: V
    stamp: int


class _Failed:
    """What waiters receive when the load they waited for did not finish."""


_FAILED = _Failed()


class ReadCache(Generic[K, V]):
    """Values by key with an expiry, an optional stamp, and one load per key at a time."""

    def __init__(self, *, max_entries: int = 10_000, stamp: Callable[[], int] | None = None) -> None:
        self.max_entries = max_entries
        self._stamp = stamp or (lambda: 0)
        self._entries: dict[K, Entry[V]] = {}
        self._loading: dict[K, asyncio.Future[V | _Failed]] = {}
        self._epoch = 0
        self._refreshing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, key: K) -> Entry[V] | None:
        """The entry kept for ``key`` under the current stamp, expired or not."""
        entry = self._entries.get(key)
        if entry is None or entry.stamp != self._stamp():
            return None
        return entry

    def fresh(self, key: K) -> Entry[V] | None:
        """The entry for ``key`` if it has not expired."""
        entry = self.entry(key)
        if entry is None or entry.expires <= time.monotonic():
            return None
        return entry

    def loading(self, key: K) -> bool:
        """Whether a load of ``key`` is under way."""
        return key in self._loading

    async def get(self, key: K, load: Load[V], *, ttl: TTL[V]) -> V:
        """The fresh value for ``key``, or the value of one load shared with concurrent callers."""
        hit = self.fresh(key)
        if hit is not None:
            return hit.value
        pending = self._loading.get(key)
        if pending is not None:
            # shielded: a waiter that goes away does not cancel what the others wait for
            shared = await asyncio.shield(pending)
            if not isinstance(shared, _Failed):
                return shared
            return await load()
        return await self._load(key, self._start(key), load, ttl)

    def refresh(self, key: K, load: Load[V], *, ttl: TTL[V]) -> None:
        """Start loading ``key`` in the background unless a load of it is under way."""
        if key in self._loading:
            return
        started = self._start(key)  # at once: callers until the task runs wait for it

        async def run() -> None:
            try:
                await self._load(key, started, load, ttl)
            except Exception as exc:  # the next caller loads for itself
                log.warning("could not refresh a cached read (%r): %s", key, exc)
                self._entries.pop(key, None)

        task = asyncio.create_task(run())
        self._refreshing.add(task)
        task.add_done_callback(self._refreshing.discard)

    def _start(self, key: K) -> tuple[asyncio.Future[V | _Failed], int, int]:
        future: asyncio.Future[V | _Failed] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        return future, self._stamp(), self._epoch

    async def _load(
        self, key: K, started: tuple[asyncio.Future[V | _Failed], int, int], load: Load[V], ttl: TTL[V]
    ) -> V:
        future, stamp, epoch = started
        result: V | _Failed = _FAILED
        try:
            value = await load()
            result = value
        finally:
            if self._loading.get(key) is future:
                del self._loading[key]
            future.set_result(result)
        if epoch == self._epoch:
            seconds = ttl(value) if callable(ttl) else ttl
            self._store(key, Entry(time.monotonic() + seconds, value, stamp))
        return value

    def _store(self, key: K, entry: Entry[V]) -> None:
        self._entries.pop(key, None)
        while len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = entry

    def forget(self, key: K) -> None:
        """Drop ``key``; loads under way now (of any key) answer their callers but are not kept."""
        self._entries.pop(key, None)
        self._loading.pop(key, None)
        self._epoch += 1

    def clear(self) -> None:
        """Drop every entry; loads under way are not kept."""
        self._entries.clear()
        self._loading.clear()
        self._epoch += 1

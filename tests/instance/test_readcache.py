"""The read cache of hot paths (instance/readcache.py), and that each Shoal keeps its own."""

from __future__ import annotations

import asyncio

import pytest

from instance.readcache import ReadCache
from instance.services import files, p2p_stats, videos, views
from tests.conftest import InstanceFactory
from tests.instance.test_videos import new_video


async def test_concurrent_misses_share_one_load() -> None:
    cache: ReadCache[str, int] = ReadCache()
    loads = 0
    gate = asyncio.Event()

    async def load() -> int:
        nonlocal loads
        loads += 1
        await gate.wait()
        return 7

    readers = [asyncio.create_task(cache.get("k", load, ttl=60)) for _ in range(10)]
    await asyncio.sleep(0)
    assert cache.loading("k")
    gate.set()
    assert await asyncio.gather(*readers) == [7] * 10
    assert loads == 1
    assert await cache.get("k", load, ttl=60) == 7 and loads == 1


async def test_expiry_stamp_and_a_forget_during_a_load() -> None:
    stamp = [0]
    cache: ReadCache[str, str | None] = ReadCache(stamp=lambda: stamp[0])

    async def none() -> None:
        return None

    assert await cache.get("gone", none, ttl=0) is None
    assert cache.fresh("gone") is None and cache.entry("gone") is not None  # expired, still there
    assert await cache.get("kept", none, ttl=lambda value: 60) is None
    assert cache.fresh("kept") is not None
    stamp[0] += 1  # a write: every entry is outdated
    assert cache.entry("kept") is None

    async def overtaken() -> str:
        cache.forget("other")  # a change commits while the read is under way
        return "old"

    assert await cache.get("kept", overtaken, ttl=60) == "old"
    assert cache.entry("kept") is None  # answered, not kept


async def test_a_failed_load_is_not_shared_and_waiters_load_for_themselves() -> None:
    cache: ReadCache[str, int] = ReadCache()
    gate = asyncio.Event()
    calls: list[str] = []

    async def failing() -> int:
        calls.append("leader")
        await gate.wait()
        raise LookupError("not found")

    async def own() -> int:
        calls.append("waiter")
        return 3

    leader = asyncio.create_task(cache.get("k", failing, ttl=60))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(cache.get("k", own, ttl=60))
    await asyncio.sleep(0)
    gate.set()
    with pytest.raises(LookupError):
        await leader
    assert await waiter == 3
    assert calls == ["leader", "waiter"] and cache.entry("k") is None


async def test_the_oldest_entries_go_first() -> None:
    cache: ReadCache[int, int] = ReadCache(max_entries=3)
    for key in range(5):
        await cache.get(key, lambda key=key: asyncio.sleep(0, key), ttl=60)
    assert len(cache) == 3 and cache.entry(0) is None and cache.entry(4) is not None


async def test_a_background_refresh_replaces_an_expired_entry() -> None:
    cache: ReadCache[str, int] = ReadCache()
    await cache.get("k", lambda: asyncio.sleep(0, 1), ttl=0)
    cache.refresh("k", lambda: asyncio.sleep(0, 2), ttl=60)
    assert cache.loading("k")
    for _ in range(5):
        await asyncio.sleep(0)
    fresh = cache.fresh("k")
    assert fresh is not None and fresh.value == 2


async def test_two_shoals_in_one_process_share_no_cache(make_instance: InstanceFactory) -> None:
    """What one app read and buffered is its own: the other neither sees it nor forgets it."""
    a = await make_instance("a")
    b = await make_instance("b")
    await a.user_client("alice")
    video = await new_video(a, "alice", "Only on a")
    assert (await files.file_access(a.shoal, video.uuid)) is not None
    assert files.access_decision(a.shoal, video.uuid) is not None
    assert files.access_decision(b.shoal, video.uuid) is None
    assert (await files.file_access(b.shoal, video.uuid)) is None  # b reads its own database
    files.forget(b.shoal, video.uuid)
    assert files.access_decision(a.shoal, video.uuid) is not None

    view = await videos.video_details(a.shoal, video.uuid, None)
    assert view.video.uuid == video.uuid
    assert videos._details_cache(a.shoal).entry(video.uuid) is not None
    assert videos._details_cache(b.shoal).entry(video.uuid) is None

    assert views._buffer(a.shoal) is not views._buffer(b.shoal)
    assert p2p_stats._buffer(a.shoal) is not p2p_stats._buffer(b.shoal)

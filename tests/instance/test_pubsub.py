"""Redis pub/sub between an instance's processes: what a follower hears, and what it survives."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from instance import pubsub
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.scaled_only


async def test_a_failing_message_costs_that_message_alone() -> None:
    redis = Redis.from_url(REDIS_URL)
    channel = f"shoaltest:channel:{uuid.uuid4().hex}"
    heard: list[bytes] = []
    got_all = asyncio.Event()

    async def handle(data: bytes) -> None:
        heard.append(data)
        if data == b"bad":
            raise ValueError("a message this process cannot use")
        if len(heard) == 3:
            got_all.set()

    task = await pubsub.follow(redis, channel, handle, name="test-follow")
    try:
        # Subscribed once follow() returns: nothing published from here on is missed.
        for data in (b"first", b"bad", b"after"):
            assert await redis.publish(channel, data) == 1
        await asyncio.wait_for(got_all.wait(), 5)
        assert heard == [b"first", b"bad", b"after"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await redis.aclose()

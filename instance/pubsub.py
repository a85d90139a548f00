"""Redis channels the processes of one instance talk over (scaled mode).

A web process follows a channel for as long as it runs: each message's data goes to a handler
(whose failure is logged and costs that message alone), and a lost connection is followed by a
new subscription a second later. Messages published
while no subscription stands are lost; callers keep a slower way to converge (expiring caches,
periodic announces).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

log = logging.getLogger("shoal.pubsub")

SUBSCRIBE_WAIT = 10.0
"""How long starting a follower waits for its first subscription before going on without it."""

Handler = Callable[[bytes], Awaitable[None]]


async def _follow(redis: Redis, channel: str, handle: Handler, ready: asyncio.Event) -> None:
    while True:
        pubsub = redis.pubsub()
        try:
            await pubsub.subscribe(channel)
            ready.set()
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                try:
                    await handle(message["data"])
                except Exception:  # one bad message does not cost the subscription
                    log.exception("handling a message on the Redis channel %s failed", channel)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("lost the Redis channel %s; subscribing again", channel)
            await asyncio.sleep(1)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()


async def follow(redis: Redis, channel: str, handle: Handler, *, name: str) -> asyncio.Task[None]:
    """Start following ``channel`` (``handle`` gets each message's bytes); returns the task to
    cancel. Waits up to :data:`SUBSCRIBE_WAIT` for the subscription, so that a message published
    right after start is heard."""
    ready = asyncio.Event()
    task = asyncio.create_task(_follow(redis, channel, handle, ready), name=name)
    try:
        await asyncio.wait_for(ready.wait(), SUBSCRIBE_WAIT)
    except TimeoutError:
        log.warning("no subscription to the Redis channel %s yet; still trying", channel)
    return task

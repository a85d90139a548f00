"""The resources one Shoal process holds, opened and closed together.

The web app, the worker, the seeder and the CLI all build a :class:`Shoal` from settings
and hand it to services; nothing reaches for globals.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
from redis.asyncio import Redis

from .db import Database
from .extensions import Surface, build_surface
from .netguard import GuardedResolver
from .ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from .settings import Settings
from .storage import S3Options, Storage, storage_from_url

if TYPE_CHECKING:
    from .jobs import JobQueue

log = logging.getLogger("shoal")

USER_AGENT = "Shoal/0.1.0"

T = TypeVar("T")


@dataclass
class Shoal:
    """Settings plus the open resources of this process."""

    settings: Settings
    db: Database
    storage: Storage
    limiter: RateLimiter
    secret: bytes
    redis: Redis | None = None
    http: aiohttp.ClientSession | None = None
    jobs: JobQueue | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    # The events this Shoal fires and the ports it calls out through (instance/extensions.py).
    ext: Surface = field(default_factory=Surface)

    def state(self, name: str, make: Callable[[], T]) -> T:
        """This Shoal's own ``name`` (a cache, a buffer), made by ``make()`` on first use.

        What a module keeps between calls lives here, not in a module-level dict, so two Shoals
        in one process (tests run several) share nothing. Name it after the module
        (``"videos.details"``).
        """
        try:
            return self.extras[name]  # type: ignore[no-any-return]
        except KeyError:
            made = self.extras[name] = make()
            return made

    def url(self, path: str) -> str:
        """An absolute URL on this instance's public origin."""
        return self.settings.public_url + path


def s3_options(settings: Settings) -> S3Options:
    """S3 connection options from settings."""
    return S3Options(
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key=settings.s3_access_key.get_secret_value() if settings.s3_access_key else None,
        secret_key=settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None,
        public_url=settings.s3_public_url,
    )


@asynccontextmanager
async def open_shoal(settings: Settings, *, http: bool = True) -> AsyncIterator[Shoal]:
    """Open the database, storage, Redis and HTTP client named by ``settings``; close them after."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url, pool_size=settings.db_pool_size)
    storage = storage_from_url(settings.effective_storage_url, s3=s3_options(settings))
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    limiter: RateLimiter = RedisRateLimiter(redis, settings.redis_prefix) if redis else MemoryRateLimiter()
    session = None
    if http:
        # Every remote host this client reaches was named by someone else: it connects only
        # to public or allowlisted addresses, whatever a name resolves to at connect time.
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=GuardedResolver(settings.allow_hosts)),
            timeout=aiohttp.ClientTimeout(total=60, connect=10, sock_read=30),
            headers={"User-Agent": USER_AGENT},
        )
    shoal = Shoal(
        settings=settings,
        db=db,
        storage=storage,
        limiter=limiter,
        secret=settings.server_secret(),
        redis=redis,
        http=session,
        ext=build_surface(),
    )
    try:
        yield shoal
    finally:
        if session is not None:
            await session.close()
        if redis is not None:
            await redis.aclose()
        await storage.close()
        await db.close()

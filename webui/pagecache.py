"""Anonymous pages shared per app: the watch page is the hot path of a popular video.

A visitor without a session sees exactly the same HTML as every other such visitor for the same
URL (no CSRF token, no user), so a rendered page is kept and replayed until this process's next
database write (:data:`instance.db.write_generation`) and at most :data:`MAX_AGE` seconds, for
writes made by other processes (view counts, new comments). Signed-in visitors always get a
fresh page. Concurrent misses for one URL render once.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from multidict import CIMultiDict

from instance import db
from instance.core import Shoal
from instance.web.context import SESSION_TOKEN, SHOAL, current_user

MAX_AGE = 2.0
MAX_ENTRIES = 2048

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class _Page:
    generation: int
    expires: float
    status: int
    headers: CIMultiDict[str]
    body: bytes


@dataclass
class _Pages:
    """One app's kept pages and the renders under way, by (handler, path and query)."""

    pages: dict[tuple[str, str], _Page] = field(default_factory=dict)
    pending: dict[tuple[str, str], asyncio.Future[_Page | None]] = field(default_factory=dict)


def _of_shoal(shoal: Shoal) -> _Pages:
    # Per app (two instances in one process, as tests and benches run them, must not see each
    # other's pages): kept on the app's Shoal, created on first use.
    return shoal.extras.setdefault("webui.pages", _Pages())


def _replay(page: _Page) -> web.Response:
    return web.Response(status=page.status, headers=page.headers, body=page.body)


def shared_for_anonymous(handler: Handler) -> Handler:
    """Serve ``handler``'s page from the per-process cache to visitors without a session."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        if request.method != "GET" or request.get(SESSION_TOKEN) or current_user(request) is not None:
            return await handler(request)
        cache = _of_shoal(request.app[SHOAL])
        _pages, _pending = cache.pages, cache.pending
        key = (handler.__name__, request.rel_url.path_qs)
        hit = _pages.get(key)
        if hit is not None and hit.generation == db.write_generation and hit.expires > time.monotonic():
            return _replay(hit)
        pending = _pending.get(key)
        if pending is not None:
            shared = await asyncio.shield(pending)
            if shared is not None:
                return _replay(shared)
            return await handler(request)
        generation = db.write_generation
        future: asyncio.Future[_Page | None] = asyncio.get_running_loop().create_future()
        _pending[key] = future
        page: _Page | None = None
        try:
            response = await handler(request)
            body = response.body if isinstance(response, web.Response) else None
            if response.status == 200 and isinstance(body, bytes) and not response.cookies:
                expires = time.monotonic() + MAX_AGE
                page = _Page(generation, expires, response.status, CIMultiDict(response.headers), body)
                if len(_pages) >= MAX_ENTRIES:
                    _pages.clear()
                _pages[key] = page
            return response
        finally:
            _pending.pop(key, None)
            future.set_result(page)  # None: the waiters render for themselves

    return wrapper

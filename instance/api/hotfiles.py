"""Small public files answered before routing: the playlists every player keeps asking for.

Every viewer of a public video fetches its master and media playlists and its segments
manifest, and players on live-like refresh ask again and again. Routing, the middlewares, the
access check and a ``stat`` cost several times what sending 2 KB does, so once the full path
has answered such a file, the answer (bytes and final headers, security headers included) is
kept for a second, tied to the access decision it was made with. Requests for the same URL in
that second get the same answer without routing; after it, a ``stat`` showing the same file
keeps the answer another second, until the access decision itself is renewed (every few seconds).

A privacy change, a hide or a deletion drops the video's access decision
(``services.files.forget``): every kept answer made with it stops at once. A file rewritten in
place is seen at the latest a second later.

Only plain requests take the short path: GET without a query string, an ``Authorization``
header, a ``Range`` or a conditional header. Everything else goes the full way, as does the
first request after each second.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import hdrs, web
from multidict import CIMultiDict

from ..core import Shoal
from ..services.files import access_decision

HOT_SECONDS = 1.0
HOT_ENTRIES = 1024
"""At most this many kept answers (each at most 64 KiB, the size of files served from memory)."""
# Headers that make a request take the full path: its answer could differ from the kept one.
FULL_PATH_HEADERS = (
    hdrs.AUTHORIZATION,
    hdrs.RANGE,
    hdrs.IF_NONE_MATCH,
    hdrs.IF_MODIFIED_SINCE,
    hdrs.IF_MATCH,
    hdrs.IF_UNMODIFIED_SINCE,
    hdrs.IF_RANGE,
)
# Headers of one exchange, not of the file: never repeated.
PER_EXCHANGE = (hdrs.DATE, hdrs.CONNECTION, hdrs.SET_COOKIE, hdrs.TRANSFER_ENCODING)

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class HotFile:
    """One kept answer: valid until ``expires`` while ``decision`` is still the video's access decision."""

    expires: float
    shoal: Shoal
    uuid: str
    decision: tuple[float, object]
    path: Path
    stamp: tuple[int, int]
    body: bytes
    headers: CIMultiDict[str]

    def renew(self, now: float) -> bool:
        """Keep the answer another second if the access decision and the file are as they were."""
        decision = access_decision(self.shoal, self.uuid)
        if decision is not self.decision or decision[0] <= now:
            return False
        try:
            info = os.stat(self.path)
        except OSError:
            return False
        if (info.st_size, info.st_mtime_ns) != self.stamp:
            return False
        self.expires = min(now + HOT_SECONDS, decision[0])
        return True


HOT_FILES = web.AppKey("hot_files", dict)
"""The app's kept answers, by raw request target."""
_OFFER = web.RequestKey("hot_offer", tuple)


_SOURCE = web.RequestKey("hot_source", tuple)


def offer(request: web.Request, shoal: Shoal, uuid: str) -> None:
    """The answer about to be sent is a public file of video ``uuid``: the short path may repeat it."""
    if not request.query_string and request.method == hdrs.METH_GET:
        request[_OFFER] = (shoal, uuid)


def from_file(request: web.Request, path: Path, stamp: tuple[int, int]) -> None:
    """The answer's bytes are the whole of ``path`` as of ``stamp`` (size, mtime_ns)."""
    request[_SOURCE] = (path, stamp)


async def remember(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``, after every other hook: keep an offered answer with its final headers."""
    offered = request.get(_OFFER)
    source = request.get(_SOURCE)
    if offered is None or source is None or response.status != 200 or not isinstance(response, web.Response):
        return
    body = response.body
    if not isinstance(body, bytes):
        return
    shoal, uuid = offered
    decision = access_decision(shoal, uuid)
    if decision is None:
        return
    headers = CIMultiDict(response.headers)
    for name in PER_EXCHANGE:
        headers.popall(name, None)
    hot = request.app[HOT_FILES]
    now = time.monotonic()
    if len(hot) >= HOT_ENTRIES:
        for stale in [path for path, entry in hot.items() if entry.expires <= now]:
            del hot[stale]
        if len(hot) >= HOT_ENTRIES:
            hot.pop(next(iter(hot)))
    expires = min(now + HOT_SECONDS, decision[0])
    hot[request.raw_path] = HotFile(expires, shoal, uuid, decision, *source, body, headers)


def install(app: web.Application) -> None:
    """Keep offered answers; call after every other ``on_response_prepare`` hook is added."""
    app[HOT_FILES] = {}
    app.on_response_prepare.append(remember)


def short_path(app: web.Application, handler: Handler) -> Handler:
    """Wrap the server's request handler: kept answers first, the application otherwise."""
    hot: dict[str, HotFile] = app[HOT_FILES]

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        if hot and request.method == hdrs.METH_GET:
            entry = hot.get(request.raw_path)
            if entry is not None:
                now = time.monotonic()
                if entry.expires > now or entry.renew(now):
                    if access_decision(entry.shoal, entry.uuid) is entry.decision:
                        headers = request.headers
                        for name in FULL_PATH_HEADERS:
                            if name in headers:
                                break
                        else:
                            return web.Response(body=entry.body, headers=entry.headers)
                else:
                    hot.pop(request.raw_path, None)
        return await handler(request)

    return handle


class ShoalRunner(web.AppRunner):
    """An ``AppRunner`` whose server answers kept hot files before routing."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        if HOT_FILES in self.app:
            server.request_handler = short_path(self.app, server.request_handler)
        return server

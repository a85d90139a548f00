"""Small public files answered before routing (and before parsing): the playlists every player
keeps asking for.

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

Two places answer from the kept files. ``short_path`` wraps the server's request handler, so
routing and the middlewares are skipped for every request aiohttp parsed. ``HotRequestHandler``
goes below the parser: when a connection is idle and its parser sits between requests, a
chunk that holds whole plain HTTP/1.1 GET requests for kept files is answered straight from
``data_received`` (the bytes aiohttp would send, Date included); the first request it cannot
answer, and everything after it in the chunk, goes to aiohttp's parser as usual. That saves the
parser's message objects, the request object, a task per request and the header serialising,
which is most of what a 2 KB answer costs.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path

from aiohttp import hdrs, web
from multidict import CIMultiDict

from ..core import Shoal
from ..services.files import access_decision

log = logging.getLogger("shoal.hotfiles")

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
    wire: bytes = field(init=False)
    """Status line and headers as aiohttp writes them for HTTP/1.1, all but Date and the blank line."""

    def __post_init__(self) -> None:
        lines = "".join(f"{name}: {value}\r\n" for name, value in self.headers.items())
        self.wire = f"HTTP/1.1 200 OK\r\n{lines}".encode()

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
    if any(_BAD_HEADER_CHARS.search(f"{name}{value}") for name, value in headers.items()):
        return
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


def lookup(hot: dict[str, HotFile], raw_path: str) -> HotFile | None:
    """The kept answer for ``raw_path`` if it may still be sent (an expired one is dropped)."""
    entry = hot.get(raw_path)
    if entry is None:
        return None
    now = time.monotonic()
    if entry.expires > now or entry.renew(now):
        return entry if access_decision(entry.shoal, entry.uuid) is entry.decision else None
    hot.pop(raw_path, None)
    return None


def short_path(app: web.Application, handler: Handler) -> Handler:
    """Wrap the server's request handler: kept answers first, the application otherwise."""
    hot: dict[str, HotFile] = app[HOT_FILES]

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        if hot and request.method == hdrs.METH_GET:
            entry = lookup(hot, request.raw_path)
            if entry is not None:
                headers = request.headers
                for name in FULL_PATH_HEADERS:
                    if name in headers:
                        break
                else:
                    return web.Response(body=entry.body, headers=entry.headers)
        return await handler(request)

    return handle


# ---------------------------------------------------------------- below the parser
#
# A request head the short path below the parser answers: a GET of an absolute path in printable
# ASCII, HTTP/1.1, well-formed header lines (token, colon, value without control characters).
# Anything else, obs-folded lines included, is left to aiohttp's parser and its 400s.
_PLAIN_GET = re.compile(
    rb"GET (/[!-~]*) HTTP/1\.1((?:\r\n[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*)*)"
)
# Headers that send a request the full way: FULL_PATH_HEADERS, and those about a body or the
# connection, which aiohttp's parser must see — except ``Connection: keep-alive``, HTTP/1.1's
# default that browsers still send.
_BODY_OR_CONNECTION = (hdrs.CONTENT_LENGTH, hdrs.TRANSFER_ENCODING, hdrs.EXPECT, hdrs.UPGRADE)
_FULL_PATH_HEADER = re.compile(
    rb"\r\n(?:"
    + b"|".join(re.escape(name.encode()) for name in (*FULL_PATH_HEADERS, *_BODY_OR_CONNECTION))
    + rb"|connection(?!:[ \t]*keep-alive[ \t]*(?:\r\n|$))):",
    re.IGNORECASE,
)
_BAD_HEADER_CHARS = re.compile(r"[\r\n\x00]")
WRITE_BUFFER_LIMIT = 256 * 1024
"""A connection whose client reads slower than this much unsent data goes through aiohttp's flow control."""

_date = [0, b""]


def _date_line() -> bytes:
    now = int(time.time())
    if _date[0] != now:
        _date[0], _date[1] = now, f"Date: {formatdate(now, usegmt=True)}\r\n\r\n".encode()
    return _date[1]


class HotRequestHandler(web.RequestHandler):
    """aiohttp's connection handler, answering kept files for whole plain GETs before parsing them.

    It only steps in while the connection is idle (aiohttp waits for its next request, nothing
    queued, not upgraded or closing) and its parser sits between requests: true at the start,
    and after a chunk that ended whole requests, each without body bytes still to come.
    """

    __slots__ = ("_hot", "_between_requests")

    def __init__(self, manager: HotServer, **kwargs: object) -> None:
        super().__init__(manager, **kwargs)
        self._hot: dict[str, HotFile] = manager.hot
        self._between_requests = True

    def data_received(self, data: bytes) -> None:
        if (
            data
            and self._hot
            and self._between_requests
            and self._waiter is not None
            and not self._messages
            and not (self._force_close or self._close or self._upgraded or self._buffer_paused)
            and self.transport is not None
            and self.transport.get_write_buffer_size() < WRITE_BUFFER_LIMIT
        ):
            data = self._answer_kept(data)
            if not data:
                return
        queued = len(self._messages)
        super().data_received(data)
        new = len(self._messages) - queued
        self._between_requests = (
            new > 0
            and data.endswith(b"\r\n\r\n")
            and not self._upgraded
            and all(payload.is_eof() for _, payload in itertools.islice(self._messages, queued, None))
        )

    def _answer_kept(self, data: bytes) -> bytes:
        """Answer the whole plain GETs at the start of ``data`` from kept files; the rest, unread."""
        start = 0
        answered = 0
        write = self.transport.write  # type: ignore[union-attr]
        while (end := data.find(b"\r\n\r\n", start)) >= 0:
            head = _PLAIN_GET.fullmatch(data, start, end)
            if head is None or _FULL_PATH_HEADER.search(data, head.start(2), end):
                break
            entry = lookup(self._hot, head.group(1).decode("ascii"))
            if entry is None:
                break
            write(b"".join((entry.wire, _date_line(), entry.body)))
            answered += 1
            start = end + 4
        if answered:
            manager: HotServer = self._manager  # type: ignore[assignment]
            manager.requests_count += answered
            manager.hot_answers += answered
            # What aiohttp does after each answer: keep the connection for keepalive_timeout.
            if self._keepalive_timeout > 0:
                close_time = self._loop.time() + self._keepalive_timeout
                self._next_keepalive_close_time = close_time
                if self._keepalive_handle is None:
                    self._keepalive_handle = self._loop.call_at(close_time, self._process_keepalive)
        return data[start:]


class HotServer(web.Server):
    """aiohttp's server with :class:`HotRequestHandler` for its connections."""

    hot: dict[str, HotFile]
    hot_answers: int
    """Requests answered below the parser (also counted in ``requests_count``)."""

    def __call__(self) -> web.RequestHandler:
        return HotRequestHandler(self, loop=self._loop, **self._kwargs)


class ShoalRunner(web.AppRunner):
    """An ``AppRunner`` whose server answers kept hot files before routing, and below the
    parser where aiohttp's connection handler is the one this module knows."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        if HOT_FILES not in self.app:
            return server
        server.request_handler = short_path(self.app, server.request_handler)
        if type(server) is web.Server and _knows_request_handler():
            # aiohttp builds the server; only the connection handler it makes changes.
            server.__class__ = HotServer
            server.hot = self.app[HOT_FILES]
            server.hot_answers = 0
        return server


_HANDLER_STATE = (
    "_waiter",
    "_messages",
    "_force_close",
    "_close",
    "_upgraded",
    "_buffer_paused",
    "_keepalive_timeout",
    "_next_keepalive_close_time",
    "_keepalive_handle",
    "_loop",
    "_manager",
)


def _knows_request_handler() -> bool:
    """Whether aiohttp's ``RequestHandler`` keeps the state the short path below the parser reads
    (private to aiohttp; checked so that another aiohttp version only loses the shortcut)."""
    slots: set[str] = set()
    for cls in web.RequestHandler.__mro__:
        slots.update(getattr(cls, "__slots__", ()))
    missing = [name for name in _HANDLER_STATE if name not in slots]
    if missing or not callable(getattr(web.RequestHandler, "_process_keepalive", None)):
        log.warning("hot files: this aiohttp lacks %s; kept answers go through the parser", missing)
        return False
    return True

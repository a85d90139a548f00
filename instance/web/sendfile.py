"""A lean sendfile response for stored media (HLS renditions, originals, torrents' web seeds).

aiohttp's ``FileResponse`` hands every request to a thread twice (stat + open, then close) and
probes for ``.gz``/``.br`` siblings; for a hot 2 MB segment those hops are a good part of the
cost. Files here are written once under new names on a local disk, so the caller's ``stat``
(already made to check the file) is reused and the file is opened, sent with ``sendfile(2)`` and
closed on the event loop. Semantics follow RFC 9110: a single byte range (206, or 416 with
``Content-Range: bytes */size``), ``If-Range`` with the ETag or the Last-Modified date,
``If-None-Match`` / ``If-Modified-Since`` (304), HEAD without a body.
"""

from __future__ import annotations

import os
from email.utils import formatdate
from pathlib import Path

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter

CHUNK = 256 * 1024


def etag_of(info: os.stat_result) -> str:
    """The same strong validator aiohttp's ``FileResponse`` and :mod:`instance.api.files` use."""
    return f'"{info.st_mtime_ns:x}-{info.st_size:x}"'


class SendfileResponse(web.StreamResponse):
    """Send ``path`` (whose ``os.stat`` result is ``info``) honouring Range and validators."""

    def __init__(self, path: Path, info: os.stat_result, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(headers=headers)
        self._path = path
        self._info = info

    def _not_modified(self, request: web.BaseRequest, etag: str) -> bool:
        if_none_match = request.headers.get(hdrs.IF_NONE_MATCH)
        if if_none_match is not None:
            tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
            return etag in tags or "*" in tags
        since = request.if_modified_since
        return since is not None and int(self._info.st_mtime) <= since.timestamp()

    def _range_applies(self, request: web.BaseRequest, etag: str) -> bool:
        if_range = request.headers.get(hdrs.IF_RANGE)
        if if_range is None:
            return True
        if if_range.startswith('"'):
            return if_range == etag
        date = request.if_range
        return date is not None and int(self._info.st_mtime) <= date.timestamp()

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        size = self._info.st_size
        etag = etag_of(self._info)
        self.headers[hdrs.ETAG] = etag
        self.headers[hdrs.LAST_MODIFIED] = formatdate(self._info.st_mtime, usegmt=True)
        self.headers[hdrs.ACCEPT_RANGES] = "bytes"
        if self._not_modified(request, etag):
            self.set_status(304)
            return await super().prepare(request)

        start, end = 0, size  # end exclusive
        if hdrs.RANGE in request.headers and self._range_applies(request, etag):
            try:
                wanted = request.http_range  # end exclusive; a suffix range has a negative start
            except ValueError:
                return await self._unsatisfiable(request, size)
            first, last = wanted.start, wanted.stop
            if first is None:
                return await self._unsatisfiable(request, size)
            if first < 0:
                first, last = max(0, size + first), size
            if last is None or last > size:
                last = size
            if first >= size or first >= last:
                return await self._unsatisfiable(request, size)
            start, end = first, last
            self.set_status(206)
            self.headers[hdrs.CONTENT_RANGE] = f"bytes {start}-{end - 1}/{size}"
        count = end - start
        self.content_length = count
        writer = await super().prepare(request)
        assert writer is not None
        if request.method == hdrs.METH_HEAD or count == 0:
            await super().write_eof()
            return writer
        transport = request.transport
        if transport is None:
            raise ConnectionResetError("Connection lost")
        with self._path.open("rb") as fobj:
            try:
                await request._loop.sendfile(transport, fobj, start, count)
            except NotImplementedError:  # e.g. TLS terminated by aiohttp itself
                fobj.seek(start)
                left = count
                while left:
                    chunk = fobj.read(min(CHUNK, left))
                    if not chunk:
                        break
                    await writer.write(chunk)
                    left -= len(chunk)
        await super().write_eof()
        return writer

    async def _unsatisfiable(self, request: web.BaseRequest, size: int) -> AbstractStreamWriter | None:
        self.set_status(416)
        self.headers[hdrs.CONTENT_RANGE] = f"bytes */{size}"
        self.content_length = 0
        return await super().prepare(request)

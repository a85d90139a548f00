"""Sending a stored file: sendfile for local storage (Range, ETag, Last-Modified), small files
from memory, nginx's ``X-Accel-Redirect`` when configured, or a redirect to S3 (its public URL,
or a presigned one for files only some may read)."""

from __future__ import annotations

import os
import re
import stat
from email.utils import formatdate
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from ..core import Shoal
from ..errors import NotFound
from ..storage import guess_content_type
from .hotfiles import from_file
from .sendfile import SendfileResponse

FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, ETag",
}


IMMUTABLE = "public, max-age=31536000, immutable"


PLAYLIST_CACHE = "public, max-age=30"


PRIVATE_CACHE = "private, max-age=600"


SMALL_FILE = 64 * 1024


SMALL_CACHE_ENTRIES = 2048


_SMALL_CACHE: dict[str, tuple[tuple[int, int], bytes, str, str]] = {}


def tokenize_playlist(text: str, token: str) -> str:
    """Append the file token to every URI of an HLS playlist (RFC 8216 URI lines and URI= attributes)."""
    suffix = "videoFileToken=" + quote(token, safe="")
    out = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            line = f"{line}{'&' if '?' in line else '?'}{suffix}"
        elif 'URI="' in line:
            line = re.sub(
                r'URI="([^"]+)"',
                lambda m: f'URI="{m.group(1)}{"&" if "?" in m.group(1) else "?"}{suffix}"',
                line,
            )
        out.append(line)
    return "\n".join(out) + "\n"


def _small_file(
    request: web.Request, path: Path, info: os.stat_result, headers: dict[str, str]
) -> web.Response:
    """A small file (a playlist, a manifest, a thumbnail) from memory.

    Stored files are written once under new names (a published video's playlists never change),
    so the bytes are kept per (path, size, mtime): a rewritten file has another mtime and is read
    again. Skipping the executor round trips of ``FileResponse`` makes these ~6× cheaper.
    """
    stamp = (info.st_size, info.st_mtime_ns)
    hit = _SMALL_CACHE.get(str(path))
    if hit is None or hit[0] != stamp:
        data = path.read_bytes()
        etag = f'"{info.st_mtime_ns:x}-{info.st_size:x}"'
        modified = formatdate(info.st_mtime, usegmt=True)
        if len(_SMALL_CACHE) >= SMALL_CACHE_ENTRIES:
            _SMALL_CACHE.pop(next(iter(_SMALL_CACHE)))
        hit = (stamp, data, etag, modified)
        _SMALL_CACHE[str(path)] = hit
    _, data, etag, modified = hit
    from_file(request, path, stamp)
    headers = {**headers, "ETag": etag, "Last-Modified": modified}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=data, headers=headers)


async def send_stored(
    request: web.Request,
    shoal: Shoal,
    key: str,
    *,
    cache: str,
    token: str | None,
    restricted: bool = False,
) -> web.StreamResponse:
    """Send a stored file. ``token`` (rewritten into playlists) or ``restricted`` (a file only
    some may read) keeps the answer out of shared caches and sends S3 files by presigned URL."""
    storage = shoal.storage
    content_type = guess_content_type(key)
    is_playlist = key.endswith(".m3u8")
    headers = {**CORS, "Cache-Control": cache}
    if restricted:
        headers["Cache-Control"] = PRIVATE_CACHE
        # nginx's proxy cache keys files by URL and token only: never keep an answer a cookie opened.
        headers["X-Accel-Expires"] = "0"
    local = storage.local_path(key)
    if local is not None:
        try:
            info = os.stat(local)
        except OSError:
            raise NotFound("No such file.", code="file_not_found") from None
        if not stat.S_ISREG(info.st_mode):
            raise NotFound("No such file.", code="file_not_found")
        if token is not None and is_playlist:
            text = tokenize_playlist(local.read_text(), token)
            return web.Response(text=text, content_type=content_type.split(";")[0], headers=headers)
        if info.st_size <= SMALL_FILE:
            # from memory, also behind nginx: its proxy cache keeps these answers a few seconds
            return _small_file(request, local, info, {**headers, "Content-Type": content_type})
        prefix = shoal.settings.accel_redirect_prefix
        if prefix is not None:
            # nginx sends the file from its `internal` location; we only decided who may see it.
            return web.Response(
                headers={**headers, "Content-Type": content_type, "X-Accel-Redirect": prefix + key}
            )
        return SendfileResponse(local, info, headers={**headers, "Content-Type": content_type})
    if token is not None and is_playlist:
        if await storage.stat(key) is None:
            raise NotFound("No such file.", code="file_not_found")
        data = await storage.open_range(key, 0, (await storage.stat(key)).size - 1)
        text = tokenize_playlist(data.decode(), token)
        return web.Response(text=text, content_type=content_type.split(";")[0], headers=headers)
    private = token is not None or restricted
    url = await storage.presigned_get_url(key, 600) if private else storage.public_url(key)
    if url is None:
        raise NotFound("No such file.", code="file_not_found")
    raise web.HTTPFound(url, headers=CORS)

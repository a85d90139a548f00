"""Serving stored files: HLS playlists and fragments, thumbnails, previews and storyboards.

Local storage is served with sendfile (Range, ETag, Last-Modified from aiohttp's
``FileResponse``); S3 storage is a redirect to the public URL, or to a presigned URL for
private videos. Private and internal videos need ``?videoFileToken=`` and their playlists
are rewritten so every URI carries it.
"""

from __future__ import annotations

import os
import re
import stat
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from ..core import Shoal
from ..errors import Forbidden, NotFound
from ..services.files import (
    check_file_token,
    file_access,
    image_owner,
    make_file_token,
    token_holder,
)
from ..services.remote_images import cache_remote_image
from ..services.videos import get_video_for
from ..services.visibility import Viewer
from ..storage import Storage, guess_content_type, keys
from . import api
from .hotfiles import from_file, offer
from .registry import current_user, iso, json_response, require_user, shoal_of
from .sendfile import SendfileResponse

REMOTE_IMAGE_RE = re.compile(r"^remote-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.jpg$")
FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, ETag",
}
IMMUTABLE = "public, max-age=31536000, immutable"
PLAYLIST_CACHE = "public, max-age=30"
PRIVATE_CACHE = "private, max-age=600"
LAZY_KINDS = keys.LAZY_STATIC
SMALL_FILE = 64 * 1024
SMALL_CACHE_ENTRIES = 2048
_SMALL_CACHE: dict[str, tuple[tuple[int, int], bytes, str, str]] = {}
"""Small stored files by path: ((size, mtime_ns), bytes, ETag, Last-Modified); at most 128 MiB."""
_LOCAL_PATHS: dict[tuple[int, str], Path | None] = {}


def _check_names(uuid: str, name: str) -> None:
    if not keys.UUID_RE.match(uuid) or not FILE_RE.match(name) or ".." in name:
        raise NotFound("No such file.", code="file_not_found")


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


def _local_path(storage: Storage, key: str) -> Path | None:
    """``storage.local_path(key)``, remembered: validating a key costs more than sending a playlist."""
    ident = (id(storage), key)
    try:
        return _LOCAL_PATHS[ident]
    except KeyError:
        pass
    if len(_LOCAL_PATHS) >= 20_000:
        _LOCAL_PATHS.clear()
    path = _LOCAL_PATHS[ident] = storage.local_path(key)
    return path


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


async def _send(
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
    local = _local_path(storage, key)
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


async def _serve_hls(request: web.Request, *, private_path: bool) -> web.StreamResponse:
    shoal = shoal_of(request)
    uuid, name = request.match_info["uuid"], request.match_info["file"]
    _check_names(uuid, name)
    access = await file_access(shoal, uuid)
    if access is None or not access.published:
        raise NotFound("No such file.", code="file_not_found")
    token = None
    if access.needs_token:
        token = request.query.get("videoFileToken")
        if not token:
            raise Forbidden("This video's files need a videoFileToken.", code="file_token_required")
        holder = check_file_token(shoal.secret, uuid, token)
        if holder is None:
            raise Forbidden(
                "The videoFileToken is invalid, expired or for another video.", code="invalid_file_token"
            )
        viewer = await token_holder(shoal, holder)
        if viewer is None or not access.opens_for(viewer):
            raise Forbidden(
                "The videoFileToken's holder may no longer watch this video.", code="file_token_revoked"
            )
    if token is not None:
        cache = PRIVATE_CACHE
    else:
        cache = PLAYLIST_CACHE if name.endswith((".m3u8", ".json")) else IMMUTABLE
        offer(request, shoal, uuid)
    return await _send(request, shoal, keys.hls(uuid, name), cache=cache, token=token)


async def media_restricted(request: web.Request, shoal: Shoal, video_uuid: str | None) -> bool:
    """Check that the caller may see the images (thumbnail, preview, storyboard) of a local video.

    Those of a public, published video are anyone's (False: shared caches may keep them). Those
    of any other video open, by the rule of the video itself, for the logged-in caller (session
    cookie or bearer token, as a page's ``<img>`` sends them) or the holder of a videoFileToken
    who may watch it (True: the answer is private); anyone else gets 404, like a missing file.
    """
    access = await file_access(shoal, video_uuid) if video_uuid is not None else None
    if access is None:
        raise NotFound("No such file.", code="file_not_found")
    if access.published and not access.needs_token:
        return False
    user = current_user(request)
    if user is not None and access.opens_for(Viewer.of(user)):
        return True
    holder = check_file_token(shoal.secret, access.uuid, request.query.get("videoFileToken"))
    if holder is not None:
        viewer = await token_holder(shoal, holder)
        if viewer is not None and access.opens_for(viewer):
            return True
    raise NotFound("No such file.", code="file_not_found")


@api.route(
    "GET", "/static/streaming-playlists/hls/{uuid}/{file}", summary="An HLS file of a video", tags=("static",)
)
async def get_hls_file(request: web.Request) -> web.StreamResponse:
    """Playlists, fragmented MP4 renditions (Range requests) and the segments SHA-256 manifest."""
    return await _serve_hls(request, private_path=False)


@api.route(
    "GET",
    "/static/streaming-playlists/hls/private/{uuid}/{file}",
    summary="An HLS file of a private or internal video (needs videoFileToken)",
    tags=("static",),
)
async def get_private_hls_file(request: web.Request) -> web.StreamResponse:
    """PeerTube's path for private files; the token decides, as on the public path."""
    return await _serve_hls(request, private_path=True)


@api.route(
    "OPTIONS",
    "/static/streaming-playlists/hls/{tail:.*}",
    summary="CORS preflight for HLS files",
    tags=("static",),
)
async def options_hls(request: web.Request) -> web.Response:
    """Players on other origins may send Range: allow it."""
    return web.Response(
        status=204,
        headers={
            **CORS,
            "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
            "Access-Control-Allow-Headers": "Range",
            "Access-Control-Max-Age": "86400",
        },
    )


@api.route(
    "GET",
    "/lazy-static/{kind}/{file}",
    summary="Thumbnails, previews, storyboards and torrents",
    tags=("static",),
)
async def get_lazy_static(request: web.Request) -> web.StreamResponse:
    """Images and torrents of local videos, straight from storage."""
    kind, name = request.match_info["kind"], request.match_info["file"]
    if kind not in LAZY_KINDS or not FILE_RE.match(name):
        raise NotFound("No such file.", code="file_not_found")
    shoal = shoal_of(request)
    remote = REMOTE_IMAGE_RE.match(name)
    restricted = False
    if remote is not None and kind in (keys.THUMBNAILS, keys.PREVIEWS):
        if await cache_remote_image(shoal, kind, remote.group(1)) is None:
            raise NotFound("No such file.", code="file_not_found")
    elif kind in (keys.THUMBNAILS, keys.PREVIEWS):
        restricted = await media_restricted(request, shoal, await image_owner(shoal, name))
    key = keys.lazy_static(kind, name)
    return await _send(request, shoal, key, cache=IMMUTABLE, token=None, restricted=restricted)


@api.route(
    "GET",
    "/lazy-static/storyboards/{uuid}/{file}",
    summary="A video's storyboard sprites and their WebVTT track",
    tags=("static",),
)
async def get_storyboard(request: web.Request) -> web.StreamResponse:
    """``storyboards/<uuid>/<file>`` in storage, under the rule of the video's images."""
    uuid, name = request.match_info["uuid"], request.match_info["file"]
    _check_names(uuid, name)
    shoal = shoal_of(request)
    restricted = await media_restricted(request, shoal, uuid)
    return await _send(
        request, shoal, keys.storyboards(uuid, name), cache=IMMUTABLE, token=None, restricted=restricted
    )


@api.route(
    "POST",
    "/api/v1/videos/{id}/token",
    summary="A token opening a private or internal video's files",
    auth="user",
    tags=("videos",),
)
async def create_file_token(request: web.Request) -> web.Response:
    """PeerTube's shape: ``{files: {token, expires}}``; whoever may see the video may get one,
    bound to them: it stops opening the files when they may no longer watch the video."""
    shoal = shoal_of(request)
    user = require_user(request)
    async with shoal.db.read() as session:
        video = await get_video_for(shoal, session, request.match_info["id"], user)
    token, expires = make_file_token(shoal.secret, video.uuid, user.id, shoal.settings.file_token_ttl)
    return json_response({"files": {"token": token, "expires": iso(datetime.fromtimestamp(expires, UTC))}})

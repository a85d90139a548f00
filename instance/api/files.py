"""Serving stored files: HLS playlists and fragments, thumbnails, previews and storyboards.

Local storage is served with sendfile (Range, ETag, Last-Modified from aiohttp's
``FileResponse``); S3 storage is a redirect to the public URL, or to a presigned URL for
private videos. Private and internal videos need ``?videoFileToken=`` and their playlists
are rewritten so every URI carries it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from aiohttp import web

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
from ..storage import keys
from ..web.access import media_restricted, torrent_restricted
from ..web.context import require_user, shoal_of
from ..web.hotfiles import offer
from ..web.responses import iso, json_response
from ..web.sending import CORS, FILE_RE, IMMUTABLE, PLAYLIST_CACHE, PRIVATE_CACHE, send_stored
from . import api

REMOTE_IMAGE_RE = re.compile(r"^remote-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.jpg$")
"""A rendition's torrent, ``<prefix>-<res>-hls.torrent`` (``p2p.torrents.torrent_file_name``)."""
LAZY_KINDS = keys.LAZY_STATIC
"""Small stored files by path: ((size, mtime_ns), bytes, ETag, Last-Modified); at most 128 MiB."""


def _check_names(uuid: str, name: str) -> None:
    if not keys.UUID_RE.match(uuid) or not FILE_RE.match(name) or ".." in name:
        raise NotFound("No such file.", code="file_not_found")


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
    return await send_stored(request, shoal, keys.hls(uuid, name), cache=cache, token=token)


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
    """Images and torrents of local videos, straight from storage, under the rule of their video."""
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
    else:
        restricted = await torrent_restricted(request, shoal, name)
    return await send_stored(
        request, shoal, keys.lazy_static(kind, name), cache=IMMUTABLE, token=None, restricted=restricted
    )


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
    return await send_stored(
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

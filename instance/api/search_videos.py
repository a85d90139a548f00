"""Routes: ``GET /api/v1/search/videos`` — words in local and known videos, or a video URL.

A ``search`` that is a video's URL (ours, or another instance's) answers that one video;
logged-in users may make the instance fetch a remote video it does not know yet (through
the ``resolve_video_url`` port, which federation answers), anonymous callers only find known ones —
PeerTube's defaults (``search.remote_uri.users: true``, ``anonymous: false``).
"""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import Field

from ..core import Shoal
from ..models import User
from ..services import search as search_service
from ..services.video_lists import Page
from ..services.videos import get_video_for, reading
from ..web.context import current_user, shoal_of
from ..web.responses import json_response
from . import api, serializers
from .registry import QUERY
from .videos import Pagination, Text

log = logging.getLogger("shoal.search")

class VideoSearchQuery(Pagination):
    """``search``: words, or a video URL."""

    search: Annotated[Text, Field(min_length=1, max_length=2000)]


def _is_url(text: str) -> bool:
    parts = urlsplit(text.strip())
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _local_ident(shoal: Shoal, url: str) -> str | None:
    base = shoal.settings.public_url.rstrip("/") + "/"
    if not url.startswith(base):
        return None
    path = urlsplit(url).path
    for prefix in ("/videos/watch/", "/w/"):
        if path.startswith(prefix):
            return path.removeprefix(prefix).split("/")[0] or None
    return None


async def find_by_url(shoal: Shoal, url: str, user: User | None) -> Page:
    """The video ``url`` names (fetched first when remote, unknown and the caller is a user)."""
    from sqlalchemy import select

    from ..errors import ApiError
    from ..models import Video

    url = url.strip()
    ident = _local_ident(shoal, url)
    if ident is None:
        async with reading(shoal) as session:
            known = await session.scalar(select(Video.uuid).where(Video.remote_url == url))
        resolve = shoal.ext.resolve_video_url
        if known is None and user is not None and resolve is not None:
            try:
                await resolve(shoal, url)
            except Exception as exc:
                log.info("video %s not resolved: %s", url[:200], exc)
            async with reading(shoal) as session:
                known = await session.scalar(select(Video.uuid).where(Video.remote_url == url))
        if known is None:
            return Page(0, [])
        ident = known
    try:
        async with reading(shoal) as session:
            video = await get_video_for(shoal, session, ident, user)
    except ApiError:
        return Page(0, [])
    return Page(1, [video])


@api.route(
    "GET",
    "/api/v1/search/videos",
    summary="Search videos (words, or a video URL)",
    auth="optional",
    query=VideoSearchQuery,
    tags=("search",),
)
async def search_videos(request: web.Request) -> web.Response:
    """Videos matching every word of ``search``; or, for a URL, that video (fetched if remote)."""
    shoal, query, user = shoal_of(request), request[QUERY], current_user(request)
    if _is_url(query.search):
        page = await find_by_url(shoal, query.search, user)
    else:
        page = await search_service.search_videos(
            shoal, user, query.search, start=query.start, count=query.count
        )
    return json_response(serializers.page([serializers.video(shoal, v) for v in page.data], page.total))

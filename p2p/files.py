"""``/download/torrents/<file>``: a rendition's .torrent as an attachment."""

from __future__ import annotations

from aiohttp import web

from instance.api.files import FILE_RE
from instance.api.registry import SHOAL
from instance.errors import NotFound


async def download_torrent(request: web.Request) -> web.Response:
    """The .torrent from storage with ``Content-Disposition: attachment`` (any storage backend)."""
    shoal = request.app[SHOAL]
    name = request.match_info["file"]
    if not FILE_RE.match(name) or not name.endswith(".torrent"):
        raise NotFound("No such file.", code="file_not_found")
    key = f"torrents/{name}"
    info = await shoal.storage.stat(key)
    if info is None:
        raise NotFound("No such file.", code="file_not_found")
    data = await shoal.storage.open_range(key, 0, info.size - 1)
    return web.Response(
        body=data,
        content_type="application/x-bittorrent",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Access-Control-Allow-Origin": "*",
            "Cache-Control": "public, max-age=3600",
        },
    )

"""``/download/torrents/<file>``: a rendition's .torrent as an attachment."""

from __future__ import annotations

from aiohttp import web

from instance.errors import NotFound
from instance.storage import keys
from instance.web.access import torrent_restricted
from instance.web.context import SHOAL
from instance.web.sending import FILE_RE, PRIVATE_CACHE


async def download_torrent(request: web.Request) -> web.Response:
    """The .torrent from storage with ``Content-Disposition: attachment`` (any storage backend),
    under the rule of its video, as on ``/lazy-static/torrents/``."""
    shoal = request.app[SHOAL]
    name = request.match_info["file"]
    if not FILE_RE.match(name) or not name.endswith(".torrent"):
        raise NotFound("No such file.", code="file_not_found")
    restricted = await torrent_restricted(request, shoal, name)
    key = keys.torrent(name)
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
            "Cache-Control": PRIVATE_CACHE if restricted else "public, max-age=3600",
            **({"X-Accel-Expires": "0"} if restricted else {}),
        },
    )

"""oEmbed (https://oembed.com) for watch pages, so chat apps and Mastodon show a rich preview."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from aiohttp import web

from instance.api.serializers import video_details
from instance.errors import BadRequest, NotFound
from instance.services import videos
from instance.web.context import shoal_of
from instance.web.responses import json_response

routes = web.RouteTableDef()
WATCH_PATH = re.compile(r"^/(?:w|videos/watch|videos/embed)/([0-9A-Za-z-]{1,40})$")
DEFAULT_WIDTH, DEFAULT_HEIGHT = 560, 315


def _size(value: str | None, default: int) -> int:
    try:
        return max(50, min(4000, int(value))) if value else default
    except ValueError:
        return default


@routes.get("/services/oembed")
async def get_oembed(request: web.Request) -> web.Response:
    """``?url=<watch URL>[&maxwidth=&maxheight=]`` → a ``video`` oEmbed document (JSON only)."""
    shoal = shoal_of(request)
    if request.query.get("format", "json") != "json":
        raise web.HTTPNotImplemented(text="Only the json format is offered.")
    url = request.query.get("url", "")
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    match = WATCH_PATH.match(parts.path)
    if origin.lower() != shoal.settings.public_url.lower() or match is None:
        raise BadRequest("url must be a watch page of this instance.", code="invalid_field", field="url")
    try:
        view = await videos.video_details(shoal, match.group(1), None)
    except BadRequest as exc:
        raise NotFound("No such video.", code="video_not_found") from exc
    details = video_details(shoal, view)
    width = min(DEFAULT_WIDTH, _size(request.query.get("maxwidth"), DEFAULT_WIDTH))
    height = min(DEFAULT_HEIGHT, _size(request.query.get("maxheight"), DEFAULT_HEIGHT))
    embed = shoal.url(details["embedPath"])
    # The html is ours: the title goes in an attribute, escaped.
    from markupsafe import escape

    html = (
        f'<iframe width="{width}" height="{height}" sandbox="allow-same-origin allow-scripts allow-popups" '
        f'title="{escape(details["name"])}" src="{escape(embed)}" frameborder="0" allowfullscreen></iframe>'
    )
    data = {
        "type": "video",
        "version": "1.0",
        "title": details["name"],
        "author_name": details["channel"]["displayName"],
        "author_url": shoal.url(f"/c/{details['channel']['name']}"),
        "provider_name": shoal.settings.instance_name,
        "provider_url": shoal.settings.public_url,
        "html": html,
        "width": width,
        "height": height,
    }
    thumb = details.get("previewPath") or details.get("thumbnailPath")
    if thumb:
        data.update({"thumbnail_url": shoal.url(thumb), "thumbnail_width": 850, "thumbnail_height": 480})
    return json_response(data)


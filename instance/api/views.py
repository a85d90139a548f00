"""Route: ``POST /api/v1/videos/{id}/views`` — the player reports a view (PeerTube's endpoint)."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from ..services import p2p_stats, views
from ..web.context import client_ip, current_user, shoal_of
from ..web.responses import no_content
from ..web.validation import Body
from . import api
from .registry import BODY


class ViewBody(Body):
    """PeerTube's body (the position is accepted and not stored), plus what this player received
    since its previous report: bytes over HTTP and bytes from other viewers (P2P)."""

    current_time: float | None = Field(None, ge=0)
    view_event: str | None = Field(None, max_length=20)
    session_id: str | None = Field(None, max_length=100)
    http_bytes: int = Field(0, ge=0, le=p2p_stats.MAX_REPORT_BYTES)
    peer_bytes: int = Field(0, ge=0, le=p2p_stats.MAX_REPORT_BYTES)


@api.route(
    "POST",
    "/api/v1/videos/{id}/views",
    summary="Report a view of a video (counted once per viewer per window)",
    body=ViewBody,
    tags=("videos",),
)
async def post_view(request: web.Request) -> web.Response:
    """Answers 204 whether or not the view counted (a repeat within the window does not); the
    byte counts of a video the viewer may watch go to the instance's P2P totals either way."""
    shoal, body = shoal_of(request), request[BODY]
    await views.count_view(shoal, request.match_info["id"], current_user(request), client_ip(request))
    await p2p_stats.add_bytes(shoal, body.http_bytes, body.peer_bytes)
    return no_content()

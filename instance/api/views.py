"""Route: ``POST /api/v1/videos/{id}/views`` — the player reports a view (PeerTube's endpoint)."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from ..services import views
from . import api
from .registry import Body, client_ip, current_user, no_content, shoal_of


class ViewBody(Body):
    """PeerTube's body; the position is accepted and not stored."""

    current_time: float | None = Field(None, ge=0)
    view_event: str | None = Field(None, max_length=20)
    session_id: str | None = Field(None, max_length=100)


@api.route(
    "POST",
    "/api/v1/videos/{id}/views",
    summary="Report a view of a video (counted once per viewer per window)",
    body=ViewBody,
    tags=("videos",),
)
async def post_view(request: web.Request) -> web.Response:
    """Answers 204 whether or not the view counted (a repeat within the window does not)."""
    await views.count_view(
        shoal_of(request), request.match_info["id"], current_user(request), client_ip(request)
    )
    return no_content()

"""Routes: liking and disliking videos (PeerTube's ``/videos/{id}/rate``)."""

from __future__ import annotations

from typing import Literal

from aiohttp import web

from ..services import ratings as rating_service
from ..web.context import require_user, shoal_of
from ..web.responses import json_response, no_content
from ..web.validation import Body
from . import api
from .registry import BODY
from .videos import NO_CONTENT


class RateBody(Body):
    """The caller's new rating."""

    rating: Literal["like", "dislike", "none"]


@api.route(
    "PUT",
    "/api/v1/videos/{id}/rate",
    summary="Like or dislike a video",
    auth="user",
    body=RateBody,
    tags=("videos",),
    responses=NO_CONTENT,
)
async def rate(request: web.Request) -> web.Response:
    """Set (or with ``none`` clear) the caller's rating; the video's counts follow. Answers 204."""
    await rating_service.rate_video(
        shoal_of(request), request.match_info["id"], require_user(request), request[BODY].rating
    )
    return no_content()


@api.route(
    "GET",
    "/api/v1/users/me/videos/{id}/rating",
    summary="Get my rating of a video",
    auth="user",
    tags=("videos",),
)
async def my_rating(request: web.Request) -> web.Response:
    """``{videoId, rating}`` with ``rating`` like, dislike or none."""
    video_id, rating = await rating_service.my_rating(
        shoal_of(request), request.match_info["id"], require_user(request)
    )
    return json_response({"videoId": video_id, "rating": rating})

"""Routes: accounts (PeerTube's ``/accounts``): profiles, their channels and their videos.

``{name}`` is ``name`` or ``name@host``; an unknown one is 404 ``account_not_found``.
"""

from __future__ import annotations

from aiohttp import web

from ..services import channels as channel_service
from ..web.context import current_user, shoal_of
from ..web.responses import json_response
from . import api, serializers
from .channels import ActorListQuery, channel_page
from .registry import QUERY
from .videos import VideoListQuery, video_page


@api.route("GET", "/api/v1/accounts", summary="List accounts", query=ActorListQuery, tags=("accounts",))
async def list_accounts(request: web.Request) -> web.Response:
    """Every account this instance knows, local and remote."""
    query = request[QUERY]
    shoal = shoal_of(request)
    page = await channel_service.list_accounts(shoal, start=query.start, count=query.count, sort=query.sort)
    items = [serializers.account(shoal, actor, page.stats) for actor in page.data]
    return json_response(serializers.page(items, page.total))


@api.route("GET", "/api/v1/accounts/{name}", summary="Get an account", tags=("accounts",))
async def get_account(request: web.Request) -> web.Response:
    """PeerTube's Account."""
    shoal = shoal_of(request)
    view = await channel_service.account_view(shoal, request.match_info["name"])
    return json_response(serializers.account(shoal, view.actor, view.stats))


@api.route(
    "GET",
    "/api/v1/accounts/{name}/videos",
    summary="List an account's videos",
    query=VideoListQuery,
    tags=("accounts", "videos"),
)
async def list_account_videos(request: web.Request) -> web.Response:
    """Videos of all the account's channels that the caller may list; the account's own user
    may filter on every privacy and state."""
    page = await channel_service.list_account_videos(
        shoal_of(request), request.match_info["name"], current_user(request), request[QUERY].filters()
    )
    return video_page(request, page)


@api.route(
    "GET",
    "/api/v1/accounts/{name}/video-channels",
    summary="List an account's channels",
    query=ActorListQuery,
    tags=("accounts", "channels"),
)
async def list_account_channels(request: web.Request) -> web.Response:
    """The channels the account owns."""
    query = request[QUERY]
    page = await channel_service.list_account_channels(
        shoal_of(request), request.match_info["name"], start=query.start, count=query.count, sort=query.sort
    )
    return channel_page(request, page)

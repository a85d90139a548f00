"""Routes: finding channels by handle or URL, here or on another instance (PeerTube's search)."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import Field

from ..services import subscriptions as subscription_service
from ..web.context import shoal_of
from . import api
from .channels import channel_page
from .registry import QUERY
from .videos import Pagination, Text


class ChannelSearchQuery(Pagination):
    """``search``: a channel handle (``name@host``) or URL."""

    search: Annotated[Text, Field(min_length=1, max_length=400)]


@api.route(
    "GET",
    "/api/v1/search/video-channels",
    summary="Search channels (a handle or URL resolves a remote one)",
    auth="optional",
    query=ChannelSearchQuery,
    tags=("search",),
)
async def search_channels(request: web.Request) -> web.Response:
    """A handle or URL finds that channel (resolved from its instance when remote); other
    words match the names of the channels this instance knows."""
    query = request[QUERY]
    page = await subscription_service.search_channels(
        shoal_of(request), query.search, start=query.start, count=query.count
    )
    return channel_page(request, page)

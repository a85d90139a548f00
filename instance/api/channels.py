"""Routes: video channels (PeerTube's ``/video-channels``).

``{handle}`` is ``name`` or ``name@host``. Anyone may read; a logged-in user creates
channels for their account; only the owner or an admin edits or deletes one, and an
account's last channel cannot be deleted (409 ``last_channel``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from aiohttp import web
from pydantic import Field

from ..services import channels as channel_service
from ..services.channels import ACTOR_SORTS, ActorPage
from ..web.context import current_user, require_user, shoal_of
from ..web.responses import json_response, no_content
from ..web.validation import Body
from . import api, serializers
from .registry import BODY, QUERY
from .videos import NO_CONTENT, Pagination, Text, VideoListQuery, video_page


class ActorListQuery(Pagination):
    """Pagination and sort of channel and account lists."""

    sort: Literal[ACTOR_SORTS] = "-createdAt"


class ChannelCreate(Body):
    """PeerTube's channel creation."""

    name: Annotated[Text, Field(min_length=1, max_length=50)]
    display_name: Annotated[Text, Field(min_length=1, max_length=120)]
    description: Annotated[Text, Field(max_length=1000)] | None = None
    support: Annotated[Text, Field(max_length=1000)] | None = None


class ChannelUpdate(Body):
    """PeerTube's channel update; only the fields sent change."""

    display_name: Annotated[Text, Field(min_length=1, max_length=120)] | None = None
    description: Annotated[Text, Field(max_length=1000)] | None = None
    support: Annotated[Text, Field(max_length=1000)] | None = None
    bulk_videos_support_update: bool | None = None


def channel_page(request: web.Request, page: ActorPage) -> web.Response:
    """A list of channels in PeerTube's envelope."""
    shoal = shoal_of(request)
    items = [serializers.channel(shoal, channel, page.stats) for channel in page.data]
    return json_response(serializers.page(items, page.total))


@api.route("GET", "/api/v1/video-channels", summary="List channels", query=ActorListQuery, tags=("channels",))
async def list_channels(request: web.Request) -> web.Response:
    """Every channel this instance knows, local and remote."""
    query = request[QUERY]
    page = await channel_service.list_channels(
        shoal_of(request), start=query.start, count=query.count, sort=query.sort
    )
    return channel_page(request, page)


@api.route(
    "POST",
    "/api/v1/video-channels",
    summary="Create a channel",
    auth="user",
    body=ChannelCreate,
    tags=("channels",),
)
async def create_channel(request: web.Request) -> web.Response:
    """A new channel for the caller's account; its name is unique among local accounts and channels."""
    body = request[BODY]
    channel = await channel_service.create_channel(
        shoal_of(request),
        require_user(request),
        name=body.name,
        display_name=body.display_name,
        description=body.description,
        support=body.support,
    )
    return json_response({"videoChannel": {"id": channel.id}})


@api.route("GET", "/api/v1/video-channels/{handle}", summary="Get a channel", tags=("channels",))
async def get_channel(request: web.Request) -> web.Response:
    """PeerTube's VideoChannel, with its owner account."""
    shoal = shoal_of(request)
    view = await channel_service.channel_view(shoal, request.match_info["handle"])
    return json_response(serializers.channel(shoal, view.actor, view.stats))


@api.route(
    "PUT",
    "/api/v1/video-channels/{handle}",
    summary="Update a channel",
    auth="user",
    body=ChannelUpdate,
    tags=("channels",),
    responses=NO_CONTENT,
)
async def update_channel(request: web.Request) -> web.Response:
    """Owner or admin; answers 204."""
    changes = request[BODY].model_dump(exclude_unset=True)
    await channel_service.update_channel(
        shoal_of(request), request.match_info["handle"], require_user(request), changes
    )
    return no_content()


@api.route(
    "DELETE",
    "/api/v1/video-channels/{handle}",
    summary="Delete a channel",
    auth="user",
    tags=("channels",),
    responses=NO_CONTENT,
)
async def delete_channel(request: web.Request) -> web.Response:
    """Owner or admin; deletes the channel's videos and their files too. 409 for a last channel."""
    await channel_service.delete_channel(
        shoal_of(request), request.match_info["handle"], require_user(request)
    )
    return no_content()


@api.route(
    "GET",
    "/api/v1/video-channels/{handle}/videos",
    summary="List a channel's videos",
    query=VideoListQuery,
    tags=("channels", "videos"),
)
async def list_channel_videos(request: web.Request) -> web.Response:
    """The channel's videos the caller may list; its owner may filter on every privacy and state."""
    page = await channel_service.list_channel_videos(
        shoal_of(request), request.match_info["handle"], current_user(request), request[QUERY].filters()
    )
    return video_page(request, page)

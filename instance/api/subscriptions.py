"""Routes: the caller's subscriptions to channels (PeerTube's ``/users/me/subscriptions``).

A remote channel (``name@host`` or its URL) is followed through federation: the
subscription is pending until its instance answers Accept.
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import Field

from ..services import subscriptions as subscription_service
from ..web.context import require_user, shoal_of
from ..web.responses import json_response, no_content
from ..web.validation import Body, Query
from . import api, serializers
from .channels import ActorListQuery, channel_page
from .registry import BODY, QUERY
from .videos import NO_CONTENT, Text, VideoListQuery, video_page


class SubscribeBody(Body):
    """The channel to follow, as ``name@host`` or its URL."""

    uri: Annotated[Text, Field(min_length=1, max_length=400)]


class ExistQuery(Query):
    """The handles to check, repeated or comma-separated."""

    uris: list[Annotated[Text, Field(max_length=400)]] = Field(min_length=1)


@api.route(
    "GET",
    "/api/v1/users/me/subscriptions",
    summary="List my subscriptions",
    auth="user",
    query=ActorListQuery,
    tags=("subscriptions",),
)
async def list_subscriptions(request: web.Request) -> web.Response:
    """The channels the caller follows, as PeerTube's VideoChannel list."""
    query = request[QUERY]
    page = await subscription_service.list_subscriptions(
        shoal_of(request), require_user(request), start=query.start, count=query.count, sort=query.sort
    )
    return channel_page(request, page)


@api.route(
    "POST",
    "/api/v1/users/me/subscriptions",
    summary="Subscribe to a channel",
    auth="user",
    body=SubscribeBody,
    tags=("subscriptions",),
    responses=NO_CONTENT,
)
async def subscribe(request: web.Request) -> web.Response:
    """Follow a channel: a local one at once, a remote one once it accepts; idempotent. Answers 204."""
    await subscription_service.subscribe(shoal_of(request), require_user(request), request[BODY].uri)
    return no_content()


@api.route(
    "GET",
    "/api/v1/users/me/subscriptions/exist",
    summary="Whether I follow some channels",
    auth="user",
    query=ExistQuery,
    tags=("subscriptions",),
)
async def subscriptions_exist(request: web.Request) -> web.Response:
    """``{"name@host": true|false, …}`` for each handle asked."""
    exist = await subscription_service.subscriptions_exist(
        shoal_of(request), require_user(request), request[QUERY].uris
    )
    return json_response(exist)


@api.route(
    "GET",
    "/api/v1/users/me/subscriptions/videos",
    summary="Videos of my subscriptions",
    auth="user",
    query=VideoListQuery,
    tags=("subscriptions", "videos"),
)
async def subscription_videos(request: web.Request) -> web.Response:
    """Videos of the channels the caller follows, newest first by default."""
    page = await subscription_service.subscription_videos(
        shoal_of(request), require_user(request), request[QUERY].filters()
    )
    return video_page(request, page)


@api.route(
    "GET",
    "/api/v1/users/me/subscriptions/{handle}",
    summary="Get one of my subscriptions",
    auth="user",
    tags=("subscriptions",),
)
async def get_subscription(request: web.Request) -> web.Response:
    """The followed channel; 404 ``subscription_not_found`` when the caller does not follow it."""
    shoal = shoal_of(request)
    view = await subscription_service.get_subscription(
        shoal, require_user(request), request.match_info["handle"]
    )
    return json_response(serializers.channel(shoal, view.actor, view.stats))


@api.route(
    "DELETE",
    "/api/v1/users/me/subscriptions/{handle}",
    summary="Unsubscribe from a channel",
    auth="user",
    tags=("subscriptions",),
    responses=NO_CONTENT,
)
async def unsubscribe(request: web.Request) -> web.Response:
    """Stop following a channel; 404 ``subscription_not_found`` when not subscribed. Answers 204."""
    await subscription_service.unsubscribe(
        shoal_of(request), require_user(request), request.match_info["handle"]
    )
    return no_content()

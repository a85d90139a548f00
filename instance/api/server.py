"""Routes: follows between instances (PeerTube's ``/server/following`` and ``/server/followers``).

Following an instance means this instance's Application actor follows the other one's
(``peertube@host``); the other instance then sends us all its public videos.
"""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import Field

from ..core import Shoal
from ..models import Actor, Follow
from ..services import subscriptions as subscription_service
from ..web.context import shoal_of
from ..web.responses import iso, json_response, no_content
from ..web.validation import Body
from . import api, serializers
from .registry import BODY, QUERY
from .videos import NO_CONTENT, Pagination, Text


class FollowHostsBody(Body):
    """Hosts (or ``peertube@host`` handles) whose instance to follow."""

    hosts: list[Annotated[Text, Field(min_length=1, max_length=300)]] = Field(
        default_factory=list, max_length=20
    )
    handles: list[Annotated[Text, Field(min_length=1, max_length=300)]] = Field(
        default_factory=list, max_length=20
    )


def _actor(shoal: Shoal, actor: Actor) -> dict[str, Any]:
    return {
        "id": actor.id,
        "url": actor.ap_id,
        "name": actor.preferred_username,
        "host": actor.host or shoal.settings.public_host,
        "createdAt": iso(actor.created_at),
        "updatedAt": iso(actor.updated_at),
    }


def follow_json(shoal: Shoal, follow: Follow) -> dict[str, Any]:
    """PeerTube's ``ActorFollow``."""
    return {
        "id": follow.id,
        "follower": _actor(shoal, follow.follower),
        "following": _actor(shoal, follow.target),
        "state": follow.state,
        "score": 1000,
        "createdAt": iso(follow.created_at),
        "updatedAt": iso(follow.updated_at),
    }


async def _page(request: web.Request, direction: str) -> web.Response:
    shoal = shoal_of(request)
    query = request[QUERY]
    total, rows = await subscription_service.instance_follows(
        shoal, direction, start=query.start, count=query.count
    )
    return json_response(serializers.page([follow_json(shoal, row) for row in rows], total))


@api.route(
    "GET",
    "/api/v1/server/following",
    summary="List the instances this instance follows",
    auth="none",
    query=Pagination,
    tags=("instance follows",),
)
async def list_following(request: web.Request) -> web.Response:
    """Follows of this instance's Application actor, pending and accepted, newest first."""
    return await _page(request, "following")


@api.route(
    "POST",
    "/api/v1/server/following",
    summary="Follow instances",
    auth="admin",
    body=FollowHostsBody,
    tags=("instance follows",),
    responses=NO_CONTENT,
)
async def follow_instances(request: web.Request) -> web.Response:
    """Send a Follow from this instance to each host's Application actor. Answers 204."""
    body = request[BODY]
    await subscription_service.follow_instances(shoal_of(request), [*body.hosts, *body.handles])
    return no_content()


@api.route(
    "DELETE",
    "/api/v1/server/following/{host}",
    summary="Stop following an instance",
    auth="admin",
    tags=("instance follows",),
    responses=NO_CONTENT,
)
async def unfollow_instance(request: web.Request) -> web.Response:
    """Undo the follow of ``host``; 404 ``follow_not_found`` when not following it. Answers 204."""
    await subscription_service.unfollow_instance(shoal_of(request), request.match_info["host"])
    return no_content()


@api.route(
    "GET",
    "/api/v1/server/followers",
    summary="List the instances following this instance",
    auth="none",
    query=Pagination,
    tags=("instance follows",),
)
async def list_followers(request: web.Request) -> web.Response:
    """Actors following this instance's Application actor, newest first."""
    return await _page(request, "followers")

"""Subscriptions: a user's account following channels, and the videos of those channels.

A subscription is a :class:`Follow` from the user's account to a channel. Local channels
are followed at once (``accepted``); a remote channel (``name@host`` or its URL) is
resolved and followed through the ``remote_actors`` port, which the federation package answers: the
follow stays ``pending`` until the channel's instance answers Accept. Without federation
a remote channel answers 400 ``remote_not_supported``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, or_, select

from ..core import Shoal
from ..errors import BadRequest, NotFound
from ..models import Actor, ActorKind, Follow, FollowState, User, Video
from .channels import (
    ActorPage,
    ActorView,
    actor_stats,
    find_actor,
    get_channel,
    page_of_actors,
    parse_handle,
)
from .video_lists import Page, VideoFilters, list_videos
from .videos import reading

MAX_EXIST_URIS = 100


@dataclass(frozen=True)
class RemoteActors:
    """What the federation package lends the core to reach other instances.

    Each function raises :mod:`instance.errors` exceptions (400/404) for the user to read.
    ``resolve(shoal, uri)`` turns ``name@host`` or an actor URL into a stored actor;
    ``follow``/``unfollow(shoal, follower, target)`` send Follow / Undo Follow;
    ``follow_instance``/``unfollow_instance(shoal, host)`` make the Application actor follow
    (or stop following) another instance; ``instance_follows(shoal, direction, start,
    count)`` pages the instance's follows (``following`` or ``followers``).
    """

    resolve: Callable[[Shoal, str], Awaitable[Actor]]
    follow: Callable[[Shoal, Actor, Actor], Awaitable[Any]]
    unfollow: Callable[[Shoal, Actor, Actor], Awaitable[Any]]
    follow_instance: Callable[[Shoal, str], Awaitable[Any]]
    unfollow_instance: Callable[[Shoal, str], Awaitable[bool]]
    instance_follows: Callable[..., Awaitable[tuple[int, list[Follow]]]]


def remote(shoal: Shoal) -> RemoteActors:
    """The ``remote_actors`` port, or 400 ``remote_not_supported`` when nothing answers it."""
    if shoal.ext.remote_actors is None:
        raise BadRequest("This instance does not federate.", code="remote_not_supported")
    return shoal.ext.remote_actors


def _is_url(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def _followed_by(user: User):
    return select(Follow.target_id).where(
        Follow.follower_id == user.account_id, Follow.state == FollowState.ACCEPTED
    )


async def subscribe(shoal: Shoal, user: User, uri: str) -> None:
    """Follow the channel ``uri`` (``name@host``, a local ``name``, or a channel URL); idempotent.

    A remote channel is resolved, stored and sent a Follow; the subscription is pending
    until its instance accepts.
    """
    host = None if _is_url(uri) else parse_handle(shoal, uri, field="uri")[1]
    if host is not None or _is_url(uri):
        federation = remote(shoal)
        channel = await federation.resolve(shoal, uri)
        if channel.kind != ActorKind.GROUP:
            raise BadRequest(f"'{uri[:80]}' is not a channel.", code="not_a_channel", field="uri")
        async with shoal.db.read() as session:
            account = await session.get(Actor, user.account_id)
            assert account is not None
            session.expunge(account)
        await federation.follow(shoal, account, channel)
        return
    async with shoal.db.write() as session:
        channel = await get_channel(shoal, session, uri)
        existing = await session.scalar(
            select(Follow).where(Follow.follower_id == user.account_id, Follow.target_id == channel.id)
        )
        if existing is None:
            session.add(Follow(follower_id=user.account_id, target_id=channel.id, state=FollowState.ACCEPTED))
        else:
            existing.state = FollowState.ACCEPTED


async def unsubscribe(shoal: Shoal, user: User, handle: str) -> None:
    """Stop following a channel; 404 ``subscription_not_found`` when not subscribed."""
    async with shoal.db.read() as session:
        channel = await find_actor(shoal, session, handle, ActorKind.GROUP)
        account = await session.get(Actor, user.account_id)
        session.expunge_all()
    remote_actors = shoal.ext.remote_actors
    if channel is not None and not channel.is_local and remote_actors is not None and account is not None:
        if not await remote_actors.unfollow(shoal, account, channel):
            raise NotFound(f"You are not subscribed to '{handle[:80]}'.", code="subscription_not_found")
        return
    async with shoal.db.write() as session:
        result = None
        if channel is not None:
            result = await session.execute(
                delete(Follow).where(Follow.follower_id == user.account_id, Follow.target_id == channel.id)
            )
        if result is None or not result.rowcount:
            raise NotFound(f"You are not subscribed to '{handle[:80]}'.", code="subscription_not_found")


async def get_subscription(shoal: Shoal, user: User, handle: str) -> ActorView:
    """One channel the user is subscribed to; 404 ``subscription_not_found`` otherwise."""
    async with reading(shoal) as session:
        channel = await find_actor(shoal, session, handle, ActorKind.GROUP)
        followed = channel is not None and await session.scalar(
            _followed_by(user).where(Follow.target_id == channel.id)
        )
        if channel is None or not followed:
            raise NotFound(f"You are not subscribed to '{handle[:80]}'.", code="subscription_not_found")
        return ActorView(channel, await actor_stats(session, [channel]))


async def list_subscriptions(shoal: Shoal, user: User, *, start: int, count: int, sort: str) -> ActorPage:
    """The channels the user follows."""
    async with reading(shoal) as session:
        where = [Actor.kind == ActorKind.GROUP, Actor.id.in_(_followed_by(user))]
        return await page_of_actors(session, where, start=start, count=count, sort=sort)


async def subscriptions_exist(shoal: Shoal, user: User, uris: list[str]) -> dict[str, bool]:
    """For each handle, whether the user follows that channel (PeerTube's ``exist`` map)."""
    if len(uris) > MAX_EXIST_URIS:
        raise BadRequest(
            f"Ask about at most {MAX_EXIST_URIS} channels at once.", code="invalid_field", field="uris"
        )
    parsed = {uri: parse_handle(shoal, uri, field="uris") for uri in uris}
    async with reading(shoal) as session:
        rows = await session.execute(
            select(Actor.preferred_username, Actor.host).where(
                Actor.kind == ActorKind.GROUP, Actor.id.in_(_followed_by(user))
            )
        )
        handles = {(name, host.lower() if host else None) for name, host in rows}
    return {uri: (name, host.lower() if host else None) in handles for uri, (name, host) in parsed.items()}


async def subscription_videos(shoal: Shoal, user: User, filters: VideoFilters) -> Page[Video]:
    """Videos of the channels the user follows, as the user may list them."""
    async with reading(shoal) as session:
        scope = Video.channel_id.in_(_followed_by(user))
        return await list_videos(shoal, session, user, filters, scope=scope)


# ---------------------------------------------------------------- the instance's follows


MAX_HOSTS = 20
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}(?::[0-9]{1,5})?$")


def _host_of(value: str) -> str:
    value = value.strip()
    if _is_url(value):
        value = urlsplit(value).netloc
    value = value.removeprefix("peertube@").lower()
    if not _HOST.match(value):
        raise BadRequest(f"'{value[:80]}' is not a host name.", code="invalid_host", field="hosts")
    return value


async def follow_instances(shoal: Shoal, hosts: list[str]) -> None:
    """Make this instance's Application actor follow each host's (pending until accepted)."""
    if len(hosts) > MAX_HOSTS:
        raise BadRequest(f"Follow at most {MAX_HOSTS} hosts at once.", code="invalid_field", field="hosts")
    federation = remote(shoal)
    for host in [_host_of(h) for h in hosts]:
        if host == shoal.settings.public_host.lower():
            raise BadRequest("An instance cannot follow itself.", code="cannot_follow_self", field="hosts")
        await federation.follow_instance(shoal, host)


async def unfollow_instance(shoal: Shoal, host: str) -> None:
    """Stop following ``host``; 404 ``follow_not_found`` when not following it."""
    if not await remote(shoal).unfollow_instance(shoal, _host_of(host)):
        raise NotFound(f"This instance does not follow '{host[:80]}'.", code="follow_not_found")


async def instance_follows(
    shoal: Shoal, direction: str, *, start: int, count: int
) -> tuple[int, list[Follow]]:
    """Whom this instance follows (``following``) or who follows it (``followers``)."""
    return await remote(shoal).instance_follows(shoal, direction=direction, start=start, count=count)


async def search_channels(shoal: Shoal, search: str, *, start: int, count: int) -> ActorPage:
    """Channels for a search: a handle or URL names one (resolved from its instance when
    remote); other words match the names of the channels this instance knows."""
    text = search.strip()
    async with reading(shoal) as session:
        if not _is_url(text) and "@" not in text.lstrip("@"):
            pattern = "%" + text.replace("\\", "").replace("%", "").replace("_", "\\_") + "%"
            where = [
                Actor.kind == ActorKind.GROUP,
                or_(
                    Actor.preferred_username.ilike(pattern, escape="\\"),
                    Actor.display_name.ilike(pattern, escape="\\"),
                ),
            ]
            return await page_of_actors(session, where, start=start, count=count, sort="-createdAt")
    local = None if _is_url(text) else parse_handle(shoal, text.lstrip("@"), field="search")
    if local is not None and local[1] is None:
        actor_id = None
        async with reading(shoal) as session:
            channel = await find_actor(shoal, session, text.lstrip("@"), ActorKind.GROUP)
            actor_id = channel.id if channel is not None else None
    else:
        try:
            actor = await remote(shoal).resolve(shoal, text)
        except NotFound:
            actor = None
        actor_id = actor.id if actor is not None and actor.kind == ActorKind.GROUP else None
    async with reading(shoal) as session:
        where = [Actor.id == (actor_id or -1)]
        return await page_of_actors(session, where, start=start, count=count, sort="-createdAt")

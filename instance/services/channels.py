"""Channels (Group actors owned by an account) and the account/channel lookups by handle.

A handle is ``name`` or ``name@host``; a host equal to this instance's public host means a
local actor. Remote actors are found only when federation already stored them (no fetch).
Only the owner or an admin may edit or delete a channel, and an account keeps at least
one channel. Deleting a channel deletes its videos and their files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from ..core import Shoal
from ..errors import BadRequest, Conflict, Forbidden, NotFound
from ..models import Actor, ActorKind, Rendition, User, Video
from .actors import check_channel_name, new_local_actor
from .files import access_changed
from .public_links import drop_public_link
from .video_fields import storable
from .video_lists import Page, VideoFilters, list_videos
from .videos import ActorStats, actor_stats, purge_files, reading, stored_files
from .visibility import Viewer, owned_channel_ids

MAX_CHANNELS_PER_USER = 20
DISPLAY_NAME_MAX = 120
CHANNEL_TEXT_MAX = 1000

_HANDLE = re.compile(
    r"^(?P<name>[A-Za-z0-9_.:~-]{1,100})(?:@(?P<host>[A-Za-z0-9.-]{1,253}(?::[0-9]{1,5})?))?$"
)

ACTOR_SORTS = ("createdAt", "-createdAt", "name", "-name", "updatedAt", "-updatedAt")


@dataclass
class ActorPage:
    """A page of channels or accounts with the stats their JSON needs."""

    total: int
    data: list[Actor]
    stats: ActorStats


@dataclass
class ActorView:
    """One channel or account (owner loaded) with its stats."""

    actor: Actor
    stats: ActorStats


async def add_channel(
    shoal: Shoal,
    session: AsyncSession,
    owner: Actor,
    *,
    name: str,
    display_name: str | None = None,
    description: str = "",
    support: str = "",
    keys: tuple[str, str] | None = None,
) -> Actor:
    """Add a channel owned by ``owner`` (name checked, unique among local accounts and channels)."""
    check_channel_name(name)
    channel = await new_local_actor(
        shoal,
        session,
        kind=ActorKind.GROUP,
        name=name,
        display_name=display_name or name,
        summary=description,
        owner=owner,
        keys=keys,
    )
    channel.support = support
    return channel


# ---------------------------------------------------------------- handles and lookups


def parse_handle(shoal: Shoal, handle: str, *, field: str = "handle") -> tuple[str, str | None]:
    """``(name, host)`` of a handle; ``host`` is None for this instance. 400 when malformed."""
    match = _HANDLE.match(handle or "")
    if match is None:
        raise BadRequest(
            f"'{(handle or '')[:80]}' is not a handle (name or name@host).",
            code="invalid_handle",
            field=field,
        )
    host = match["host"]
    if host is not None and host.lower() == shoal.settings.public_host.lower():
        host = None
    return match["name"], host


async def find_actor(shoal: Shoal, session: AsyncSession, handle: str, kind: ActorKind) -> Actor | None:
    """The local or known remote actor of ``kind`` with this handle (owner loaded)."""
    name, host = parse_handle(shoal, handle)
    host_clause = Actor.host.is_(None) if host is None else func.lower(Actor.host) == host.lower()
    return await session.scalar(
        select(Actor)
        .options(joinedload(Actor.owner))
        .where(Actor.kind == kind, Actor.preferred_username == name, host_clause)
    )


async def get_channel(shoal: Shoal, session: AsyncSession, handle: str) -> Actor:
    """The channel with this handle, or 404 ``channel_not_found``."""
    channel = await find_actor(shoal, session, handle, ActorKind.GROUP)
    if channel is None:
        raise NotFound(f"No channel '{handle[:80]}'.", code="channel_not_found")
    return channel


async def get_account(shoal: Shoal, session: AsyncSession, handle: str) -> Actor:
    """The account with this handle, or 404 ``account_not_found``."""
    account = await find_actor(shoal, session, handle, ActorKind.PERSON)
    if account is None:
        raise NotFound(f"No account '{handle[:80]}'.", code="account_not_found")
    return account


def actor_order(sort: str) -> list[ColumnElement[Any]]:
    """ORDER BY for actor lists (``name``, ``createdAt``, ``updatedAt``, ``-`` for descending)."""
    columns = {
        "name": func.lower(Actor.preferred_username),
        "createdAt": Actor.created_at,
        "updatedAt": Actor.updated_at,
    }
    column = columns.get(sort.lstrip("-"))
    if column is None:
        raise BadRequest(f"Unknown sort '{sort}'.", code="invalid_field", field="sort")
    if sort.startswith("-"):
        return [column.desc(), Actor.id.desc()]
    return [column.asc(), Actor.id.asc()]


async def page_of_actors(
    session: AsyncSession, where: list[Any], *, start: int, count: int, sort: str
) -> ActorPage:
    """One page of actors matching ``where``, owners loaded, with stats."""
    total = await session.scalar(select(func.count(Actor.id)).where(*where)) or 0
    rows = await session.scalars(
        select(Actor)
        .options(joinedload(Actor.owner))
        .where(*where)
        .order_by(*actor_order(sort))
        .offset(start)
        .limit(count)
    )
    data = list(rows)
    return ActorPage(total, data, await actor_stats(session, data))


# ---------------------------------------------------------------- reading


async def channel_view(shoal: Shoal, handle: str) -> ActorView:
    """``GET /video-channels/{handle}``."""
    async with reading(shoal) as session:
        channel = await get_channel(shoal, session, handle)
        return ActorView(channel, await actor_stats(session, [channel]))


async def list_channels(shoal: Shoal, *, start: int, count: int, sort: str) -> ActorPage:
    """Every channel this instance knows, local and remote."""
    async with reading(shoal) as session:
        return await page_of_actors(
            session, [Actor.kind == ActorKind.GROUP], start=start, count=count, sort=sort
        )


async def account_view(shoal: Shoal, handle: str) -> ActorView:
    """``GET /accounts/{name}`` (the same view shape, the actor being an account)."""
    async with reading(shoal) as session:
        account = await get_account(shoal, session, handle)
        return ActorView(account, await actor_stats(session, [account]))


async def list_accounts(shoal: Shoal, *, start: int, count: int, sort: str) -> ActorPage:
    """Every account this instance knows, local and remote."""
    async with reading(shoal) as session:
        return await page_of_actors(
            session, [Actor.kind == ActorKind.PERSON], start=start, count=count, sort=sort
        )


async def list_account_channels(shoal: Shoal, handle: str, *, start: int, count: int, sort: str) -> ActorPage:
    """The channels an account owns."""
    async with reading(shoal) as session:
        account = await get_account(shoal, session, handle)
        where = [Actor.kind == ActorKind.GROUP, Actor.owner_id == account.id]
        return await page_of_actors(session, where, start=start, count=count, sort=sort)


async def list_channel_videos(
    shoal: Shoal, handle: str, user: User | None, filters: VideoFilters
) -> Page[Video]:
    """A channel's videos; its owner may ask for every privacy and state."""
    async with reading(shoal) as session:
        channel = await get_channel(shoal, session, handle)
        privileged = user is not None and channel.owner_id == user.account_id
        return await list_videos(
            shoal, session, user, filters, scope=Video.channel_id == channel.id, privileged=privileged
        )


async def list_account_videos(
    shoal: Shoal, handle: str, user: User | None, filters: VideoFilters
) -> Page[Video]:
    """The videos of every channel an account owns; the account's user may ask for everything."""
    async with reading(shoal) as session:
        account = await get_account(shoal, session, handle)
        privileged = user is not None and user.account_id == account.id
        scope = Video.channel_id.in_(owned_channel_ids(account.id))
        return await list_videos(shoal, session, user, filters, scope=scope, privileged=privileged)


# ---------------------------------------------------------------- changes


def _check_text(value: Any, field_name: str, *, maximum: int, minimum: int = 0) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str) or not storable(value) or not minimum <= len(value.strip()) <= maximum:
        raise BadRequest(
            f"'{field_name}' must be a text of {minimum} to {maximum} characters.",
            code="invalid_field",
            field=field_name,
        )
    return value.strip() if field_name == "displayName" else value


async def create_channel(
    shoal: Shoal,
    user: User,
    *,
    name: str,
    display_name: str,
    description: str | None = None,
    support: str | None = None,
) -> Actor:
    """A new channel for ``user``'s account. 409 ``name_taken`` when an account or channel
    already has the name; 400 ``too_many_channels`` past 20 channels."""
    display_name = _check_text(display_name, "displayName", minimum=1, maximum=DISPLAY_NAME_MAX)
    description = _check_text(description, "description", maximum=CHANNEL_TEXT_MAX)
    support = _check_text(support, "support", maximum=CHANNEL_TEXT_MAX)
    async with shoal.db.write() as session:
        owned = await session.scalar(
            select(func.count(Actor.id)).where(
                Actor.owner_id == user.account_id, Actor.kind == ActorKind.GROUP
            )
        )
        if (owned or 0) >= MAX_CHANNELS_PER_USER:
            raise BadRequest(
                f"An account has at most {MAX_CHANNELS_PER_USER} channels.", code="too_many_channels"
            )
        owner = await session.get(Actor, user.account_id)
        if owner is None:
            raise NotFound("Your account no longer exists.", code="account_not_found")
        return await add_channel(
            shoal,
            session,
            owner,
            name=name,
            display_name=display_name,
            description=description,
            support=support,
        )


def _require_channel_manager(user: User, channel: Actor) -> None:
    if not channel.is_local:
        raise Forbidden("Remote channels are managed on their own instance.", code="not_local")
    viewer = Viewer.of(user)
    if channel.owner_id != viewer.account_id and not viewer.is_admin:
        raise Forbidden("Only the channel's owner or an admin may do this.", code="not_owner")


async def update_channel(shoal: Shoal, handle: str, user: User, changes: dict[str, Any]) -> None:
    """Change a channel's display name, description or support text (owner or admin).

    ``bulk_videos_support_update`` copies the new support text to every video of the
    channel, as PeerTube's ``bulkVideosSupportUpdate`` does.
    """
    values: dict[str, str] = {}
    if "display_name" in changes:
        values["display_name"] = _check_text(
            changes["display_name"], "displayName", minimum=1, maximum=DISPLAY_NAME_MAX
        )
    if "description" in changes:
        values["summary"] = _check_text(changes["description"], "description", maximum=CHANNEL_TEXT_MAX)
    if "support" in changes:
        values["support"] = _check_text(changes["support"], "support", maximum=CHANNEL_TEXT_MAX)
    async with shoal.db.write() as session:
        channel = await get_channel(shoal, session, handle)
        _require_channel_manager(user, channel)
        for name, value in values.items():
            setattr(channel, name, value)
        if changes.get("bulk_videos_support_update") and "support" in values:
            videos = await session.scalars(select(Video).where(Video.channel_id == channel.id))
            for video in videos:
                video.support = values["support"]


async def delete_channel(shoal: Shoal, handle: str, user: User) -> None:
    """Delete a channel with its videos and their files (owner or admin).

    409 ``last_channel`` when it is its account's only channel.
    """
    async with shoal.db.write() as session:
        channel = await get_channel(shoal, session, handle)
        _require_channel_manager(user, channel)
        siblings = await session.scalar(
            select(func.count(Actor.id)).where(
                Actor.owner_id == channel.owner_id, Actor.kind == ActorKind.GROUP
            )
        )
        if (siblings or 0) <= 1:
            raise Conflict(
                "This is the account's last channel; an account keeps at least one.", code="last_channel"
            )
        videos = list(await session.scalars(select(Video).where(Video.channel_id == channel.id)))
        renditions = await session.scalars(
            select(Rendition).where(Rendition.video_id.in_([video.id for video in videos]))
        )
        by_video: dict[int, list[Rendition]] = {}
        for rendition in renditions:
            by_video.setdefault(rendition.video_id, []).append(rendition)
        files = [stored_files(video, by_video.get(video.id, [])) for video in videos]
        for video in videos:
            await drop_public_link(shoal, video.uuid)
        await session.execute(delete(Video).where(Video.channel_id == channel.id))
        await session.execute(delete(Actor).where(Actor.id == channel.id))
    for video in videos:
        await access_changed(shoal, video.uuid)
    await purge_files(shoal, files)

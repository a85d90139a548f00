"""Paginated OrderedCollections: outbox, followers, following and playlists of local actors.

``GET <collection>`` answers the collection with ``totalItems`` and a ``first`` page link;
``?page=N`` (from 1) answers an ``OrderedCollectionPage`` of :data:`PAGE_SIZE` items with
``next``/``prev``. The outbox's items come from the Shoal's outbox sources (:mod:`.tables`):
:func:`federation.install` adds the video code's source of ``Create`` activities (one per
public video of the actor).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from instance.models import Actor, Follow, FollowState

from .actors import CONTEXT
from .tables import tables_of

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from instance.core import Shoal

PAGE_SIZE = 10
MAX_PAGE = 100_000


@dataclass(frozen=True)
class OutboxSource:
    """A kind of outbox item: ``count(shoal, session, actor)`` and ``items(shoal, session,
    actor, offset, limit)`` (newest first, ActivityPub dicts without ``@context``)."""

    name: str
    count: Callable[[Shoal, AsyncSession, Actor], Awaitable[int]]
    items: Callable[[Shoal, AsyncSession, Actor, int, int], Awaitable[list[dict[str, Any]]]]


def page_number(raw: str | None) -> int | None:
    """The ``page`` query parameter: None for the collection itself, else 1…MAX_PAGE."""
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise ValueError("page must be a number from 1")
    return int(raw)


def collection(url: str, total: int, page: int | None, items: list[Any]) -> dict[str, Any]:
    """The collection document, or one page of it."""
    if page is None:
        doc: dict[str, Any] = {
            "@context": CONTEXT,
            "id": url,
            "type": "OrderedCollection",
            "totalItems": total,
        }
        if total:
            doc["first"] = f"{url}?page=1"
            doc["last"] = f"{url}?page={max(1, -(-total // PAGE_SIZE))}"
        return doc
    doc = {
        "@context": CONTEXT,
        "id": f"{url}?page={page}",
        "type": "OrderedCollectionPage",
        "partOf": url,
        "totalItems": total,
        "orderedItems": items,
    }
    if page * PAGE_SIZE < total:
        doc["next"] = f"{url}?page={page + 1}"
    if page > 1:
        doc["prev"] = f"{url}?page={page - 1}"
    return doc


async def outbox(shoal: Shoal, actor: Actor, page: int | None) -> dict[str, Any]:
    """The actor's outbox, from the outbox sources of this Shoal (:mod:`.tables`)."""
    url = actor.outbox_url or actor.ap_id + "/outbox"
    async with shoal.db.read() as session:
        sources = tables_of(shoal).outbox_sources
        counts = [(source, await source.count(shoal, session, actor)) for source in sources]
        total = sum(count for _, count in counts)
        items: list[dict[str, Any]] = []
        if page is not None:
            offset = (page - 1) * PAGE_SIZE
            for source, count in counts:
                if len(items) >= PAGE_SIZE:
                    break
                if offset >= count:
                    offset -= count
                    continue
                items += await source.items(shoal, session, actor, offset, PAGE_SIZE - len(items))
                offset = 0
    return collection(url, total, page, items)


async def _follow_collection(
    shoal: Shoal, actor: Actor, page: int | None, *, followers: bool
) -> dict[str, Any]:
    url = (actor.followers_url if followers else actor.following_url) or actor.ap_id + (
        "/followers" if followers else "/following"
    )
    mine = Follow.target_id if followers else Follow.follower_id
    other = Follow.follower_id if followers else Follow.target_id
    where = [mine == actor.id, Follow.state == FollowState.ACCEPTED]
    async with shoal.db.read() as session:
        total = int(await session.scalar(select(func.count(Follow.id)).where(*where)) or 0)
        items: list[str] = []
        if page is not None:
            items = list(
                await session.scalars(
                    select(Actor.ap_id)
                    .join(Follow, other == Actor.id)
                    .where(*where)
                    .order_by(Follow.created_at.desc(), Follow.id.desc())
                    .offset((page - 1) * PAGE_SIZE)
                    .limit(PAGE_SIZE)
                )
            )
    return collection(url, total, page, items)


async def followers(shoal: Shoal, actor: Actor, page: int | None) -> dict[str, Any]:
    """Who follows the actor (accepted follows), as actor URLs."""
    return await _follow_collection(shoal, actor, page, followers=True)


async def following(shoal: Shoal, actor: Actor, page: int | None) -> dict[str, Any]:
    """Whom the actor follows (accepted follows), as actor URLs."""
    return await _follow_collection(shoal, actor, page, followers=False)


async def playlists(shoal: Shoal, actor: Actor, page: int | None) -> dict[str, Any]:
    """The actor's public playlists (PeerTube reads this collection on every actor fetch).
    Shoal has no playlists yet: an empty collection."""
    return collection(actor.ap_id + "/playlists", 0, page, [])

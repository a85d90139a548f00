"""Video lists: PeerTube's filters and sorts, pages, and the anonymous pages kept per Shoal.

Who may see what is decided in :mod:`.visibility`; this module builds the list queries. The
anonymous first pages (the home page's hot query) are kept in a :class:`~instance.readcache.ReadCache`
until this process's next write, and at most ``LIST_CACHE_SECONDS`` for writes by other processes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from ..core import Shoal
from ..errors import BadRequest
from ..models import Actor, Rendition, User, Video
from ..readcache import ReadCache
from .video_fields import UNKNOWN_LANGUAGE
from .videos import reading, write_generation
from .visibility import Viewer, listing_clause, nsfw_clause, owner_clause

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    """One page of a list and how many items the whole list has (for this caller)."""

    total: int
    data: list[T]
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """Room for the API layer to keep what it rendered from a shared (cached) page."""


@dataclass
class VideoFilters:
    """PeerTube's common video list parameters, already type-checked by the API layer."""

    start: int = 0
    count: int = 15
    sort: str = "-publishedAt"
    is_local: bool | None = None
    nsfw: str | None = None
    category_one_of: list[int] = field(default_factory=list)
    licence_one_of: list[int] = field(default_factory=list)
    language_one_of: list[str] = field(default_factory=list)
    tags_one_of: list[str] = field(default_factory=list)
    tags_all_of: list[str] = field(default_factory=list)
    privacy_one_of: list[int] = field(default_factory=list)
    include: int = 0
    search: str | None = None
    has_hls_files: bool | None = None
    skip_count: bool = False


def _sort_columns() -> dict[str, ColumnElement[Any]]:
    published = func.coalesce(Video.published_at, Video.created_at)
    return {
        "publishedAt": published,
        "createdAt": Video.created_at,
        "originallyPublishedAt": func.coalesce(Video.originally_published_at, published),
        "views": Video.views,
        "likes": Video.likes,
        "name": func.lower(Video.name),
        "duration": Video.duration,
        # No per-day view history yet: trending, hot and best rank by views.
        "trending": Video.views,
        "hot": Video.views,
        "best": Video.views,
    }


VIDEO_SORTS = tuple(sorted(f"{sign}{key}" for key in _sort_columns() for sign in ("", "-")))


def _order_by(sort: str) -> list[ColumnElement[Any]]:
    descending = sort.startswith("-")
    column = _sort_columns().get(sort.lstrip("-"))
    if column is None:
        raise BadRequest(f"Unknown sort '{sort}'.", code="invalid_field", field="sort")
    if descending:
        return [column.desc(), Video.id.desc()]
    return [column.asc(), Video.id.asc()]


def _tags_any(tags: Iterable[str], sqlite: bool) -> ColumnElement[bool]:
    """Some tag of the video is among ``tags`` (case-insensitive), on SQLite or PostgreSQL."""
    wanted = sorted({tag.lower() for tag in tags})
    if sqlite:
        each = func.json_each(Video.tags).table_valued("value")
    else:
        each = func.jsonb_array_elements_text(Video.tags).table_valued("value")
    return exists(select(1).select_from(each).where(func.lower(each.c.value).in_(wanted)))


def filter_clauses(filters: VideoFilters, viewer: Viewer, *, sqlite: bool, owner: bool) -> list[Any]:
    """WHERE clauses for the list filters (visibility aside)."""
    where: list[Any] = []
    if filters.is_local is not None:
        where.append(Video.remote_url.is_(None) if filters.is_local else Video.remote_url.is_not(None))
    if filters.nsfw is not None or not owner:
        where.append(nsfw_clause(viewer, filters.nsfw))
    if filters.category_one_of:
        where.append(Video.category.in_(filters.category_one_of))
    if filters.licence_one_of:
        where.append(Video.licence.in_(filters.licence_one_of))
    if filters.language_one_of:
        codes = [code for code in filters.language_one_of if code != UNKNOWN_LANGUAGE]
        clause = Video.language.in_(codes)
        if UNKNOWN_LANGUAGE in filters.language_one_of:
            clause = clause | Video.language.is_(None)
        where.append(clause)
    if filters.tags_one_of:
        where.append(_tags_any(filters.tags_one_of, sqlite))
    for tag in filters.tags_all_of:
        where.append(_tags_any([tag], sqlite))
    if filters.search:
        where.append(func.lower(Video.name).contains(filters.search.lower(), autoescape=True))
    if filters.has_hls_files is not None:
        has_files = exists().where(Rendition.video_id == Video.id)
        where.append(has_files if filters.has_hls_files else ~has_files)
    return where


LIST_CACHE_SECONDS = 2.0
LIST_CACHE_DEPTH = 100


def _list_cache(shoal: Shoal) -> ReadCache[str, Page[Video]]:
    """Anonymous list pages (the home page's hot query): dropped after any write committed in
    this process, and after ``LIST_CACHE_SECONDS`` so writes by other processes (workers, other
    web processes) show within that delay."""
    return shoal.state("videos.lists", lambda: ReadCache(max_entries=512, stamp=write_generation))


async def list_videos(
    shoal: Shoal,
    session: AsyncSession,
    user: User | None,
    filters: VideoFilters,
    *,
    scope: ColumnElement[bool] | None = None,
    privileged: bool = False,
    owner: bool = False,
) -> Page[Video]:
    """One page of videos the caller may list, with channel and account loaded.

    ``scope`` narrows the list (a channel, an account, subscriptions); ``privileged``
    says the caller owns that scope; ``owner`` lists the caller's own videos in every
    state and privacy. ``total`` counts only what this caller may see.
    """
    if user is None and scope is None and not owner and not privileged and filters.start < LIST_CACHE_DEPTH:
        hit = cached_page(shoal, user, filters)
        if hit is not None:
            return hit
        # the same page may be being read: wait for it rather than run the same query again
        return await _list_cache(shoal).get(
            repr(filters),
            lambda: _query_videos(shoal, session, user, filters, scope, privileged, owner),
            ttl=LIST_CACHE_SECONDS,
        )
    return await _query_videos(shoal, session, user, filters, scope, privileged, owner)


def cached_page(shoal: Shoal, user: User | None, filters: VideoFilters) -> Page[Video] | None:
    """The anonymous list page for ``filters`` if cached since this process's last write.

    Needs no session. Past ``LIST_CACHE_SECONDS`` the page is still returned while one
    background read refreshes it, so no request waits on the query under load.
    """
    if user is not None:
        return None
    cache = _list_cache(shoal)
    hit = cache.entry(repr(filters))
    if hit is None:
        return None
    if hit.expires <= time.monotonic():
        cache.refresh(repr(filters), lambda: _read_page(shoal, filters), ttl=LIST_CACHE_SECONDS)
    return hit.value


async def _read_page(shoal: Shoal, filters: VideoFilters) -> Page[Video]:
    async with reading(shoal) as session:
        return await _query_videos(shoal, session, None, filters, None, False, False)


async def _query_videos(
    shoal: Shoal,
    session: AsyncSession,
    user: User | None,
    filters: VideoFilters,
    scope: ColumnElement[bool] | None,
    privileged: bool,
    owner: bool,
) -> Page[Video]:
    viewer = Viewer.of(user)
    if owner:
        where: list[Any] = [owner_clause(viewer)]
        if filters.privacy_one_of:
            where.append(Video.privacy.in_(filters.privacy_one_of))
    else:
        where = [
            listing_clause(
                viewer, privacies=filters.privacy_one_of, include=filters.include, privileged=privileged
            )
        ]
    if scope is not None:
        where.append(scope)
    where += filter_clauses(filters, viewer, sqlite=shoal.db.is_sqlite, owner=owner)
    order = _order_by(filters.sort)
    rows = await session.scalars(
        select(Video)
        .options(joinedload(Video.channel).joinedload(Actor.owner))
        .where(*where)
        .order_by(*order)
        .offset(filters.start)
        .limit(filters.count)
    )
    data = list(rows)
    if filters.skip_count:
        total = filters.start + len(data)
    else:
        total = await session.scalar(select(func.count(Video.id)).where(*where)) or 0
    return Page(total, data)


async def search_videos(
    shoal: Shoal, user: User | None, filters: VideoFilters, *, owner: bool = False
) -> Page[Video]:
    """``GET /videos`` (or, with ``owner``, ``/users/me/videos``) in its own read transaction."""
    if not owner and (hit := cached_page(shoal, user, filters)) is not None:
        return hit
    async with reading(shoal) as session:
        return await list_videos(shoal, session, user, filters, owner=owner)

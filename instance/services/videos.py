"""Videos: creation, lookup by any id form, lists with PeerTube's filters, edits, hiding, deletion.

Who may see what is decided in :mod:`.visibility`; this module only asks it. Functions that
take a ``session`` run inside the caller's transaction (the upload pipeline, tests); the
others open their own, so a handler calls exactly one of them.

Files in storage (set by the processing pipeline) follow one layout (:mod:`..storage.keys`):
``hls/<uuid>/…`` (playlists, fragmented MP4s, the segments manifest), ``originals/<uuid>/…``
(the upload), ``storyboards/<uuid>/…``, plus the keys stored on the row — ``source_key``,
``thumbnail``, ``preview`` and ``storyboard["key"]`` — and each rendition's ``torrent_path``.
Deleting a video removes all of them.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from .. import db
from ..core import Shoal
from ..errors import BadRequest, Forbidden, NotFound
from ..models import (
    Actor,
    ActorKind,
    Follow,
    FollowState,
    Privacy,
    Rendition,
    User,
    Video,
    VideoRedundancy,
    VideoState,
    utcnow,
    uuid_from_short,
)
from ..readcache import ReadCache
from ..storage import StorageError, keys, validate_key
from ..vocab import CATEGORIES, LANGUAGES, LICENCES
from .files import TOKEN_PRIVACIES, access_changed, drop_public_link
from .visibility import (
    Viewer,
    can_manage_video,
    can_see_video,
    listing_clause,
    nsfw_clause,
    owner_clause,
)

log = logging.getLogger("shoal.videos")

T = TypeVar("T")

NAME_MIN, NAME_MAX = 3, 120
DESCRIPTION_MAX = 10_000
SUPPORT_MAX = 1000
TEXT_MIN = 3  # a description or support text, when given
TAGS_MAX, TAG_MIN, TAG_MAX = 5, 2, 30
MAX_DB_INT = 2**31 - 1
UNKNOWN_LANGUAGE = "_unknown"

_NUMERIC_ID = re.compile(r"^[0-9]{1,19}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_SHORT_UUID = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{1,22}$")

# The REST names of the attributes a client sets, for error messages naming the field.
API_FIELDS = {
    "name": "name",
    "description": "description",
    "support": "support",
    "privacy": "privacy",
    "category": "category",
    "licence": "licence",
    "language": "language",
    "tags": "tags",
    "nsfw": "nsfw",
    "comments_enabled": "commentsEnabled",
    "download_enabled": "downloadEnabled",
    "wait_transcoding": "waitTranscoding",
    "originally_published_at": "originallyPublishedAt",
    "channel_id": "channelId",
    "comments_policy": "commentsPolicy",
}


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


@dataclass
class ActorStats:
    """Follower and following counts of some actors, and the user id of local accounts."""

    followers: dict[int, int] = field(default_factory=dict)
    following: dict[int, int] = field(default_factory=dict)
    user_ids: dict[int, int] = field(default_factory=dict)


@dataclass
class VideoView:
    """A video with what its detailed JSON needs: renditions, and its channel's and account's stats."""

    video: Video
    renditions: list[Rendition]
    stats: ActorStats
    redundancies: tuple[str, ...] = ()  # base URLs of other instances' live mirrors of a local video


@dataclass(frozen=True)
class StoredFiles:
    """What a video keeps in storage: whole folders and single keys."""

    prefixes: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()


@asynccontextmanager
async def reading(shoal: Shoal) -> AsyncIterator[AsyncSession]:
    """A read transaction whose loaded objects stay usable after it ends.

    ``Database.read()`` rolls back at the end, which would expire every loaded object;
    detaching them first keeps what was loaded for the serializers.
    """
    async with shoal.db.read() as session:
        try:
            yield session
        finally:
            session.expunge_all()


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


# ---------------------------------------------------------------- ids and lookups


def video_id_clause(value: str) -> ColumnElement[bool] | None:
    """The WHERE clause finding a video by numeric id, UUID or short UUID.

    Returns None for a well-formed id no row can have (a number beyond the id range);
    raises 400 ``invalid_id`` for anything that is not an id at all.
    """
    if _NUMERIC_ID.match(value):
        number = int(value)
        return Video.id == number if number <= MAX_DB_INT else None
    if _UUID.match(value):
        return Video.uuid == value.lower()
    if _SHORT_UUID.match(value):
        full = uuid_from_short(value)
        if full is not None:
            return Video.uuid == full
    raise BadRequest(f"'{value[:60]}' is not a video id, UUID or short UUID.", code="invalid_id", field="id")


def video_not_found() -> NotFound:
    """The one answer for a missing video and for a video the caller may not see."""
    return NotFound("No such video.", code="video_not_found")


async def get_video_for(shoal: Shoal, session: AsyncSession, ident: str, user: User | None) -> Video:
    """The video ``ident`` names, with its channel and owning account loaded.

    404 ``video_not_found`` when it does not exist *or* ``user`` may not see it, so the
    answer never tells whether a private video exists. A numeric id does not open an
    unlisted video (see :func:`.visibility.can_see_video`).
    """
    clause = video_id_clause(ident)
    if clause is None:
        raise video_not_found()
    video = await session.scalar(
        select(Video).options(joinedload(Video.channel).joinedload(Actor.owner)).where(clause)
    )
    by_number = _NUMERIC_ID.match(ident) is not None
    if video is None or not can_see_video(Viewer.of(user), video, by_number=by_number):
        raise video_not_found()
    return video


async def renditions_of(session: AsyncSession, video: Video) -> list[Rendition]:
    """The video's renditions, highest first."""
    rows = await session.scalars(
        select(Rendition).where(Rendition.video_id == video.id).order_by(Rendition.height.desc())
    )
    return list(rows)


async def actor_stats(session: AsyncSession, actors: list[Actor]) -> ActorStats:
    """Follower/following counts (accepted follows) and user ids for ``actors`` and their owners."""
    ids = {actor.id for actor in actors}
    ids |= {actor.owner_id for actor in actors if actor.owner_id is not None}
    if not ids:
        return ActorStats()
    accepted = Follow.state == FollowState.ACCEPTED
    followers = await session.execute(
        select(Follow.target_id, func.count())
        .where(Follow.target_id.in_(ids), accepted)
        .group_by(Follow.target_id)
    )
    following = await session.execute(
        select(Follow.follower_id, func.count())
        .where(Follow.follower_id.in_(ids), accepted)
        .group_by(Follow.follower_id)
    )
    users = await session.execute(select(User.account_id, User.id).where(User.account_id.in_(ids)))
    return ActorStats(
        followers={k: v for k, v in followers},
        following={k: v for k, v in following},
        user_ids={k: v for k, v in users},
    )


async def video_details(shoal: Shoal, ident: str, user: User | None) -> VideoView:
    """A video the caller may see, with its renditions (for the VideoDetails shape).

    Anonymous callers share one read per video (watch pages are the hot path): the view is
    kept until this process's next write, and at most ``LIST_CACHE_SECONDS`` for writes by
    other processes.
    """
    if user is not None:
        return await _load_details(shoal, ident, user)
    return await _details_cache(shoal).get(
        ident, lambda: _load_details(shoal, ident, None), ttl=LIST_CACHE_SECONDS
    )


def _details_cache(shoal: Shoal) -> ReadCache[str, VideoView]:
    return shoal.state("videos.details", lambda: ReadCache(max_entries=4096, stamp=_write_generation))


def _write_generation() -> int:
    return db.write_generation


async def _load_details(shoal: Shoal, ident: str, user: User | None) -> VideoView:
    async with reading(shoal) as session:
        video = await get_video_for(shoal, session, ident, user)
        renditions = await renditions_of(session, video)
        mirrors: tuple[str, ...] = ()
        if video.is_local and renditions:
            rows = await session.scalars(
                select(VideoRedundancy.base_url)
                .where(VideoRedundancy.video_id == video.id, VideoRedundancy.expires_at >= utcnow())
                .order_by(VideoRedundancy.id)
            )
            mirrors = tuple(rows)
        return VideoView(video, renditions, await actor_stats(session, [video.channel]), mirrors)


# ---------------------------------------------------------------- checks


def storable(text: str) -> bool:
    """Whether a database can store ``text`` (no NUL, no lone surrogates)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(value: Any, name: str, *, maximum: int, minimum: int = 0) -> str:
    field_name = API_FIELDS.get(name, name)
    if not isinstance(value, str):
        raise BadRequest(f"'{field_name}' must be a text.", code="invalid_field", field=field_name)
    if not storable(value):
        raise BadRequest(
            f"'{field_name}' must be Unicode text without NUL characters.",
            code="invalid_field",
            field=field_name,
        )
    if not minimum <= len(value) <= maximum:
        raise BadRequest(
            f"'{field_name}' must have {minimum} to {maximum} characters.",
            code="invalid_field",
            field=field_name,
        )
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_tags(tags: Any) -> list[str]:
    """At most 5 tags of 2 to 30 characters each; duplicates (ignoring case) dropped."""
    if not isinstance(tags, list | tuple):
        raise BadRequest("'tags' must be a list of texts.", code="invalid_field", field="tags")
    if len(tags) > TAGS_MAX:
        raise BadRequest(f"A video has at most {TAGS_MAX} tags.", code="invalid_field", field="tags")
    seen: dict[str, str] = {}
    for tag in tags:
        text = _text(tag, "tags", minimum=TAG_MIN, maximum=TAG_MAX).strip()
        if len(text) < TAG_MIN:
            raise BadRequest(
                f"Each tag has {TAG_MIN} to {TAG_MAX} characters.", code="invalid_field", field="tags"
            )
        seen.setdefault(text.lower(), text)
    return list(seen.values())


def _as_utc(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise BadRequest(
            f"'{API_FIELDS[name]}' must be a date.", code="invalid_field", field=API_FIELDS[name]
        )
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise BadRequest(
            f"'{API_FIELDS[name]}' is out of range.", code="invalid_field", field=API_FIELDS[name]
        ) from None


def check_video_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Validate video attributes (keys are model attribute names); return them normalised.

    Errors are 400 ``invalid_field`` naming the REST field, so the API and internal
    callers (the upload pipeline) share one set of rules — PeerTube's bounds.
    """
    out: dict[str, Any] = {}
    for name, value in values.items():
        field_name = API_FIELDS.get(name)
        if field_name is None:
            raise BadRequest(f"'{name}' cannot be set.", code="invalid_field", field=name)
        if name == "name":
            value = _text(value, name, minimum=NAME_MIN, maximum=NAME_MAX).strip()
            if len(value) < NAME_MIN:
                raise BadRequest(
                    f"'name' must have {NAME_MIN} to {NAME_MAX} characters.",
                    code="invalid_field",
                    field="name",
                )
        elif name in ("description", "support"):
            maximum = DESCRIPTION_MAX if name == "description" else SUPPORT_MAX
            value = _text("" if value is None else value, name, maximum=maximum)
            if 0 < len(value) < TEXT_MIN:
                # PeerTube's bound (empty, or 3 to the maximum): other instances refuse less.
                raise BadRequest(
                    f"'{name}' is empty or has {TEXT_MIN} to {maximum} characters.",
                    code="invalid_field",
                    field=name,
                )
        elif name == "privacy":
            if not _is_int(value) or value not in {int(p) for p in Privacy}:
                raise BadRequest(
                    "'privacy' must be 1 (public), 2 (unlisted), 3 (private) or 4 (internal).",
                    code="invalid_field",
                    field="privacy",
                )
            value = int(value)
        elif name == "category":
            if value is not None and (not _is_int(value) or value not in CATEGORIES):
                raise BadRequest("Unknown category.", code="invalid_field", field="category")
        elif name == "licence":
            if value is not None and (not _is_int(value) or value not in LICENCES):
                raise BadRequest("Unknown licence.", code="invalid_field", field="licence")
        elif name == "language":
            if value is not None and (not isinstance(value, str) or value not in LANGUAGES):
                raise BadRequest("Unknown language.", code="invalid_field", field="language")
        elif name == "tags":
            value = check_tags(value)
        elif name in ("nsfw", "comments_enabled", "download_enabled", "wait_transcoding"):
            if not isinstance(value, bool):
                raise BadRequest(
                    f"'{field_name}' must be true or false.", code="invalid_field", field=field_name
                )
        elif name == "originally_published_at":
            value = _as_utc(value, name)
        elif name == "comments_policy":
            # PeerTube's policy: 1 enabled, 2 disabled (3, approval first, is not supported yet).
            if not _is_int(value) or value not in (1, 2):
                raise BadRequest(
                    "'commentsPolicy' must be 1 (enabled) or 2 (disabled).",
                    code="invalid_field",
                    field="commentsPolicy",
                )
            name, value = "comments_enabled", value == 1
        elif name == "channel_id":
            if not _is_int(value) or not 0 < value <= MAX_DB_INT:
                raise BadRequest("'channelId' must be a channel id.", code="invalid_field", field="channelId")
        out[name] = value
    return out


# ---------------------------------------------------------------- creation


async def add_video(
    shoal: Shoal,
    session: AsyncSession,
    channel: Actor,
    *,
    name: str,
    privacy: int = Privacy.PUBLIC,
    description: str = "",
    support: str = "",
    tags: Sequence[str] = (),
    category: int | None = None,
    licence: int | None = None,
    language: str | None = None,
    nsfw: bool = False,
    comments_enabled: bool = True,
    download_enabled: bool = True,
    wait_transcoding: bool = True,
    originally_published_at: datetime | None = None,
    state: VideoState = VideoState.RECEIVED,
    **extra: Any,
) -> Video:
    """Add a local video to ``channel`` in the given state (the upload pipeline's entry point).

    Attributes are checked as the REST API checks them. ``extra`` sets other columns
    directly (``duration``, ``progress``, ``thumbnail``, ``source_filename`` …). A video
    created ``published`` gets ``published_at`` now unless one is given.
    """
    if channel.kind != ActorKind.GROUP:
        raise BadRequest("Videos belong to channels.", code="invalid_field", field="channelId")
    values = check_video_fields(
        {
            "name": name,
            "privacy": privacy,
            "description": description,
            "support": support,
            "tags": list(tags),
            "category": category,
            "licence": licence,
            "language": language,
            "nsfw": nsfw,
            "comments_enabled": comments_enabled,
            "download_enabled": download_enabled,
            "wait_transcoding": wait_transcoding,
            "originally_published_at": originally_published_at,
        }
    )
    now = utcnow()
    state = VideoState(state)
    if state is VideoState.PUBLISHED:
        extra.setdefault("published_at", now)
        extra.setdefault("progress", 100)
    video = Video(channel_id=channel.id, state=state, state_changed_at=now, created_at=now, **values, **extra)
    session.add(video)
    await session.flush()
    video.channel = channel
    return video


# ---------------------------------------------------------------- lists


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
    return shoal.state("videos.lists", lambda: ReadCache(max_entries=512, stamp=_write_generation))


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


# ---------------------------------------------------------------- changes


def _require_manager(user: User | None, video: Video) -> Viewer:
    viewer = Viewer.of(user)
    if not can_manage_video(viewer, video):
        raise Forbidden("Only the video's owner, a moderator or an admin may do this.", code="not_owner")
    return viewer


async def update_video(shoal: Shoal, ident: str, user: User | None, changes: dict[str, Any]) -> Video:
    """Apply ``changes`` (model attribute names) to a video the caller owns or moderates.

    404 when the caller cannot see the video, 403 ``not_owner`` when they can but may not
    edit it, 400 naming the field for a bad value. ``channel_id`` moves the video to
    another channel of the same account.
    """
    values = check_video_fields(changes)
    async with shoal.db.write() as session:
        video = await get_video_for(shoal, session, ident, user)
        _require_manager(user, video)
        channel_id = values.pop("channel_id", None)
        if channel_id is not None and channel_id != video.channel_id:
            target = await session.get(Actor, channel_id)
            if (
                target is None
                or target.kind != ActorKind.GROUP
                or not target.is_local
                or target.owner_id != video.channel.owner_id
            ):
                raise BadRequest(
                    "The video can only move to another channel of the same account.",
                    code="invalid_field",
                    field="channelId",
                )
            video.channel_id = target.id
        old_privacy = video.privacy
        for name, value in values.items():
            setattr(video, name, value)
        video.updated_at = utcnow()
        if values.get("privacy") in TOKEN_PRIVACIES:
            await drop_public_link(shoal, video.uuid)
    await access_changed(shoal, video.uuid)
    await shoal.ext.fire(shoal, "video_updated", video.id, old_privacy)
    return video


async def media_changed(shoal: Shoal, video_id: int) -> None:
    """Fire ``video_media_changed``: a video's media links changed (federation re-sends it)."""
    await shoal.ext.fire(shoal, "video_media_changed", video_id)


async def _set_hidden(shoal: Shoal, ident: str, user: User | None, hidden: bool, reason: str | None) -> None:
    if not Viewer.of(user).is_moderator:
        raise Forbidden("Only moderators and admins may do this.", code="insufficient_role")
    if reason is not None:
        reason = _text(reason, "reason", maximum=300)
    async with shoal.db.write() as session:
        video = await get_video_for(shoal, session, ident, user)
        video.hidden = hidden
        video.hidden_reason = reason if hidden else None
        video.updated_at = utcnow()
        if hidden:
            await drop_public_link(shoal, video.uuid)
    await access_changed(shoal, video.uuid)


async def hide_video(shoal: Shoal, ident: str, user: User | None, *, reason: str | None = None) -> None:
    """Hide a video from everyone but its owner and moderators (PeerTube's blacklist).

    Idempotent: hiding a hidden video only updates the reason.
    """
    await _set_hidden(shoal, ident, user, True, reason)


async def unhide_video(shoal: Shoal, ident: str, user: User | None) -> None:
    """Show a hidden video again (idempotent)."""
    await _set_hidden(shoal, ident, user, False, None)


# ---------------------------------------------------------------- deletion


def _storage_key(value: Any) -> str | None:
    if not isinstance(value, str) or "://" in value:
        return None
    try:
        return validate_key(value)
    except ValueError:
        return None


def stored_files(video: Video, renditions: Iterable[Rendition]) -> StoredFiles:
    """Every storage folder and key that belongs to ``video``."""
    prefixes = keys.video_folders(video.uuid)
    candidates: list[Any] = [video.source_key, video.thumbnail, video.preview]
    if isinstance(video.storyboard, dict):
        candidates.append(video.storyboard.get("key"))
    for rendition in renditions:
        candidates += [rendition.torrent_path, rendition.file_path, rendition.playlist_path]
    found: list[str] = []
    for candidate in candidates:
        key = _storage_key(candidate)
        if key and key not in found and not any(key.startswith(f"{p}/") for p in prefixes):
            found.append(key)
    return StoredFiles(prefixes, tuple(found))


async def purge_files(shoal: Shoal, files: Iterable[StoredFiles]) -> None:
    """Remove stored files; failures are logged, not raised (the rows are already gone)."""
    for group in files:
        for prefix in group.prefixes:
            try:
                await shoal.storage.delete_prefix(prefix)
            except (StorageError, OSError) as exc:
                log.warning("could not delete storage folder %s: %s", prefix, exc)
        for key in group.keys:
            try:
                await shoal.storage.delete(key)
            except (StorageError, OSError) as exc:
                log.warning("could not delete storage key %s: %s", key, exc)


async def delete_video(shoal: Shoal, ident: str, user: User | None) -> None:
    """Delete a video the caller owns or moderates: its row (renditions and comments go with
    it), then its files in storage once the deletion is committed."""
    async with shoal.db.write() as session:
        video = await get_video_for(shoal, session, ident, user)
        _require_manager(user, video)
        files = stored_files(video, await renditions_of(session, video))
        await drop_public_link(shoal, video.uuid)
        await session.execute(delete(Video).where(Video.id == video.id))
    await access_changed(shoal, video.uuid)
    await purge_files(shoal, [files])
    await shoal.ext.fire(shoal, "video_deleted", video)

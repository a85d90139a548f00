"""Videos: creation, lookup by any id form, details, edits, hiding, deletion.

Lists are :mod:`.video_lists`, the rules of the fields :mod:`.video_fields`. Who may see what
is decided in :mod:`.visibility`; this module only asks it. Functions that
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
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
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
from .files import access_changed
from .public_links import drop_public_link
from .video_fields import MAX_DB_INT, check_text, check_video_fields
from .visibility import (
    TOKEN_PRIVACIES,
    Viewer,
    can_manage_video,
    can_see_video,
)

log = logging.getLogger("shoal.videos")

DETAILS_CACHE_SECONDS = 2.0

_NUMERIC_ID = re.compile(r"^[0-9]{1,19}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_SHORT_UUID = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{1,22}$")

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
    kept until this process's next write, and at most ``DETAILS_CACHE_SECONDS`` for writes by
    other processes.
    """
    if user is not None:
        return await _load_details(shoal, ident, user)
    return await _details_cache(shoal).get(
        ident, lambda: _load_details(shoal, ident, None), ttl=DETAILS_CACHE_SECONDS
    )


def _details_cache(shoal: Shoal) -> ReadCache[str, VideoView]:
    return shoal.state("videos.details", lambda: ReadCache(max_entries=4096, stamp=write_generation))


def write_generation() -> int:
    """Committed write transactions in this process: the stamp of caches a write outdates."""
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
        reason = check_text(reason, "reason", maximum=300)
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

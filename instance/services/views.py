"""Views: counted once per viewer per video per window, buffered, flushed to the database in batches.

A view is recorded after a few seconds of playback (the player calls ``POST
/api/v1/videos/{id}/views``). The "already counted" marks and the pending counts live in
Redis in the scaled mode (shared by every web process, surviving restarts) and in memory in
the embedded mode, where pending counts are written to the database on shutdown. A chore
flushes pending counts into ``videos.views`` and ``video_view_days`` every
``views_flush_interval`` seconds.

A counted view of a remote video is also reported to its origin, which keeps the real count:
the ``remote_video_viewed`` event (``video_id``; federation sends the View) fires after it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from redis.exceptions import ResponseError
from sqlalchemy import func, select, update
from sqlalchemy.orm import joinedload

from ..core import Shoal
from ..models import Actor, User, Video, VideoViewDay
from .video_lists import Page, VideoFilters, filter_clauses
from .videos import reading
from .visibility import Viewer, listing_clause

log = logging.getLogger("shoal.views")


@dataclass
class _Memory:
    """The embedded mode's buffer: when each viewer was last counted, and pending counts."""

    seen: dict[tuple[int, str], float] = field(default_factory=dict)
    pending: dict[tuple[int, str], int] = field(default_factory=dict)


def _buffer(shoal: Shoal) -> _Memory:
    """This Shoal's buffer (a test process runs several)."""
    return shoal.state("views.memory", _Memory)


def viewer_key(user: User | None, ip: str) -> str:
    """Who is watching: the user, or a digest of the address for anonymous viewers."""
    if user is not None:
        return f"u{user.id}"
    return "ip" + hashlib.sha256(ip.encode()).hexdigest()[:24]


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def _key(shoal: Shoal, *parts: str) -> str:
    return ":".join((shoal.settings.redis_prefix, "views", *parts))


async def record_view(shoal: Shoal, video_id: int, viewer: str) -> bool:
    """Count a view unless this viewer was counted for this video within the window.

    Returns True when the view counted.
    """
    window = shoal.settings.views_window
    day = _today()
    if shoal.redis is not None:
        fresh = await shoal.redis.set(_key(shoal, "seen", str(video_id), viewer), b"1", nx=True, ex=window)
        if not fresh:
            return False
        await shoal.redis.hincrby(_key(shoal, "pending"), f"{video_id}:{day}", 1)
        return True
    buffer = _buffer(shoal)
    now = time.monotonic()
    last = buffer.seen.get((video_id, viewer))
    if last is not None and now - last < window:
        return False
    buffer.seen[(video_id, viewer)] = now
    buffer.pending[(video_id, day)] = buffer.pending.get((video_id, day), 0) + 1
    if len(buffer.seen) > 100_000:
        buffer.seen = {k: t for k, t in buffer.seen.items() if now - t < window}
    return True


async def _take_pending(shoal: Shoal) -> dict[tuple[int, str], int]:
    """Remove and return the pending counts (atomically, so no view is counted twice)."""
    if shoal.redis is None:
        buffer = _buffer(shoal)
        taken, buffer.pending = buffer.pending, {}
        return taken
    pending = _key(shoal, "pending")
    batch = _key(shoal, "flushing")
    # A batch left by a flush that died half-way is applied first: its counts are still owed.
    if not await shoal.redis.exists(batch):
        try:
            await shoal.redis.rename(pending, batch)
        except ResponseError:  # nothing pending: "no such key"
            return {}
    raw = await shoal.redis.hgetall(batch)
    out: dict[tuple[int, str], int] = {}
    for name, value in raw.items():
        video, _, day = (name.decode() if isinstance(name, bytes) else name).partition(":")
        out[(int(video), day)] = int(value)
    return out


async def _forget_batch(shoal: Shoal) -> None:
    if shoal.redis is not None:
        await shoal.redis.delete(_key(shoal, "flushing"))


async def _apply(shoal: Shoal, counts: dict[tuple[int, str], int]) -> None:
    totals: dict[int, int] = {}
    for (video_id, _), number in counts.items():
        totals[video_id] = totals.get(video_id, 0) + number
    async with shoal.db.write() as session:
        existing = set(await session.scalars(select(Video.id).where(Video.id.in_(list(totals)))))
        for video_id, number in totals.items():
            if video_id in existing:
                await session.execute(
                    update(Video).where(Video.id == video_id).values(views=Video.views + number)
                )
        for (video_id, day), number in counts.items():
            if video_id not in existing:
                continue
            when = date.fromisoformat(day)
            row = await session.scalar(
                select(VideoViewDay).where(VideoViewDay.video_id == video_id, VideoViewDay.day == when)
            )
            if row is None:
                session.add(VideoViewDay(video_id=video_id, day=when, views=number))
            else:
                row.views += number


async def flush_views(shoal: Shoal) -> int:
    """Write pending counts to ``videos.views`` and ``video_view_days``; returns how many views."""
    counts = await _take_pending(shoal)
    if not counts:
        return 0
    try:
        await _apply(shoal, counts)
    except Exception:
        if shoal.redis is None:  # put them back for the next flush
            buffer = _buffer(shoal)
            for key, number in counts.items():
                buffer.pending[key] = buffer.pending.get(key, 0) + number
        raise
    await _forget_batch(shoal)
    total = sum(counts.values())
    log.debug("flushed %d views of %d videos", total, len({v for v, _ in counts}))
    return total


async def trending_videos(shoal: Shoal, user: User | None, filters: VideoFilters) -> Page[Video]:
    """Videos the caller may list, ranked by views over the last ``trending_days`` days."""
    viewer = Viewer.of(user)
    since = datetime.now(UTC).date() - timedelta(days=shoal.settings.trending_days)
    recent = (
        select(VideoViewDay.video_id, func.sum(VideoViewDay.views).label("recent"))
        .where(VideoViewDay.day >= since)
        .group_by(VideoViewDay.video_id)
        .subquery()
    )
    where: list[Any] = [listing_clause(viewer)]
    where += filter_clauses(filters, viewer, sqlite=shoal.db.is_sqlite, owner=False)
    async with reading(shoal) as session:
        rows = await session.scalars(
            select(Video)
            .options(joinedload(Video.channel).joinedload(Actor.owner))
            .outerjoin(recent, recent.c.video_id == Video.id)
            .where(*where)
            .order_by(func.coalesce(recent.c.recent, 0).desc(), Video.views.desc(), Video.id.desc())
            .offset(filters.start)
            .limit(filters.count)
        )
        data = list(rows)
        total = await session.scalar(select(func.count(Video.id)).where(*where)) or 0
    return Page(total, data)


async def count_view(shoal: Shoal, ident: str, user: User | None, ip: str) -> bool:
    """``POST /videos/{id}/views``: record a view of a video the caller may see."""
    from .videos import get_video_for

    async with shoal.db.read() as session:
        video = await get_video_for(shoal, session, ident, user)
        video_id, remote = video.id, not video.is_local
    counted = await record_view(shoal, video_id, viewer_key(user, ip))
    if counted and remote:
        await shoal.ext.fire(shoal, "remote_video_viewed", video_id)
    return counted

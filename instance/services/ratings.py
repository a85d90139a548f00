"""Ratings: an account likes or dislikes a video; the counts live on the video row.

One :class:`VideoRate` per (account, video). Counts are recomputed from the rows of the
video in the same transaction, so they cannot drift. Federation hears about local
changes through the ``video_rated`` event (``account_id, video_id, old, new``, ratings
``like``/``dislike``/``none``), fired after commit.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..core import Shoal
from ..errors import BadRequest
from ..models import User, Video, VideoRate
from .videos import get_video_for, reading

log = logging.getLogger("shoal.ratings")

RATINGS = ("like", "dislike", "none")


async def recount(session: AsyncSession, video_id: int) -> tuple[int, int]:
    """Recompute ``likes``/``dislikes`` of a video from its rate rows; returns them."""
    rows = await session.execute(
        select(VideoRate.kind, func.count()).where(VideoRate.video_id == video_id).group_by(VideoRate.kind)
    )
    counts = {kind: n for kind, n in rows}
    video = await session.get(Video, video_id)
    likes, dislikes = counts.get("like", 0), counts.get("dislike", 0)
    if video is not None and video.is_local:
        video.likes, video.dislikes = likes, dislikes
    elif video is not None:
        # A remote video's counts come from its origin; local rates only move them.
        video.likes, video.dislikes = max(video.likes, likes), max(video.dislikes, dislikes)
    return likes, dislikes


async def set_rate(
    session: AsyncSession, account_id: int, video_id: int, rating: str, *, ap_id: str | None = None
) -> str:
    """Set an account's rating of a video in the caller's transaction; returns the old one."""
    if rating not in RATINGS:
        raise BadRequest("'rating' must be like, dislike or none.", code="invalid_field", field="rating")
    existing = await session.scalar(
        select(VideoRate).where(VideoRate.account_id == account_id, VideoRate.video_id == video_id)
    )
    old = existing.kind if existing is not None else "none"
    if rating == "none":
        if existing is not None:
            await session.delete(existing)
    elif existing is None:
        session.add(VideoRate(account_id=account_id, video_id=video_id, kind=rating, ap_id=ap_id))
    else:
        existing.kind = rating
        if ap_id:
            existing.ap_id = ap_id
    await session.flush()
    if old != rating:
        video = await session.get(Video, video_id)
        if video is not None and not video.is_local:
            # Remote: adjust the origin's counts by our change instead of recounting.
            if old == "like":
                video.likes = max(0, video.likes - 1)
            elif old == "dislike":
                video.dislikes = max(0, video.dislikes - 1)
            if rating == "like":
                video.likes += 1
            elif rating == "dislike":
                video.dislikes += 1
        else:
            await recount(session, video_id)
    return old


async def rate_video(shoal: Shoal, ident: str, user: User, rating: str) -> None:
    """``PUT /videos/{id}/rate``: like, dislike or clear the caller's rating."""
    async with shoal.db.write() as session:
        video = await get_video_for(shoal, session, ident, user)
        video_id = video.id
        old = await set_rate(session, user.account_id, video_id, rating)
    if old != rating:
        await shoal.ext.fire(shoal, "video_rated", user.account_id, video_id, old, rating)


async def my_rating(shoal: Shoal, ident: str, user: User) -> tuple[int, str]:
    """``(video id, rating)`` of the caller on a video they may see (``none`` when unrated)."""
    async with reading(shoal) as session:
        video = await get_video_for(shoal, session, ident, user)
        kind = await session.scalar(
            select(VideoRate.kind).where(
                VideoRate.account_id == user.account_id, VideoRate.video_id == video.id
            )
        )
        return video.id, kind or "none"

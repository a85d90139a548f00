"""Bringing remote videos in without waiting for deliveries, and keeping them fresh.

- When a Follow of ours is accepted, the followed actor's outbox is crawled for its recent
  videos (``Create`` with the Video, or ``Announce`` of a video URL), at most
  :data:`BACKFILL_ITEMS` items, one request at a time.
- A periodic chore re-fetches remote videos last fetched more than :data:`REFRESH_AFTER`
  ago (a 404/410 removes the local copy). ``state_changed_at`` of a remote video is the
  time it was last fetched.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from instance.core import Shoal
from instance.models import Actor, Video, VideoState, utcnow

from .videos import InvalidObject, delete_remote_video, from_ap, get_or_fetch_video

log = logging.getLogger("shoal.federation.backfill")

BACKFILL_ITEMS = 50
MAX_PAGES = 20
REFRESH_AFTER = timedelta(days=2)
REFRESH_BATCH = 20
REFRESH_INTERVAL = 600.0


def _host(url: str) -> str:
    return urlsplit(url).netloc.lower()


async def _items(shoal: Shoal, url: str) -> list[dict[str, Any]]:
    """Up to :data:`BACKFILL_ITEMS` items of an (Ordered)Collection, following pages."""
    from .http import fetch_json

    doc = await fetch_json(shoal, url)
    items: list[Any] = []
    pages = 0
    while True:
        items += doc.get("orderedItems") or doc.get("items") or []
        if len(items) >= BACKFILL_ITEMS or pages >= MAX_PAGES:
            break
        following = doc.get("first") if pages == 0 and "first" in doc else doc.get("next")
        if isinstance(following, dict) and following.get("type", "").endswith("Page"):
            doc, pages = following, pages + 1
            continue
        if not isinstance(following, str) or _host(following) != _host(url):
            break
        doc, pages = await fetch_json(shoal, following), pages + 1
    return [item for item in items[:BACKFILL_ITEMS] if isinstance(item, dict)]


async def backfill_outbox(shoal: Shoal, target: Actor) -> int:
    """Store the recent videos of ``target``'s outbox; returns how many were stored."""
    if target.is_local or not target.outbox_url:
        return 0
    stored = 0
    try:
        items = await _items(shoal, target.outbox_url)
    except Exception as exc:
        log.info("outbox of %s not crawled: %s", target.ap_id, exc)
        return 0
    origin = _host(target.ap_id)
    for item in items:
        obj = item.get("object")
        try:
            if item.get("type") == "Create" and isinstance(obj, dict) and obj.get("type") == "Video":
                if _host(str(obj.get("id", ""))) != origin:
                    continue
                await from_ap(shoal, obj)
            elif item.get("type") in ("Create", "Announce") and isinstance(obj, str):
                await get_or_fetch_video(shoal, obj)
            else:
                continue
            stored += 1
        except InvalidObject as exc:
            log.info("outbox item of %s skipped: %s", target.ap_id, exc)
        except Exception as exc:
            log.info("outbox item of %s failed: %s", target.ap_id, exc)
    log.info("backfilled %d videos from %s", stored, target.ap_id)
    return stored


async def on_follow_accepted(shoal: Shoal, follower: Actor, target: Actor) -> None:
    """``ON_FOLLOW_ACCEPTED`` hook: crawl the followed actor's outbox."""
    await backfill_outbox(shoal, target)


async def refresh_remote_videos(shoal: Shoal) -> int:
    """Re-fetch a batch of remote videos not fetched for :data:`REFRESH_AFTER`; returns how many."""
    from .errors import FetchError, Gone

    cutoff = utcnow() - REFRESH_AFTER
    async with shoal.db.read() as session:
        urls = list(
            await session.scalars(
                select(Video.remote_url)
                .where(Video.remote_url.is_not(None), Video.state_changed_at < cutoff)
                .order_by(Video.state_changed_at)
                .limit(REFRESH_BATCH)
            )
        )
    done = 0
    for url in urls:
        assert url is not None
        try:
            await get_or_fetch_video(shoal, url, refresh=True)
        except Gone:
            await delete_remote_video(shoal, url)
        except (FetchError, InvalidObject) as exc:
            log.info("refresh of %s failed: %s", url, exc)
        await _touch(shoal, url)
        done += 1
    return done


async def _touch(shoal: Shoal, url: str) -> None:
    async with shoal.db.write() as session:
        video = await session.scalar(select(Video).where(Video.remote_url == url))
        if video is not None:
            video.state_changed_at = utcnow()
            video.state = VideoState.PUBLISHED


def install() -> None:
    """Register the follow hook and the refresh chore (idempotent)."""
    from instance.app import PERIODIC, Periodic

    from .routing import ON_FOLLOW_ACCEPTED

    if on_follow_accepted not in ON_FOLLOW_ACCEPTED:
        ON_FOLLOW_ACCEPTED.append(on_follow_accepted)
    if not any(chore.name == "refresh_remote_videos" for chore in PERIODIC):
        PERIODIC.append(Periodic("refresh_remote_videos", REFRESH_INTERVAL, refresh_remote_videos))

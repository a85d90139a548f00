"""Bringing remote videos in without waiting for deliveries, and keeping them fresh.

- When a Follow of ours is accepted, the followed actor's outbox is crawled for its recent
  videos (``Create`` with the Video, or ``Announce`` of a video URL), at most
  :data:`BACKFILL_ITEMS` items, one request at a time.
- A remote video seen for the first time (delivered, crawled, resolved by URL) has its
  ``comments`` collection crawled by the durable ``fetch_comments`` job, at most
  :data:`COMMENTS_ITEMS` comments from :data:`COMMENTS_PAGES` pages, so the comments it
  already has appear here too (later ones are delivered).
- A periodic chore re-fetches remote videos last fetched more than :data:`REFRESH_AFTER`
  ago (a 404/410 removes the local copy). ``state_changed_at`` of a remote video is the
  time it was last fetched.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from instance.core import Shoal
from instance.jobs import TryAgainLater
from instance.models import Actor, Video, VideoState, WorkItem, utcnow

from .ap import host_of
from .video_parse import InvalidObject
from .video_store import delete_remote_video, from_ap, get_or_fetch_video

log = logging.getLogger("shoal.federation.backfill")

BACKFILL_ITEMS = 50
MAX_PAGES = 20
REFRESH_AFTER = timedelta(days=2)
REFRESH_BATCH = 20
REFRESH_INTERVAL = 600.0
COMMENTS_ITEMS = 100
COMMENTS_PAGES = 5


async def _items(
    shoal: Shoal, url: str, *, limit: int = BACKFILL_ITEMS, max_pages: int = MAX_PAGES
) -> list[Any]:
    """Up to ``limit`` items of an (Ordered)Collection, following at most ``max_pages`` pages
    on the collection's own host."""
    from .http import fetch_json

    doc = await fetch_json(shoal, url)
    items: list[Any] = []
    pages = 0
    while True:
        found = doc.get("orderedItems") or doc.get("items") or []
        items += found if isinstance(found, list) else [found]
        if len(items) >= limit or pages >= max_pages:
            break
        following = doc.get("first") if pages == 0 and "first" in doc else doc.get("next")
        if isinstance(following, dict) and following.get("type", "").endswith("Page"):
            doc, pages = following, pages + 1
            continue
        if not isinstance(following, str) or host_of(following) != host_of(url):
            break
        doc, pages = await fetch_json(shoal, following), pages + 1
    return items[:limit]


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
    origin = host_of(target.ap_id)
    for item in items:
        if not isinstance(item, dict):
            continue
        obj = item.get("object")
        try:
            if item.get("type") == "Create" and isinstance(obj, dict) and obj.get("type") == "Video":
                if host_of(str(obj.get("id", ""))) != origin:
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
    """Follow-accepted hook (installed by :func:`federation.install`): crawl the followed actor's outbox."""
    await backfill_outbox(shoal, target)


async def fetch_comments(shoal: Shoal, video_id: int, url: str) -> int:
    """Store the first comments of a remote video's ``comments`` collection; returns how many.

    Items are comment URLs (PeerTube, Shoal) or embedded Notes; a Note embedded by another
    host than its own is fetched from its origin instead of being trusted.
    """
    from .errors import FetchError
    from .http import fetch_json
    from .note_store import store_note

    async with shoal.db.read() as session:
        if await session.get(Video, video_id) is None:
            return 0
    stored = 0
    for item in await _items(shoal, url, limit=COMMENTS_ITEMS, max_pages=COMMENTS_PAGES):
        note_url = item if isinstance(item, str) else item.get("id") if isinstance(item, dict) else None
        if not isinstance(note_url, str):
            continue
        try:
            if isinstance(item, dict) and host_of(note_url) == host_of(url):
                doc = item
            else:
                doc = await fetch_json(shoal, note_url)
            if doc.get("type") != "Note":
                continue
            comment = await store_note(shoal, doc)
        except (FetchError, InvalidObject) as exc:
            log.info("comment %s of video %s skipped: %s", note_url, video_id, exc)
            continue
        stored += comment.video_id == video_id
    log.info("fetched %d comments of video %s from %s", stored, video_id, url)
    return stored


async def handle_fetch_comments(shoal: Shoal, item: WorkItem) -> None:
    """Job ``fetch_comments``: crawl one remote video's comments (idempotent: stored by id)."""
    from .errors import FetchError

    try:
        await fetch_comments(shoal, int(item.subject), item.payload["url"])
    except FetchError as exc:
        raise TryAgainLater(f"{exc.url}: {exc.reason}") from None




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

"""Remote videos stored here: metadata only, every media URL absolute and pointing at the
origin, never re-transcoded.

:func:`store_remote_video` writes a parsed video (:mod:`federation.video_parse`) with its
renditions; :func:`from_ap` parses, resolves the channel and stores, and queues the crawl of a
new video's comments (the ``fetch_comments`` job, run by :mod:`federation.backfill`);
:func:`get_or_fetch_video` is the entry point used by inbox handlers, comments, search and
backfill.
"""

from __future__ import annotations

import logging
import uuid as uuid_lib
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from instance.core import Shoal
from instance.jobs import submit
from instance.models import Actor, ActorKind, Rendition, Video, VideoState, utcnow

from .ap import host_of, is_local_url, is_url
from .video_parse import InvalidObject, ParsedVideo, int_of, parse_date, parse_video

log = logging.getLogger("shoal.federation.videos")

FETCH_COMMENTS = "fetch_comments"


async def video_by_url(session: AsyncSession, shoal: Shoal, url: str) -> Video | None:
    """The video (local or remote) an ActivityPub URL names, channel and owner loaded."""
    query = select(Video).options(joinedload(Video.channel).joinedload(Actor.owner))
    base = shoal.settings.public_url.rstrip("/") + "/"
    if url.startswith(base):
        path = urlsplit(url).path
        for prefix in ("/videos/watch/", "/w/"):
            if path.startswith(prefix):
                ident = path.removeprefix(prefix).split("/")[0]
                try:
                    return await session.scalar(
                        query.where(Video.uuid == str(uuid_lib.UUID(ident)), Video.remote_url.is_(None))
                    )
                except ValueError:
                    return None
        return None
    return await session.scalar(query.where(Video.remote_url == url))


def _stored_updated(video: Video) -> datetime | None:
    # The origin's own ``updated`` of the version stored (our updated_at moves with local
    # counters, and clocks differ between hosts).
    return parse_date(video.remote_data.get("updated")) if isinstance(video.remote_data, dict) else None


async def store_remote_video(shoal: Shoal, parsed: ParsedVideo, channel: Actor, raw: dict[str, Any]) -> Video:
    """Insert or refresh the remote video ``parsed`` in ``channel``; renditions replaced.

    A UUID already used by another video (local, or from another origin) is refused; a
    version older (``updated``) than the stored one changes nothing.
    """
    if channel.is_local or channel.kind != ActorKind.GROUP:
        raise InvalidObject("the channel of a remote video must be a remote Group")
    if host_of(channel.ap_id) != host_of(parsed.remote_url):
        raise InvalidObject("the video and its channel are on different hosts")
    now = utcnow()
    updated, stale = parse_date(raw.get("updated")), False
    async with shoal.db.write() as session:
        # Locked until commit (PostgreSQL; SQLite's writers take turns anyway): Updates are
        # applied by concurrent jobs, and two reading the same stored version would both pass
        # the "not older" check below, the older one sometimes committing last.
        video = await session.scalar(
            select(Video).where(Video.remote_url == parsed.remote_url).with_for_update()
        )
        if video is None:
            taken = await session.scalar(select(Video.id).where(Video.uuid == parsed.uuid))
            if taken is not None:
                raise InvalidObject(f"uuid {parsed.uuid} is already used by another video")
            video = Video(
                uuid=parsed.uuid,
                remote_url=parsed.remote_url,
                channel_id=channel.id,
                state=VideoState.PUBLISHED,
                state_changed_at=now,
                progress=100,
                created_at=parsed.fields["published_at"],
                **parsed.fields,
            )
            session.add(video)
        elif updated is not None and updated < (_stored_updated(video) or updated):
            # Updates are applied by concurrent jobs and may arrive out of order: an older
            # version never overwrites a newer one.
            log.info("older version of %s (updated %s) ignored", parsed.remote_url, raw.get("updated"))
            stale = True
        else:
            for name, value in parsed.fields.items():
                setattr(video, name, value)
            video.channel_id = channel.id
            video.state_changed_at = now
        if not stale:
            video.remote_data = raw
            video.updated_at = updated or now
            await session.flush()
            await session.execute(delete(Rendition).where(Rendition.video_id == video.id))
            for rung in parsed.renditions:
                session.add(Rendition(video_id=video.id, **rung))
        video_id = video.id
    async with shoal.db.read() as session:
        stored = await session.scalar(
            select(Video)
            .options(joinedload(Video.channel).joinedload(Actor.owner))
            .where(Video.id == video_id)
        )
        session.expunge_all()
    assert stored is not None
    return stored


async def from_ap(shoal: Shoal, doc: dict[str, Any], *, fetched_from: str | None = None) -> Video:
    """Store (or refresh) the remote video ``doc``; its channel is resolved (fetched if unknown).

    A video new here gets its existing comments crawled (:func:`queue_comments`).
    """
    from .actors import resolve_actor

    parsed = parse_video(doc, fetched_from=fetched_from)
    if is_local_url(shoal, parsed.remote_url):
        raise InvalidObject("a remote instance cannot create or update a video of ours")
    channel = await resolve_actor(shoal, parsed.channel_url)
    async with shoal.db.read() as session:
        known = await session.scalar(select(Video.id).where(Video.remote_url == parsed.remote_url))
    stored = await store_remote_video(shoal, parsed, channel, doc)
    if known is None:
        await queue_comments(shoal, stored)
    return stored


async def queue_comments(shoal: Shoal, video: Video) -> None:
    """Queue the crawl of a newly stored remote video's comments (once per video): the
    ``fetch_comments`` job, which :mod:`federation.backfill` runs."""
    raw = video.remote_data or {}
    url = raw.get("comments") if isinstance(raw, dict) else None
    if video.is_local or not isinstance(url, str) or host_of(url) != host_of(video.remote_url or ""):
        return
    if not video.comments_enabled:
        return
    await submit(
        shoal, FETCH_COMMENTS, str(video.id), payload={"url": url}, dedupe_key=f"{FETCH_COMMENTS}:{video.id}"
    )


async def get_or_fetch_video(shoal: Shoal, url: str, *, refresh: bool = False) -> Video:
    """The video an ActivityPub URL names: from the database, else fetched from its origin.

    Raises :class:`~federation.errors.FetchError` when it cannot be fetched and
    :class:`InvalidObject` when the document is not an acceptable Video.
    """
    from .errors import Gone
    from .http import fetch_json

    async with shoal.db.read() as session:
        video = await video_by_url(session, shoal, url)
        if video is not None:
            session.expunge_all()
    if video is not None and (video.is_local or not refresh):
        return video
    if is_local_url(shoal, url):
        raise Gone(url, "no such local video")
    doc = await fetch_json(shoal, url)
    real = doc.get("id")
    if isinstance(real, str) and real != url and video is None:
        async with shoal.db.read() as session:
            known = await video_by_url(session, shoal, real)
            if known is not None:
                session.expunge_all()
                return known
    stored = await from_ap(shoal, doc, fetched_from=url)
    await sync_rates(shoal, stored, doc)
    return stored


async def sync_rates(shoal: Shoal, video: Video, doc: dict[str, Any]) -> None:
    """Copy the origin's like and dislike counts (its collections' ``totalItems``), best effort."""
    from .errors import FetchError
    from .http import fetch_json

    counts: dict[str, int] = {}
    for key in ("likes", "dislikes"):
        url = doc.get(key)
        if not is_url(url) or host_of(url) != host_of(video.remote_url or ""):
            continue
        try:
            collection = await fetch_json(shoal, url)
        except FetchError as exc:
            log.info("%s of %s not fetched: %s", key, video.remote_url, exc)
            continue
        total = int_of(collection.get("totalItems"))
        if total is not None and total >= 0:
            counts[key] = total
    if counts:
        async with shoal.db.write() as session:
            await session.execute(update(Video).where(Video.id == video.id).values(**counts))
        video.likes, video.dislikes = counts.get("likes", video.likes), counts.get("dislikes", video.dislikes)


async def delete_remote_video(shoal: Shoal, url: str, *, host: str | None = None) -> bool:
    """Remove a remote video (its comments, ratings and renditions cascade). ``host``: only if
    the video lives there (the sender's host). True when something was removed."""
    async with shoal.db.write() as session:
        video = await session.scalar(select(Video).where(Video.remote_url == url))
        if video is None:
            return False
        if host is not None and host_of(url) != host.lower():
            return False
        await session.execute(delete(Video).where(Video.id == video.id))
    return True

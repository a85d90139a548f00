"""Inbox handlers for content: videos, comments, ratings, shares, views and abuse reports.

Routed by :func:`install_routes` (called from :func:`federation.install`, per Shoal). Each
handler gets a verified, stored sender and applies the activity idempotently; a remote
instance can only change what lives on its host (PeerTube's rule: nobody remote deletes or
edits our objects).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, select, update

from instance.core import Shoal
from instance.models import AbuseReport, Actor, Video, VideoRate, VideoShare
from instance.services.ratings import set_rate

from .ap import host_of, id_of, same_host
from .tables import Tables
from .video_parse import InvalidObject
from .video_store import delete_remote_video, from_ap, get_or_fetch_video, video_by_url
from .videos import open_to_remote

log = logging.getLogger("shoal.federation.activities")


async def _local_or_known_video(shoal: Shoal, url: str | None) -> Video | None:
    """The video ``url`` names when remote actors may interact with it (:func:`open_to_remote`)."""
    if not url:
        return None
    async with shoal.db.read() as session:
        video = await video_by_url(session, shoal, url)
        if video is not None:
            session.expunge_all()
    return video if video is not None and open_to_remote(video) else None


# ---------------------------------------------------------------- videos


async def on_create_video(shoal: Shoal, activity: dict[str, Any], actor: Actor) -> None:
    """Create/Update Video: store or refresh the remote video (its host must be the sender's)."""
    obj = activity.get("object")
    if not isinstance(obj, dict) or not same_host(actor.ap_id, id_of(obj)):
        log.info("refusing %s of a video not on %s", activity.get("type"), actor.ap_id)
        return
    try:
        video = await from_ap(shoal, obj)
    except InvalidObject as exc:
        log.info("invalid video %s from %s: %s", id_of(obj), actor.ap_id, exc)
        return
    log.info("stored remote video %s (%s)", video.remote_url, video.uuid)


async def on_delete(shoal: Shoal, activity: dict[str, Any], actor: Actor) -> None:
    """Delete of a video, a comment (URL or Tombstone) or of the sender itself."""
    from .note_store import tombstone_comment

    url = id_of(activity.get("object"))
    if not url:
        return
    if url == actor.ap_id:
        async with shoal.db.write() as session:
            await session.execute(delete(Actor).where(Actor.id == actor.id, Actor.host.is_not(None)))
        log.info("remote actor %s deleted itself", url)
        return
    if await delete_remote_video(shoal, url, host=host_of(actor.ap_id)):
        log.info("remote video %s deleted", url)
        return
    comment = await tombstone_comment(shoal, url, actor)
    if comment is not None:
        await forward_to_video_audience(shoal, activity, comment.video_id, actor)


# ---------------------------------------------------------------- comments


async def on_create_note(shoal: Shoal, activity: dict[str, Any], actor: Actor) -> None:
    """A comment (PeerTube Note, Mastodon reply); forwarded to our video's audience when ours."""
    from .note_store import store_note

    obj = activity.get("object")
    if not isinstance(obj, dict):
        return
    try:
        comment = await store_note(shoal, obj, author=actor)
    except InvalidObject as exc:
        log.info("invalid note %s from %s: %s", id_of(obj), actor.ap_id, exc)
        return
    if activity.get("type") == "Create":
        await forward_to_video_audience(shoal, activity, comment.video_id, actor)


async def forward_to_video_audience(
    shoal: Shoal, activity: dict[str, Any], video_id: int, sender: Actor
) -> None:
    """Forward a received interaction with one of our public videos to the video's followers
    (Mastodon followers would not hear of it otherwise), signed by the video's account.

    Never back to the sender's instance: PeerTube answers 409 to its own activities.
    """
    from .delivery import deliver
    from .fanout import account_of, load_video, video_recipients
    from .videos import federates

    loaded = await load_video(shoal, video_id)
    if loaded is None or not federates(loaded[0]):
        return
    video = loaded[0]
    recipients = await video_recipients(shoal, video)
    async with shoal.db.write() as session:
        signer = await session.get(Actor, account_of(video).id)
        if signer is not None:
            await deliver(
                shoal, session, activity, signer=signer, recipients=recipients, skip_hosts=[sender.host or ""]
            )


# ---------------------------------------------------------------- ratings


async def _rate(shoal: Shoal, actor: Actor, video_url: str | None, kind: str, ap_id: str | None) -> None:
    video = await _local_or_known_video(shoal, video_url)
    if video is None:
        return
    async with shoal.db.write() as session:
        await set_rate(session, actor.id, video.id, kind, ap_id=ap_id)


async def on_like(shoal: Shoal, activity: dict[str, Any], actor: Actor) -> None:
    await _rate(shoal, actor, id_of(activity.get("object")), "like", id_of(activity))


async def on_dislike(shoal: Shoal, activity: dict[str, Any], actor: Actor) -> None:
    await _rate(shoal, actor, id_of(activity.get("object")), "dislike", id_of(activity))


async def on_undo_rate(shoal: Shoal, activity: dict[str, Any], actor: Actor) -> None:
    """Undo Like/Dislike: clear the sender's rating when it is the undone kind."""
    inner = activity.get("object")
    if not isinstance(inner, dict):
        return
    video = await _local_or_known_video(shoal, id_of(inner.get("object")))
    if video is None:
        return
    kind = "like" if inner.get("type") == "Like" else "dislike"
    async with shoal.db.write() as session:
        current = await session.scalar(
            select(VideoRate.kind).where(VideoRate.account_id == actor.id, VideoRate.video_id == video.id)
        )
        if current == kind:
            await set_rate(session, actor.id, video.id, "none")


# ---------------------------------------------------------------- shares, views, flags


async def on_announce(shoal: Shoal, activity: dict[str, Any], actor: Actor) -> None:
    """A share: the video is fetched when unknown (instance follows bring videos this way)."""
    url = id_of(activity.get("object"))
    share_id = id_of(activity)
    if not url or not share_id:
        return
    try:
        video = await get_or_fetch_video(shoal, url)
    except Exception as exc:
        log.info("announce %s of %s dropped: %s", share_id, url, exc)
        return
    if not open_to_remote(video):
        log.info("announce %s of %s dropped: not open to other instances", share_id, url)
        return
    async with shoal.db.write() as session:
        known = await session.scalar(
            select(VideoShare).where(VideoShare.actor_id == actor.id, VideoShare.video_id == video.id)
        )
        if known is None:
            session.add(VideoShare(actor_id=actor.id, video_id=video.id, ap_id=share_id))


async def on_undo_announce(shoal: Shoal, activity: dict[str, Any], actor: Actor) -> None:
    inner = activity.get("object")
    share_id = id_of(inner)
    async with shoal.db.write() as session:
        if share_id:
            await session.execute(
                delete(VideoShare).where(VideoShare.ap_id == share_id, VideoShare.actor_id == actor.id)
            )


async def on_view(shoal: Shoal, activity: dict[str, Any], actor: Actor) -> None:
    """A view of one of our videos counts once; a remote origin's total refreshes its copy."""
    video = await _local_or_known_video(shoal, id_of(activity.get("object")))
    if video is None:
        return
    result = activity.get("result")
    if video.is_local:
        if not (activity.get("expires") or activity.get("expiration")):  # else a "watching" ping
            from instance.services.views import record_view

            # PeerTube sends one View per viewer it counted, all from its instance actor, with
            # fresh ids: nothing tells its viewers apart, and an instance could send any number.
            # So a remote instance counts as one viewer per window, as a local viewer does.
            await record_view(shoal, video.id, f"ap:{host_of(actor.ap_id)}")
        return
    async with shoal.db.write() as session:
        if isinstance(result, dict) and same_host(actor.ap_id, video.remote_url):
            count = result.get("userInteractionCount")
            if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
                await session.execute(update(Video).where(Video.id == video.id).values(views=count))


async def on_flag(shoal: Shoal, activity: dict[str, Any], actor: Actor) -> None:
    """An abuse report about one of our videos, comments or accounts."""
    from .note_store import comment_by_url

    objects = activity.get("object")
    objects = objects if isinstance(objects, list) else [objects]
    reason = activity.get("content") if isinstance(activity.get("content"), str) else ""
    report = AbuseReport(reporter_id=actor.id, reason=(reason or "")[:3000], ap_id=id_of(activity))
    for obj in objects:
        url = id_of(obj)
        if not url:
            continue
        # A comment's URL extends its video's (``<video>/comments/<id>``): comments first.
        async with shoal.db.read() as session:
            comment = await comment_by_url(shoal, session, url)
            target = await session.scalar(select(Actor.id).where(Actor.ap_id == url))
        if comment is not None:
            report.comment_id, report.video_id = comment.id, report.video_id or comment.video_id
            continue
        if target is not None:
            report.account_id = target
            continue
        video = await _local_or_known_video(shoal, url)
        if video is not None:
            report.video_id = video.id
    if report.video_id is None and report.comment_id is None and report.account_id is None:
        return
    async with shoal.db.write() as session:
        if report.ap_id and await session.scalar(
            select(AbuseReport.id).where(AbuseReport.ap_id == report.ap_id)
        ):
            return
        session.add(report)


def install_routes(tables: Tables) -> None:
    """Route the content activities (videos, comments, ratings, shares, views, reports) here."""
    for kind in ("Create", "Update"):
        tables.route(kind, on_create_video, object_type="Video")
        tables.route(kind, on_create_note, object_type="Note")
    tables.route("Delete", on_delete)
    for object_type in ("Video", "Note", "Tombstone"):
        tables.route("Delete", on_delete, object_type=object_type)
    tables.route("Like", on_like)
    tables.route("Dislike", on_dislike)
    tables.route("Undo", on_undo_rate, object_type="Like")
    tables.route("Undo", on_undo_rate, object_type="Dislike")
    tables.route("Announce", on_announce)
    tables.route("Undo", on_undo_announce, object_type="Announce")
    tables.route("View", on_view)
    tables.route("Flag", on_flag)

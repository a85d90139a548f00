"""Sending content: Create/Update/Delete of videos, comments as Notes, likes and dislikes.

The handlers of the core's events (:data:`HANDLERS`, installed into every Shoal's extension
surface by :func:`federation.install`): ``video_published`` (Create), ``video_updated``
(Update, or Create/Delete when the privacy crosses the line between federated and not),
``video_deleted`` (Delete), ``video_media_changed`` (Update once torrents are made), comments
created and deleted, ratings, ``remote_video_viewed`` (a View to the origin of a remote
video), ``abuse_reported`` (a Flag to the reported content's instance). Only public and
unlisted published videos ever leave the instance.

Recipients of a video's activities: the followers of its account, of its channel and of
the instance's Application actor (instance follows). A comment goes to the commenter's
followers, the followers of the video's actors when the video is ours, and the video's
origin and the parent comments' authors when they are remote.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from instance.core import Shoal
from instance.models import Actor, Comment, Privacy, Video, VideoShare, utcnow
from instance.services.videos import renditions_of
from instance.services.visibility import SHARED_PRIVACIES
from instance.web.responses import iso

from .context import PUBLIC, with_context
from .videos import federates, followers_urls, to_ap, video_ap_id

log = logging.getLogger("shoal.federation.fanout")

async def load_video(shoal: Shoal, video_id: int) -> tuple[Video, list[Any]] | None:
    """A video with channel, owner and renditions, detached; None when gone."""
    async with shoal.db.read() as session:
        video = await session.scalar(
            select(Video)
            .options(joinedload(Video.channel).joinedload(Actor.owner))
            .where(Video.id == video_id)
        )
        if video is None:
            return None
        renditions = await renditions_of(session, video)
        session.expunge_all()
    return video, renditions


def account_of(video: Video) -> Actor:
    return video.channel.owner or video.channel


def create_activity(
    shoal: Shoal, video: Video, renditions: list[Any], *, again: bool = False
) -> dict[str, Any]:
    """``Create`` of a local video, id ``<video>/activity``, actor its account.

    ``again``: the video is shown again after being withdrawn; receivers apply an activity id
    once, so this Create gets its own id, ``<video>/activity/<date>``.
    """
    obj = to_ap(shoal, video, renditions, context=False)
    return with_context(
        {
            "type": "Create",
            "id": f"{obj['id']}/activity" + (f"/{iso(utcnow())}" if again else ""),
            "actor": account_of(video).ap_id,
            "object": obj,
            "to": obj["to"],
            "cc": obj["cc"],
        },
        "Video",
    )


def update_activity(shoal: Shoal, video: Video, renditions: list[Any]) -> dict[str, Any]:
    """``Update`` of a local video, id ``<video>/updates/<date>``."""
    obj = to_ap(shoal, video, renditions, context=False)
    return with_context(
        {
            "type": "Update",
            "id": f"{obj['id']}/updates/{iso(utcnow())}",
            "actor": account_of(video).ap_id,
            "object": obj,
            "to": obj["to"],
            "cc": obj["cc"],
        },
        "Video",
    )


def delete_activity(shoal: Shoal, video: Video, *, withdrawn: bool = False) -> dict[str, Any]:
    """``Delete`` of a video by URL, id ``<video>/delete`` (``<video>/delete/<date>`` when it is
    only withdrawn — made private or internal — as that may happen more than once)."""
    vid = video_ap_id(shoal, video)
    return with_context(
        {
            "type": "Delete",
            "id": f"{vid}/delete" + (f"/{iso(utcnow())}" if withdrawn else ""),
            "actor": account_of(video).ap_id,
            "object": vid,
            "to": [PUBLIC, *followers_urls(video.channel, video.channel.owner)],
            "cc": [],
        },
        "Video",
    )


async def video_recipients(shoal: Shoal, video: Video) -> list[Any]:
    """Followers of the video's account, channel and the Application actor."""
    from .delivery import followers_of
    from .instance_actor import application_actor

    app_actor = await application_actor(shoal)
    return [followers_of(video.channel), followers_of(account_of(video)), followers_of(app_actor)]


async def send_video(shoal: Shoal, video: Video, activity: dict[str, Any]) -> None:
    """Queue ``activity`` for the video's audience, signed by its account."""
    from .delivery import deliver

    recipients = await video_recipients(shoal, video)
    async with shoal.db.write() as session:
        signer = await session.get(Actor, account_of(video).id)
        assert signer is not None
        await deliver(shoal, session, activity, signer=signer, recipients=recipients)


def announce_activity(shoal: Shoal, video: Video, actor: Actor) -> dict[str, Any]:
    """``Announce`` of a local video by one of our actors (its channel, the Application actor),
    id ``<video>/announces/<actor id>``: how Mastodon followers of a channel see its videos."""
    vid = video_ap_id(shoal, video)
    return with_context(
        {
            "type": "Announce",
            "id": f"{vid}/announces/{actor.id}",
            "actor": actor.ap_id,
            "object": vid,
            "to": [PUBLIC, *followers_urls(actor, video.channel, video.channel.owner)],
            "cc": [],
        }
    )


async def announce_video(shoal: Shoal, video: Video) -> None:
    """The channel and the Application actor share a public video with their followers (and the
    shares are recorded, for the video's ``shares`` collection)."""
    from .delivery import deliver, followers_of
    from .instance_actor import application_actor

    if video.privacy != Privacy.PUBLIC:
        return
    app_actor = await application_actor(shoal)
    async with shoal.db.write() as session:
        for actor_id in (video.channel_id, app_actor.id):
            actor = await session.get(Actor, actor_id)
            if actor is None:
                continue
            activity = announce_activity(shoal, video, actor)
            known = await session.scalar(select(VideoShare.id).where(VideoShare.ap_id == activity["id"]))
            if known is None:
                session.add(VideoShare(actor_id=actor.id, video_id=video.id, ap_id=activity["id"]))
            await deliver(shoal, session, activity, signer=actor, recipients=[followers_of(actor)])


# ---------------------------------------------------------------- video hooks


async def on_publish(shoal: Shoal, video_id: int) -> None:
    """A video finished processing: send its Create when it federates."""
    loaded = await load_video(shoal, video_id)
    if loaded is None or not federates(loaded[0]):
        return
    await send_video(shoal, loaded[0], create_activity(shoal, *loaded))
    await announce_video(shoal, loaded[0])


async def on_update(shoal: Shoal, video_id: int, old_privacy: int | None = None, *_: Any) -> None:
    """A video was edited: Update (or Create when it just became public/unlisted, Delete when it
    just became private/internal)."""
    loaded = await load_video(shoal, video_id)
    if loaded is None or not loaded[0].is_local:
        return
    video, renditions = loaded
    was_federated = old_privacy in SHARED_PRIVACIES if old_privacy is not None else True
    if federates(video):
        if was_federated:
            activity = update_activity(shoal, video, renditions)
        else:
            activity = create_activity(shoal, video, renditions, again=True)
        await send_video(shoal, video, activity)
        if old_privacy is not None and old_privacy != Privacy.PUBLIC:
            await announce_video(shoal, video)
    elif was_federated and video.privacy not in SHARED_PRIVACIES:
        await send_video(shoal, video, delete_activity(shoal, video, withdrawn=True))


async def on_media_changed(shoal: Shoal, video_id: int) -> None:
    """A video's torrents were made or removed: an Update carries the new Infohash tags and
    torrent/magnet links to followers (the Create went out before P2P had made them)."""
    loaded = await load_video(shoal, video_id)
    if loaded is None or not loaded[0].is_local or not federates(loaded[0]):
        return
    await send_video(shoal, loaded[0], update_activity(shoal, *loaded))


async def on_delete(shoal: Shoal, video: Video) -> None:
    """A local video was deleted: send Delete when it had been federated."""
    if not video.is_local or video.privacy not in SHARED_PRIVACIES or video.published_at is None:
        return
    await send_video(shoal, video, delete_activity(shoal, video))


# ---------------------------------------------------------------- comments


async def comment_recipients(shoal: Shoal, comment: Comment, ctx: Any) -> list[Any]:
    """Who hears about a comment: see the module docstring."""
    from .delivery import followers_of

    recipients: list[Any] = []
    if ctx.author is not None:
        recipients.append(followers_of(ctx.author))
    video = ctx.video
    if video.is_local:
        recipients += await video_recipients(shoal, video)
    else:
        recipients += [video.channel, account_of(video)]
    recipients += [actor for actor in ctx.mentions if not actor.is_local]
    return recipients


async def send_comment(shoal: Shoal, comment_id: int, kind: str) -> None:
    """Create (or Delete, with a Tombstone) of a local comment."""
    from .delivery import deliver
    from .notes import note_context, note_to_ap

    async with shoal.db.write() as session:
        comment = await session.get(Comment, comment_id)
        if comment is None or comment.ap_id is not None or comment.account_id is None:
            return
        ctx = await note_context(shoal, session, comment)
        if ctx.video.is_local and not federates(ctx.video) or ctx.author is None:
            return
        note = note_to_ap(shoal, comment, ctx, context=False)
        if kind == "Create":
            activity = {"type": "Create", "id": f"{note['id']}/activity", "actor": ctx.author.ap_id,
                        "object": note, "to": note["to"], "cc": note["cc"]}  # fmt: skip
        else:
            activity = {"type": "Delete", "id": f"{note['id']}/delete", "actor": ctx.author.ap_id,
                        "object": note, "to": [PUBLIC], "cc": followers_urls(ctx.author)}  # fmt: skip
        recipients = await comment_recipients(shoal, comment, ctx)
        await deliver(
            shoal, session, with_context(activity, "Note"), signer=ctx.author, recipients=recipients
        )


async def on_comment_created(shoal: Shoal, comment_id: int) -> None:
    await send_comment(shoal, comment_id, "Create")


async def on_comment_deleted(shoal: Shoal, comment_id: int) -> None:
    await send_comment(shoal, comment_id, "Delete")


# ---------------------------------------------------------------- ratings


def rate_activity(account: Actor, video: Video, video_url: str, kind: str) -> dict[str, Any]:
    """``Like`` or ``Dislike`` of a video by a local account, id ``<account>/likes/<video id>``
    (PeerTube's form, served by ``video_routes``); the same id after an Undo and a new rating."""
    folder = "likes" if kind == "like" else "dislikes"
    return {"type": kind.capitalize(), "id": f"{account.ap_id}/{folder}/{video.id}",
            "actor": account.ap_id, "object": video_url, "to": [PUBLIC], "cc": []}  # fmt: skip


async def on_rate(shoal: Shoal, account_id: int, video_id: int, old: str, new: str) -> None:
    """Like/Dislike (and Undo of the previous one) of a remote video, sent to its origin."""
    from .delivery import deliver

    loaded = await load_video(shoal, video_id)
    if loaded is None or loaded[0].is_local:
        return
    video = loaded[0]
    async with shoal.db.write() as session:
        account = await session.get(Actor, account_id)
        if account is None:
            return
        vid = video_ap_id(shoal, video)
        recipients = [video.channel, account_of(video)]

        if old in ("like", "dislike"):
            undone = rate_activity(account, video, vid, old)
            undo = {"type": "Undo", "id": f"{undone['id']}/undo", "actor": account.ap_id, "object": undone,
                    "to": [PUBLIC], "cc": []}  # fmt: skip
            await deliver(shoal, session, with_context(undo), signer=account, recipients=recipients)
        if new in ("like", "dislike"):
            rated = rate_activity(account, video, vid, new)
            await deliver(shoal, session, with_context(rated), signer=account, recipients=recipients)


async def send_view(shoal: Shoal, video_id: int) -> None:
    """A view of a remote video here: the Application actor tells the origin, which counts it
    (PeerTube's ``View``, id ``<actor>/views/videos/<id>/<random>``). For a views hook."""
    import secrets

    from .delivery import deliver
    from .instance_actor import application_actor

    loaded = await load_video(shoal, video_id)
    if loaded is None or loaded[0].is_local:
        return
    video = loaded[0]
    app_actor = await application_actor(shoal)
    activity = {
        "type": "View",
        "id": f"{app_actor.ap_id}/views/videos/{video.id}/{secrets.token_hex(8)}",
        "actor": app_actor.ap_id,
        "object": video_ap_id(shoal, video),
        "to": [PUBLIC],
        "cc": [],
    }
    async with shoal.db.write() as session:
        signer = await session.get(Actor, app_actor.id)
        assert signer is not None
        await deliver(shoal, session, with_context(activity, "View"), signer=signer,
                      recipients=[video.channel, account_of(video)])  # fmt: skip


# ---------------------------------------------------------------- abuse reports


async def on_abuse(shoal: Shoal, report_id: int) -> None:
    """A report about remote content: a ``Flag`` goes to its instance's moderators (the shared
    inbox of the reported content's author), id ``<instance>/admin/abuses/<id>``. The actor is
    the Application actor, as Mastodon does, so the reporter stays unknown to the other side."""
    from instance.models import AbuseReport

    from .delivery import deliver
    from .instance_actor import application_actor

    async with shoal.db.read() as session:
        report = await session.get(AbuseReport, report_id)
        if report is None or report.ap_id is not None:
            return
        target: Actor | None = None
        url: str | None = None
        if report.comment_id is not None:
            comment = await session.get(Comment, report.comment_id)
            if comment is not None and comment.ap_id is not None and comment.account_id is not None:
                target, url = await session.get(Actor, comment.account_id), comment.ap_id
        elif report.video_id is not None:
            video = await session.scalar(
                select(Video)
                .options(joinedload(Video.channel).joinedload(Actor.owner))
                .where(Video.id == report.video_id)
            )
            if video is not None and not video.is_local:
                target, url = account_of(video), video.remote_url
        elif report.account_id is not None:
            target = await session.get(Actor, report.account_id)
            url = target.ap_id if target is not None else None
        reason = report.reason
        session.expunge_all()
    if target is None or target.is_local or url is None:
        return
    app_actor = await application_actor(shoal)
    activity = {
        "type": "Flag",
        "id": shoal.url(f"/admin/abuses/{report_id}"),
        "actor": app_actor.ap_id,
        "object": [url],
        "content": reason,
        "to": [target.ap_id],
        "cc": [],
    }
    async with shoal.db.write() as session:
        signer = await session.get(Actor, app_actor.id)
        assert signer is not None
        await deliver(shoal, session, with_context(activity), signer=signer, recipients=[target])


async def resolve_video_url(shoal: Shoal, url: str) -> None:
    """Search by URL: fetch and store the remote video (``GET /search/videos``)."""
    from .video_store import get_or_fetch_video

    await get_or_fetch_video(shoal, url)


HANDLERS = {
    "video_published": on_publish,
    "video_updated": on_update,
    "video_deleted": on_delete,
    "video_media_changed": on_media_changed,
    "comment_created": on_comment_created,
    "comment_deleted": on_comment_deleted,
    "video_rated": on_rate,
    "remote_video_viewed": send_view,
    "abuse_reported": on_abuse,
}

"""ActivityPub GET routes of videos and comments, and the video items of actors' outboxes.

``/videos/watch/<uuid>`` answers the Video to ``application/activity+json`` (or ld+json)
and redirects browsers to ``/w/<shortUUID>``; ``…/activity`` the wrapping Create;
``…/likes``, ``/dislikes``, ``/announces``, ``/comments`` paginated collections;
``…/chapters`` the (empty) chapters; ``/accounts/<name>/likes/<video id>`` a local rating;
``…/comments/<id>`` a comment's Note (or Tombstone). Only videos that federate (public
or unlisted, published, not hidden, local) are served; anything else is 404.
"""

from __future__ import annotations

import uuid as uuid_lib
from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from instance.core import Shoal
from instance.errors import BadRequest, NotFound
from instance.models import (
    Actor,
    ActorKind,
    Comment,
    Privacy,
    Rendition,
    Video,
    VideoRate,
    VideoShare,
    VideoState,
)
from instance.services.comments import comment_url
from instance.web.context import SHOAL

from .collections import PAGE_SIZE, OutboxSource, collection, page_number
from .context import with_context
from .fanout import create_activity
from .notes import note_context, note_to_ap
from .videos import federates, to_ap, video_ap_id
from .web import ap_response, wants_activitypub


def _not_found() -> NotFound:
    return NotFound("No such video.", code="video_not_found")


async def _video(request: web.Request, *, remote: bool = False) -> tuple[Shoal, Video, list[Rendition]]:
    shoal: Shoal = request.app[SHOAL]
    try:
        ident = str(uuid_lib.UUID(request.match_info["uuid"]))
    except ValueError:
        raise _not_found() from None
    async with shoal.db.read() as session:
        video = await session.scalar(
            select(Video)
            .options(joinedload(Video.channel).joinedload(Actor.owner))
            .where(Video.uuid == ident)
        )
        if video is None or not (federates(video) or (remote and not video.is_local)):
            raise _not_found()
        renditions = list(
            await session.scalars(
                select(Rendition).where(Rendition.video_id == video.id).order_by(Rendition.height.desc())
            )
        )
        session.expunge_all()
    return shoal, video, renditions


def _page(request: web.Request) -> int | None:
    try:
        return page_number(request.query.get("page"))
    except ValueError as exc:
        raise BadRequest(str(exc), code="invalid_page", field="page") from None


async def get_video(request: web.Request) -> web.StreamResponse:
    """The Video document, or a redirect to the watch page for browsers."""
    if not wants_activitypub(request):
        try:
            from instance.models.video import short_uuid

            short = short_uuid(request.match_info["uuid"])
        except ValueError:
            raise _not_found() from None
        raise web.HTTPFound(f"/w/{short}", headers={"Vary": "Accept"})
    shoal, video, renditions = await _video(request)
    return ap_response(to_ap(shoal, video, renditions))


async def get_activity(request: web.Request) -> web.Response:
    """The Create activity of the video."""
    shoal, video, renditions = await _video(request)
    return ap_response(create_activity(shoal, video, renditions))


async def get_video_collection(request: web.Request) -> web.Response:
    """Likes, dislikes, shares (announces) or comments of a video, paginated."""
    shoal, video, _ = await _video(request)
    which = request.match_info["collection"]
    page = _page(request)
    url = f"{video_ap_id(shoal, video)}/{which}"
    async with shoal.db.read() as session:
        if which in ("likes", "dislikes"):
            where = [VideoRate.video_id == video.id, VideoRate.kind == which[:-1]]
            total = await session.scalar(select(func.count(VideoRate.id)).where(*where)) or 0
            items: list[Any] = []
            if page is not None:
                rows = await session.execute(
                    select(VideoRate.ap_id, Actor.ap_id)
                    .join(Actor, Actor.id == VideoRate.account_id)
                    .where(*where)
                    .order_by(VideoRate.id.desc())
                    .offset((page - 1) * PAGE_SIZE)
                    .limit(PAGE_SIZE)
                )
                items = [rate_id or f"{actor_id}/{which}/{video.id}" for rate_id, actor_id in rows]
        elif which == "announces":
            where = [VideoShare.video_id == video.id]
            total = await session.scalar(select(func.count(VideoShare.id)).where(*where)) or 0
            items = []
            if page is not None:
                items = list(
                    await session.scalars(
                        select(VideoShare.ap_id)
                        .where(*where)
                        .order_by(VideoShare.id.desc())
                        .offset((page - 1) * PAGE_SIZE)
                        .limit(PAGE_SIZE)
                    )
                )
        else:
            where = [Comment.video_id == video.id]
            total = await session.scalar(select(func.count(Comment.id)).where(*where)) or 0
            items = []
            if page is not None:
                comments = await session.scalars(
                    select(Comment)
                    .where(*where)
                    .order_by(Comment.id)
                    .offset((page - 1) * PAGE_SIZE)
                    .limit(PAGE_SIZE)
                )
                items = [comment_url(shoal, video, comment) for comment in comments]
    return ap_response(collection(url, total, page, items))


async def get_chapters(request: web.Request) -> web.Response:
    """The video's chapters (PeerTube's ``hasParts`` document); Shoal has none yet, so an
    empty list. PeerTube fetches this after every Create and Update of a video."""
    shoal, video, _ = await _video(request)
    doc = {"id": f"{video_ap_id(shoal, video)}/chapters", "hasPart": []}
    return ap_response(with_context(doc, "Chapters"))


async def get_rate(request: web.Request) -> web.Response:
    """A local account's Like or Dislike of a video (``/accounts/<name>/likes/<video id>``),
    the ids our rating activities and our videos' ``likes`` collections name."""
    from .fanout import rate_activity

    shoal: Shoal = request.app[SHOAL]
    kind = "like" if request.match_info["kind"] == "likes" else "dislike"
    raw = request.match_info["video"]
    if not raw.isdigit() or len(raw) > 12:
        raise NotFound("No such rating.", code="rate_not_found")
    async with shoal.db.read() as session:
        row = await session.execute(
            select(Actor, Video)
            .join(VideoRate, VideoRate.account_id == Actor.id)
            .join(Video, Video.id == VideoRate.video_id)
            .options(joinedload(Video.channel).joinedload(Actor.owner))
            .where(
                Actor.host.is_(None),
                Actor.kind == ActorKind.PERSON,
                func.lower(Actor.preferred_username) == request.match_info["name"].lower(),
                VideoRate.video_id == int(raw),
                VideoRate.kind == kind,
            )
        )
        found = row.first()
        if found is not None:
            session.expunge_all()
    if found is None or not (federates(found[1]) or not found[1].is_local):
        raise NotFound("No such rating.", code="rate_not_found")
    account, video = found
    return ap_response(with_context(rate_activity(account, video, video_ap_id(shoal, video), kind)))


async def get_comment(request: web.Request) -> web.Response:
    """A local comment's Note (or its Tombstone once deleted); ``…/activity``: its Create."""
    shoal, video, _ = await _video(request, remote=True)
    raw = request.match_info["comment"]
    if not raw.isdigit() or len(raw) > 10:
        raise NotFound("No such comment.", code="comment_not_found")
    async with shoal.db.read() as session:
        comment = await session.get(Comment, int(raw))
        if comment is None or comment.video_id != video.id or comment.ap_id is not None:
            raise NotFound("No such comment.", code="comment_not_found")
        ctx = await note_context(shoal, session, comment)
        doc = note_to_ap(shoal, comment, ctx, context=False)
    if request.path.endswith("/activity"):
        if comment.is_deleted or ctx.author is None:
            raise NotFound("No such comment.", code="comment_not_found")
        doc = {"type": "Create", "id": f"{doc['id']}/activity", "actor": ctx.author.ap_id, "object": doc,
               "to": doc["to"], "cc": doc["cc"]}  # fmt: skip
    return ap_response(with_context(doc, "Note"))


async def get_announce(request: web.Request) -> web.Response:
    """One of our actors' Announce of the video (``…/announces/<actor id>``)."""
    from .fanout import announce_activity

    shoal, video, _ = await _video(request)
    raw = request.match_info["actor"]
    async with shoal.db.read() as session:
        share = await session.scalar(
            select(VideoShare).where(VideoShare.ap_id == f"{video_ap_id(shoal, video)}/announces/{raw}")
        )
        actor = await session.get(Actor, share.actor_id) if share is not None else None
    if actor is None or not actor.is_local:
        raise NotFound("No such share.", code="share_not_found")
    return ap_response(announce_activity(shoal, video, actor))


# ---------------------------------------------------------------- outbox items


def _outbox_clause(actor: Actor) -> list[Any]:
    where: list[Any] = [
        Video.remote_url.is_(None),
        Video.state == VideoState.PUBLISHED,
        Video.privacy == Privacy.PUBLIC,
        Video.hidden.is_(False),
    ]
    if actor.kind == ActorKind.GROUP:
        where.append(Video.channel_id == actor.id)
    elif actor.kind == ActorKind.PERSON:
        where.append(Video.channel_id.in_(select(Actor.id).where(Actor.owner_id == actor.id)))
    return where


async def _outbox_count(shoal: Shoal, session: Any, actor: Actor) -> int:
    return await session.scalar(select(func.count(Video.id)).where(*_outbox_clause(actor))) or 0


async def _outbox_items(
    shoal: Shoal, session: Any, actor: Actor, offset: int, limit: int
) -> list[dict[str, Any]]:
    videos = list(
        await session.scalars(
            select(Video)
            .options(joinedload(Video.channel).joinedload(Actor.owner))
            .where(*_outbox_clause(actor))
            .order_by(Video.published_at.desc(), Video.id.desc())
            .offset(offset)
            .limit(limit)
        )
    )
    renditions: dict[int, list[Rendition]] = {video.id: [] for video in videos}
    if videos:
        rows = await session.scalars(
            select(Rendition)
            .where(Rendition.video_id.in_(list(renditions)))
            .order_by(Rendition.height.desc())
        )
        for row in rows:
            renditions[row.video_id].append(row)
    out = []
    for video in videos:
        activity = create_activity(shoal, video, renditions[video.id])
        activity.pop("@context", None)
        out.append(activity)
    return out


VIDEO_OUTBOX = OutboxSource("videos", _outbox_count, _outbox_items)


def add_routes(app: web.Application) -> None:
    """Register the video routes on ``app`` (the video items of outboxes, :data:`VIDEO_OUTBOX`,
    are installed per Shoal by :func:`federation.install`)."""
    router = app.router
    router.add_get("/videos/watch/{uuid}", get_video)
    router.add_get("/videos/watch/{uuid}/activity", get_activity)
    router.add_get(
        "/videos/watch/{uuid}/{collection:likes|dislikes|announces|comments}", get_video_collection
    )
    router.add_get("/videos/watch/{uuid}/chapters", get_chapters)
    router.add_get("/videos/watch/{uuid}/announces/{actor}", get_announce)
    router.add_get("/accounts/{name}/{kind:likes|dislikes}/{video}", get_rate)
    router.add_get("/videos/watch/{uuid}/comments/{comment}", get_comment)
    router.add_get("/videos/watch/{uuid}/comments/{comment}/activity", get_comment)

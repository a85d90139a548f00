"""Comments as ActivityPub ``Note`` (and ``Tombstone`` once deleted), as we send them.

PeerTube's shape (notes §3.6) — ``id`` ``/videos/watch/<uuid>/comments/<id>``, markdown
``content``, ``inReplyTo`` the video for a thread or the parent comment, ``Mention`` tags of
the ancestors' authors. Receiving Notes is :mod:`federation.note_store`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from instance.core import Shoal
from instance.models import Actor, Comment, Video
from instance.services.comments import comment_url
from instance.web.responses import iso

from .context import PUBLIC, with_context
from .videos import followers_urls, video_ap_id

# Ancestors walked at most: up from a reply we send (its mentions), or from a received one
# to its video (federation.note_store).
MAX_DEPTH = 100


@dataclass
class NoteContext:
    """What a Note needs besides the comment: its video, author, parent and ancestors' authors."""

    video: Video
    author: Actor | None
    parent_url: str
    mentions: list[Actor]


async def note_context(shoal: Shoal, session: AsyncSession, comment: Comment) -> NoteContext:
    """Load the video, author, parent URL and ancestors' authors of ``comment``."""
    video = await session.scalar(
        select(Video)
        .options(joinedload(Video.channel).joinedload(Actor.owner))
        .where(Video.id == comment.video_id)
    )
    assert video is not None
    author = await session.get(Actor, comment.account_id) if comment.account_id else None
    mentions: list[Actor] = []
    parent_url = video_ap_id(shoal, video)
    current, first, depth = comment.in_reply_to_id, True, 0
    while current is not None and depth < MAX_DEPTH:
        parent = await session.get(Comment, current)
        if parent is None:
            break
        if first:
            parent_url, first = comment_url(shoal, video, parent), False
        if parent.account_id and parent.account_id != comment.account_id:
            actor = await session.get(Actor, parent.account_id)
            if actor is not None and actor not in mentions:
                mentions.append(actor)
        current, depth = parent.in_reply_to_id, depth + 1
    return NoteContext(video, author, parent_url, mentions)


def note_to_ap(shoal: Shoal, comment: Comment, ctx: NoteContext, *, context: bool = True) -> dict[str, Any]:
    """The ``Note`` of a comment, or its ``Tombstone`` when deleted."""
    cid = comment_url(shoal, ctx.video, comment)
    if comment.is_deleted:
        doc: dict[str, Any] = {
            "type": "Tombstone",
            "id": cid,
            "url": cid,
            "formerType": "Note",
            "inReplyTo": ctx.parent_url,
            "published": iso(comment.created_at),
            "updated": iso(comment.updated_at),
            "deleted": iso(comment.deleted_at),
        }
        return with_context(doc, "Tombstone") if context else doc
    followers = followers_urls(ctx.author)
    doc = {
        "type": "Note",
        "id": cid,
        "content": comment.text,
        "mediaType": "text/markdown",
        "inReplyTo": ctx.parent_url,
        "updated": iso(comment.updated_at),
        "published": iso(comment.created_at),
        "url": cid,
        "attributedTo": ctx.author.ap_id if ctx.author else None,
        "tag": [
            {"type": "Mention", "href": actor.ap_id, "name": "@" + actor.handle(shoal.settings.public_host)}
            for actor in ctx.mentions
        ],
        "to": [PUBLIC],
        "cc": followers,
    }
    return with_context(doc, "Note") if context else doc

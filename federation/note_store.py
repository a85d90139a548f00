"""Received comments: PeerTube Notes (markdown, kept as text) and Mastodon replies (HTML,
sanitised with nh3) become comments; an unknown parent is fetched from its origin, walking
up at most :data:`~federation.notes.MAX_DEPTH` levels to the video. A Delete makes a
comment a tombstone.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import nh3
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from instance.core import Shoal
from instance.models import Actor, Comment, Video, utcnow

from .ap import as_list, host_of, is_url
from .notes import MAX_DEPTH
from .video_parse import InvalidObject, parse_date
from .video_store import from_ap, get_or_fetch_video, video_by_url
from .videos import open_to_remote

log = logging.getLogger("shoal.federation.notes")

TEXT_MAX = 10_000
ALLOWED_TAGS = {
    "a",
    "p",
    "br",
    "span",
    "strong",
    "b",
    "em",
    "i",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "class"}, "span": {"class"}}


def sanitize_html(value: str) -> str:
    """Remote HTML reduced to a few inline and block tags, links kept (``rel`` forced by nh3)."""
    return nh3.clean(value, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes={"http", "https"})


@dataclass
class ParsedNote:
    """A received Note or Tombstone, checked."""

    ap_id: str
    in_reply_to: str
    attributed_to: str | None
    text: str
    published: datetime | None
    updated: datetime | None
    deleted: bool


def _attributed(value: Any) -> str | None:
    if isinstance(value, str) and is_url(value):
        return value
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, dict) and is_url(item.get("id")):
            return item["id"]
        if isinstance(item, str) and is_url(item):
            return item
    return None


def note_text(doc: dict[str, Any]) -> str:
    """The comment text of a Note: markdown kept as is, HTML (Mastodon's default) sanitised."""
    content = doc.get("content")
    if not isinstance(content, str):
        content_map = doc.get("contentMap")
        if isinstance(content_map, dict):
            content = next((v for v in content_map.values() if isinstance(v, str)), "")
        else:
            content = ""
    content = content.replace("\x00", "")
    if doc.get("mediaType") == "text/markdown":
        return content[:TEXT_MAX]
    if doc.get("mediaType") == "text/plain":
        return html.escape(content)[:TEXT_MAX]
    return sanitize_html(content)[:TEXT_MAX]


def parse_note(doc: dict[str, Any]) -> ParsedNote:
    """Check a received Note (or Tombstone of one) as PeerTube does; raise :class:`InvalidObject`."""
    kind = doc.get("type") if isinstance(doc, dict) else None
    deleted = kind == "Tombstone"
    if kind != "Note" and not (deleted and doc.get("formerType") in ("Note", None)):
        raise InvalidObject("not a Note")
    ap_id = doc.get("id")
    if not is_url(ap_id):
        raise InvalidObject("id is not an http(s) URL")
    in_reply_to = doc.get("inReplyTo")
    if isinstance(in_reply_to, dict):
        in_reply_to = in_reply_to.get("id")
    if not deleted and not is_url(in_reply_to):
        raise InvalidObject("inReplyTo is not a URL")
    text = "" if deleted else note_text(doc)
    if not deleted and not text.strip():
        raise InvalidObject("content is empty")
    if not deleted:
        audience = [*(as_list(doc.get("to"))), *(as_list(doc.get("cc")))]
        if not audience:
            raise InvalidObject("a comment must be addressed")
    return ParsedNote(
        ap_id,
        in_reply_to or "",
        _attributed(doc.get("attributedTo")),
        text,
        parse_date(doc.get("published")),
        parse_date(doc.get("updated")),
        deleted,
    )


async def comment_by_url(shoal: Shoal, session: AsyncSession, url: str) -> Comment | None:
    """The comment an ActivityPub URL names (a local ``…/comments/<id>`` or a stored remote id)."""
    base = shoal.settings.public_url.rstrip("/") + "/"
    if url.startswith(base):
        path = urlsplit(url).path.rstrip("/")
        head, sep, tail = path.rpartition("/comments/")
        if not sep or not tail.isdigit() or not head.startswith("/videos/watch/") or len(tail) > 10:
            return None
        comment = await session.get(Comment, int(tail))
        return comment if comment is not None and comment.ap_id is None else None
    return await session.scalar(select(Comment).where(Comment.ap_id == url))


@dataclass
class Parent:
    """Where a received Note goes: its video and, for a reply, the parent comment."""

    video_id: int
    comment: Comment | None


async def _locate(shoal: Shoal, url: str, depth: int) -> Parent:
    """The video/comment ``url`` names; unknown ones are fetched from their origin (once)."""
    from .http import fetch_json

    async with shoal.db.read() as session:
        comment = await comment_by_url(shoal, session, url)
        if comment is not None:
            video = await session.get(Video, comment.video_id)
        else:
            video = await video_by_url(session, shoal, url)
        session.expunge_all()
    if video is not None and not open_to_remote(video):
        raise InvalidObject(f"{url[:200]} is not open to other instances")
    if comment is not None:
        return Parent(comment.video_id, comment)
    if video is not None:
        return Parent(video.id, None)
    if url.startswith(shoal.settings.public_url.rstrip("/") + "/"):
        raise InvalidObject(f"{url[:200]} is not a video or comment of ours")
    if depth >= MAX_DEPTH:
        raise InvalidObject("reply chain too deep")
    doc = await fetch_json(shoal, url)
    if doc.get("type") == "Video":
        video = await get_or_fetch_video(shoal, doc["id"]) if doc.get("id") != url else None
        if video is None:
            video = await from_ap(shoal, doc, fetched_from=url)
        return Parent(video.id, None)
    if host_of(str(doc.get("id", ""))) != host_of(url):
        raise InvalidObject("a fetched comment must come from its own host")
    comment = await store_note(shoal, doc, depth=depth + 1)
    return Parent(comment.video_id, comment)


async def store_note(
    shoal: Shoal, doc: dict[str, Any], *, depth: int = 0, author: Actor | None = None
) -> Comment:
    """Store (or update) a received Note as a comment; parents and the video fetched if unknown.

    ``author``: the verified sender, who must be the Note's ``attributedTo``.
    """
    from .actors import resolve_actor

    parsed = parse_note(doc)
    if parsed.deleted:
        raise InvalidObject("a Tombstone cannot be created")
    if author is not None and parsed.attributed_to not in (None, author.ap_id):
        raise InvalidObject("attributedTo is not the sender")
    if author is None:
        if parsed.attributed_to is None:
            raise InvalidObject("attributedTo is missing")
        if host_of(parsed.attributed_to) != host_of(parsed.ap_id):
            raise InvalidObject("a fetched comment's author must be on its host")
        author = await resolve_actor(shoal, parsed.attributed_to)
    base = shoal.settings.public_url.rstrip("/") + "/"
    if parsed.ap_id.startswith(base):
        raise InvalidObject("a remote instance cannot create a comment of ours")
    parent = await _locate(shoal, parsed.in_reply_to, depth)
    now = utcnow()
    async with shoal.db.write() as session:
        comment = await session.scalar(select(Comment).where(Comment.ap_id == parsed.ap_id))
        if comment is None:
            video = await session.get(Video, parent.video_id)
            if video is not None and video.is_local and not video.comments_enabled:
                raise InvalidObject("comments are disabled on this video")
            comment = Comment(
                video_id=parent.video_id,
                account_id=author.id,
                thread_id=(parent.comment.thread_id or parent.comment.id) if parent.comment else None,
                in_reply_to_id=parent.comment.id if parent.comment else None,
                text=parsed.text,
                ap_id=parsed.ap_id,
                created_at=parsed.published or now,
                updated_at=parsed.updated or parsed.published or now,
            )
            session.add(comment)
        else:
            if comment.account_id != author.id:
                raise InvalidObject("only the author may update a comment")
            if comment.deleted_at is None:
                comment.text = parsed.text
                comment.updated_at = parsed.updated or now
        await session.flush()
        session.expunge_all()
    return comment


async def tombstone_comment(shoal: Shoal, url: str, sender: Actor) -> Comment | None:
    """Soft-delete the remote comment ``url`` when ``sender`` wrote it (or owns its video's host).

    Returns the comment, or None when unknown or not the sender's to delete.
    """
    async with shoal.db.write() as session:
        comment = await session.scalar(select(Comment).where(Comment.ap_id == url))
        if comment is None or comment.deleted_at is not None:
            return None
        same_host = host_of(url) == host_of(sender.ap_id)
        if comment.account_id != sender.id and not same_host:
            return None
        comment.text = ""
        comment.deleted_at = comment.updated_at = utcnow()
        await session.flush()
        session.expunge_all()
    return comment

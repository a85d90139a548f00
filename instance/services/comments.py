"""Comments on videos: threads, replies, soft deletion — local users' and received ones.

A thread is a root comment (``in_reply_to_id`` None, ``thread_id`` None) and every reply
below it (``thread_id`` = the root). Deleting a comment keeps its row, emptied and marked
``deleted_at``, so the replies under it keep their place (PeerTube's soft delete).

Federation (an extension package) learns about local changes through
the ``comment_created`` and ``comment_deleted`` events (:mod:`instance.extensions`), fired
after the change is committed; a failing handler is logged, never the caller's error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from ..core import Shoal
from ..errors import BadRequest, Forbidden, NotFound
from ..models import Actor, Comment, User, Video, utcnow
from .video_fields import storable
from .videos import get_video_for, reading
from .visibility import Viewer, owns_video

log = logging.getLogger("shoal.comments")

TEXT_MAX = 10_000
THREAD_SORTS = ("createdAt", "-createdAt", "totalReplies", "-totalReplies")


@dataclass
class CommentView:
    """A comment with what its JSON needs: the video, and reply counts for thread roots."""

    comment: Comment
    video: Video
    total_replies: int = 0
    total_replies_from_author: int = 0


@dataclass
class ThreadPage:
    """One page of threads; ``total_not_deleted`` counts every visible comment of the video."""

    total: int
    total_not_deleted: int
    data: list[CommentView]


@dataclass
class ThreadTree:
    """A comment and the replies below it."""

    comment: CommentView
    children: list[ThreadTree] = field(default_factory=list)


def comment_url(shoal: Shoal, video: Video, comment: Comment) -> str:
    """The ActivityPub id of a comment: its origin's id, or ``/videos/watch/<uuid>/comments/<id>``."""
    return comment.ap_id or shoal.url(f"/videos/watch/{video.uuid}/comments/{comment.id}")


def check_text(text: Any) -> str:
    """1 to 10,000 characters a database can store, not only spaces."""
    if not isinstance(text, str) or not storable(text):
        raise BadRequest("'text' must be Unicode text.", code="invalid_field", field="text")
    if not text.strip() or len(text) > TEXT_MAX:
        raise BadRequest(f"'text' must have 1 to {TEXT_MAX} characters.", code="invalid_field", field="text")
    return text


def comment_not_found() -> NotFound:
    return NotFound("No such comment.", code="comment_not_found")


def _with_account():
    return select(Comment).options(joinedload(Comment.account).joinedload(Actor.owner))


async def _comment_of(session: AsyncSession, video: Video, comment_id: int) -> Comment:
    if not 0 < comment_id < 2**31:
        raise comment_not_found()
    comment = await session.scalar(
        _with_account().where(Comment.id == comment_id, Comment.video_id == video.id)
    )
    if comment is None:
        raise comment_not_found()
    return comment


async def _reply_counts(
    session: AsyncSession, video: Video, roots: list[int]
) -> tuple[dict[int, int], dict[int, int]]:
    if not roots:
        return {}, {}
    alive = [Comment.thread_id.in_(roots), Comment.deleted_at.is_(None)]
    totals = await session.execute(
        select(Comment.thread_id, func.count()).where(*alive).group_by(Comment.thread_id)
    )
    by_author: dict[int, int] = {}
    owner_id = video.channel.owner_id
    if owner_id is not None:
        rows = await session.execute(
            select(Comment.thread_id, func.count())
            .where(*alive, Comment.account_id == owner_id)
            .group_by(Comment.thread_id)
        )
        by_author = {k: v for k, v in rows}
    return {k: v for k, v in totals}, by_author


async def list_threads(
    shoal: Shoal, ident: str, user: User | None, *, start: int = 0, count: int = 15, sort: str = "-createdAt"
) -> ThreadPage:
    """The threads (root comments) of a video the caller may see."""
    async with reading(shoal) as session:
        video = await get_video_for(shoal, session, ident, user)
        roots = [Comment.video_id == video.id, Comment.in_reply_to_id.is_(None)]
        total = await session.scalar(select(func.count(Comment.id)).where(*roots)) or 0
        not_deleted = (
            await session.scalar(
                select(func.count(Comment.id)).where(
                    Comment.video_id == video.id, Comment.deleted_at.is_(None)
                )
            )
            or 0
        )
        query = _with_account().where(*roots)
        if sort.lstrip("-") == "totalReplies":
            reply = Comment.__table__.alias("reply")
            inner = (
                select(func.count())
                .select_from(reply)
                .where(reply.c.thread_id == Comment.id, reply.c.deleted_at.is_(None))
                .scalar_subquery()
            )
            order = inner.desc() if sort.startswith("-") else inner.asc()
        else:
            order = Comment.created_at.desc() if sort.startswith("-") else Comment.created_at.asc()
        rows = list(
            await session.scalars(query.order_by(order, Comment.id.desc()).offset(start).limit(count))
        )
        totals, by_author = await _reply_counts(session, video, [c.id for c in rows])
        data = [CommentView(c, video, totals.get(c.id, 0), by_author.get(c.id, 0)) for c in rows]
        return ThreadPage(total, not_deleted, data)


async def get_thread(shoal: Shoal, ident: str, thread_id: int, user: User | None) -> ThreadTree:
    """A thread (root comment ``thread_id``) with every reply, as a tree in creation order."""
    async with reading(shoal) as session:
        video = await get_video_for(shoal, session, ident, user)
        root = await _comment_of(session, video, thread_id)
        if root.in_reply_to_id is not None:
            raise comment_not_found()
        replies = list(
            await session.scalars(
                _with_account().where(Comment.thread_id == root.id).order_by(Comment.created_at, Comment.id)
            )
        )
        totals, by_author = await _reply_counts(session, video, [root.id])
        nodes = {
            root.id: ThreadTree(CommentView(root, video, totals.get(root.id, 0), by_author.get(root.id, 0)))
        }
        for reply in replies:
            nodes[reply.id] = ThreadTree(CommentView(reply, video))
        for reply in replies:
            parent = nodes.get(reply.in_reply_to_id or root.id, nodes[root.id])
            parent.children.append(nodes[reply.id])
        return nodes[root.id]


async def add_comment(
    shoal: Shoal, ident: str, user: User, text: Any, *, in_reply_to: int | None = None
) -> CommentView:
    """A new thread (or, with ``in_reply_to``, a reply) by the caller on a video they may see.

    403 ``comments_disabled`` when the video's comments are closed; 404 when the parent is
    not a comment of that video.
    """
    text = check_text(text)
    async with shoal.db.write() as session:
        video = await get_video_for(shoal, session, ident, user)
        if not video.comments_enabled:
            raise Forbidden("Comments are disabled on this video.", code="comments_disabled")
        thread_id = None
        if in_reply_to is not None:
            parent = await _comment_of(session, video, in_reply_to)
            if parent.is_deleted:
                raise BadRequest("Cannot reply to a deleted comment.", code="comment_deleted")
            thread_id = parent.thread_id or parent.id
        account = await session.get(Actor, user.account_id)
        comment = Comment(
            video_id=video.id,
            account_id=user.account_id,
            thread_id=thread_id,
            in_reply_to_id=in_reply_to,
            text=text,
        )
        session.add(comment)
        await session.flush()
        comment.account = account
        session.expunge_all()
    await shoal.ext.fire(shoal, "comment_created", comment.id)
    return CommentView(comment, video)


async def delete_comment(shoal: Shoal, ident: str, comment_id: int, user: User) -> None:
    """Soft-delete a comment: its author, the video's owner, or a moderator may.

    The row stays (emptied) so the thread keeps its replies; deleting twice is 404.
    """
    viewer = Viewer.of(user)
    async with shoal.db.write() as session:
        video = await get_video_for(shoal, session, ident, user)
        comment = await _comment_of(session, video, comment_id)
        if comment.is_deleted:
            raise comment_not_found()
        mine = comment.account_id is not None and comment.account_id == user.account_id
        if not (mine or viewer.is_moderator or owns_video(viewer, video)):
            raise Forbidden("Only the comment's author, the video's owner or a moderator may delete it.",
                            code="not_owner")  # fmt: skip
        comment.text = ""
        comment.deleted_at = utcnow()
        comment.updated_at = comment.deleted_at
    await shoal.ext.fire(shoal, "comment_deleted", comment_id)

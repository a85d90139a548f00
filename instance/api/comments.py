"""Routes: comments on videos, in PeerTube's paths and ``VideoComment`` shape.

Threads are root comments; ``…/comment-threads/{threadId}`` answers the whole tree.
Deleting keeps the comment's place in its thread (``isDeleted``, empty text, no account).
Text of remote comments is HTML already sanitised when received; local text is stored
as typed, and clients escape it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import Field

from ..core import Shoal
from ..services import comments as comment_service
from ..services.comments import CommentView, ThreadTree
from ..web.context import current_user, require_user, shoal_of
from ..web.responses import iso, json_response, no_content
from ..web.validation import Body
from . import api, serializers
from .registry import BODY, QUERY
from .videos import NO_CONTENT, Pagination, Text


class CommentBody(Body):
    """The comment's text (markdown)."""

    text: Annotated[Text, Field(min_length=1, max_length=10_000)]


class ThreadQuery(Pagination):
    """Threads page and order."""

    sort: Literal[comment_service.THREAD_SORTS] = "-createdAt"


def comment_json(shoal: Shoal, view: CommentView) -> dict[str, Any]:
    """PeerTube's ``VideoComment``."""
    comment, video = view.comment, view.video
    deleted = comment.is_deleted
    return {
        "id": comment.id,
        "url": comment_service.comment_url(shoal, video, comment),
        "text": "" if deleted else comment.text,
        "threadId": comment.thread_id or comment.id,
        "inReplyToCommentId": comment.in_reply_to_id,
        "videoId": video.id,
        "createdAt": iso(comment.created_at),
        "updatedAt": iso(comment.updated_at),
        "deletedAt": iso(comment.deleted_at),
        "isDeleted": deleted,
        "heldForReview": False,
        "totalRepliesFromVideoAuthor": view.total_replies_from_author,
        "totalReplies": view.total_replies,
        "account": None
        if deleted or comment.account is None
        else serializers.account(shoal, comment.account),
    }


def tree_json(shoal: Shoal, tree: ThreadTree) -> dict[str, Any]:
    """PeerTube's ``VideoCommentThreadTree``."""
    return {
        "comment": comment_json(shoal, tree.comment),
        "children": [tree_json(shoal, c) for c in tree.children],
    }


def _int_param(request: web.Request, name: str) -> int:
    value = request.match_info[name]
    if not value.isdigit() or len(value) > 10:
        raise comment_service.comment_not_found()
    return int(value)


@api.route(
    "GET",
    "/api/v1/videos/{id}/comment-threads",
    summary="List a video's comment threads",
    query=ThreadQuery,
    tags=("comments",),
)
async def list_threads(request: web.Request) -> web.Response:
    """Root comments, newest first by default, with reply counts."""
    shoal, query = shoal_of(request), request[QUERY]
    page = await comment_service.list_threads(
        shoal,
        request.match_info["id"],
        current_user(request),
        start=query.start,
        count=query.count,
        sort=query.sort,
    )
    return json_response(
        {
            "total": page.total,
            "totalNotDeletedComments": page.total_not_deleted,
            "data": [comment_json(shoal, view) for view in page.data],
        }
    )


@api.route(
    "POST",
    "/api/v1/videos/{id}/comment-threads",
    summary="Comment on a video",
    auth="user",
    body=CommentBody,
    tags=("comments",),
)
async def add_thread(request: web.Request) -> web.Response:
    """A new thread; answers ``{comment}``."""
    shoal = shoal_of(request)
    view = await comment_service.add_comment(
        shoal, request.match_info["id"], require_user(request), request[BODY].text
    )
    return json_response({"comment": comment_json(shoal, view)})


@api.route(
    "GET",
    "/api/v1/videos/{id}/comment-threads/{threadId}",
    summary="Get a comment thread",
    tags=("comments",),
)
async def get_thread(request: web.Request) -> web.Response:
    """The root comment and every reply below it, as a tree."""
    shoal = shoal_of(request)
    tree = await comment_service.get_thread(
        shoal, request.match_info["id"], _int_param(request, "threadId"), current_user(request)
    )
    return json_response(tree_json(shoal, tree))


@api.route(
    "POST",
    "/api/v1/videos/{id}/comments/{commentId}",
    summary="Reply to a comment",
    auth="user",
    body=CommentBody,
    tags=("comments",),
)
async def reply(request: web.Request) -> web.Response:
    """A reply in the parent's thread; answers ``{comment}``."""
    shoal = shoal_of(request)
    view = await comment_service.add_comment(
        shoal,
        request.match_info["id"],
        require_user(request),
        request[BODY].text,
        in_reply_to=_int_param(request, "commentId"),
    )
    return json_response({"comment": comment_json(shoal, view)})


@api.route(
    "DELETE",
    "/api/v1/videos/{id}/comments/{commentId}",
    summary="Delete a comment",
    auth="user",
    tags=("comments",),
    responses=NO_CONTENT,
)
async def delete_comment(request: web.Request) -> web.Response:
    """The author, the video's owner or a moderator; the thread keeps its shape. Answers 204."""
    await comment_service.delete_comment(
        shoal_of(request), request.match_info["id"], _int_param(request, "commentId"), require_user(request)
    )
    return no_content()

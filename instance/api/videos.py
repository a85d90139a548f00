"""Routes: videos — lists, details, edits, deletion, moderation (PeerTube's paths and shapes).

``{id}`` is a numeric id, a UUID or a short UUID; anything else is 400 ``invalid_id``.
A video the caller may not see answers 404 ``video_not_found``, like one that does not
exist. List filters that would reveal more than the caller may see (``privacyOneOf``
beyond public/internal, ``include``) answer 403 ``insufficient_role`` instead of being
silently narrowed; moderators may use them everywhere, owners on their own channels.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Literal

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import BadHttpMessage
from pydantic import Field

from ..errors import BadRequest
from ..services import thumbnails
from ..services import videos as video_service
from ..services.video_fields import (
    MAX_DB_INT,
    CategoryField,
    DescriptionField,
    LanguageField,
    LicenceField,
    NameField,
    PrivacyField,
    StorableText,
    SupportField,
    TagsField,
)
from ..services.video_lists import VIDEO_SORTS, Page, VideoFilters, search_videos
from ..web.context import current_user, require_user, shoal_of
from ..web.responses import json_response, no_content
from ..web.validation import Body, Query
from . import api, serializers
from .registry import BODY, QUERY

Text = StorableText
DbInt = Annotated[int, Field(ge=0, le=MAX_DB_INT)]
NO_CONTENT = {"204": {"description": "Done"}}


class Pagination(Query):
    """PeerTube's ``start``/``count`` (at most 100 per page)."""

    start: int = Field(0, ge=0, le=MAX_DB_INT, description="offset of the first item")
    count: int = Field(15, ge=0, le=100, description="items per page (at most 100)")


class VideoListQuery(Pagination):
    """PeerTube's common video list filters."""

    sort: Literal[VIDEO_SORTS] = "-publishedAt"
    is_local: bool | None = Field(None, description="only local (true) or only remote (false) videos")
    nsfw: Literal["true", "false", "both"] | None = None
    category_one_of: list[DbInt] = Field(default_factory=list, max_length=50)
    licence_one_of: list[DbInt] = Field(default_factory=list, max_length=50)
    language_one_of: list[Annotated[Text, Field(max_length=16)]] = Field(default_factory=list, max_length=50)
    tags_one_of: list[Annotated[Text, Field(max_length=30)]] = Field(default_factory=list, max_length=20)
    tags_all_of: list[Annotated[Text, Field(max_length=30)]] = Field(default_factory=list, max_length=20)
    privacy_one_of: list[Annotated[int, Field(ge=1, le=4)]] = Field(
        default_factory=list, description="moderators (or owners on their own channel) only, beyond 1 and 4"
    )
    include: int = Field(
        0, ge=0, le=255, description="PeerTube's flags: 1 unpublished, 2 hidden (moderators/owners only)"
    )
    search: Annotated[Text, Field(max_length=250)] | None = Field(None, description="words in the title")
    has_hls_files: bool | None = Field(None, alias="hasHLSFiles")
    skip_count: bool = False

    def filters(self) -> VideoFilters:
        """The service-level filters."""
        return VideoFilters(**self.model_dump())


class MyVideosQuery(VideoListQuery):
    """``/users/me/videos``: the same filters, newest uploads first."""

    sort: Literal[VIDEO_SORTS] = "-createdAt"


class VideoUpdate(Body):
    """PeerTube's video update; only the fields sent are changed."""

    name: NameField | None = None
    description: DescriptionField | None = None
    support: SupportField | None = None
    privacy: PrivacyField | None = None
    category: CategoryField | None = None
    licence: LicenceField | None = None
    language: LanguageField | None = None
    tags: TagsField | None = None
    nsfw: bool | None = None
    comments_enabled: bool | None = None
    comments_policy: int | None = Field(None, ge=1, le=2)
    download_enabled: bool | None = None
    wait_transcoding: bool | None = None
    originally_published_at: datetime | None = None
    channel_id: int | None = Field(None, ge=1, le=MAX_DB_INT)


class BlacklistBody(Body):
    """Why a moderator hides a video."""

    reason: Annotated[Text, Field(max_length=300)] | None = None
    unfederate: bool | None = None


def video_page(request: web.Request, page: Page) -> web.Response:
    """A list of videos in PeerTube's envelope."""
    shoal = shoal_of(request)
    body = page.memo.get("json")
    if body is None:  # a cached anonymous page is rendered and encoded once
        rendered = serializers.page([serializers.video(shoal, v) for v in page.data], page.total)
        body = page.memo["json"] = json_response(rendered).body
    return web.Response(body=body, content_type="application/json")


@api.route("GET", "/api/v1/videos", summary="List videos", query=VideoListQuery, tags=("videos",))
async def list_videos(request: web.Request) -> web.Response:
    """Published videos the caller may list; unlisted and private ones never appear unless a
    moderator asks with ``privacyOneOf``."""
    page = await search_videos(
        shoal_of(request), current_user(request), request[QUERY].filters()
    )
    return video_page(request, page)


@api.route(
    "GET",
    "/api/v1/users/me/videos",
    summary="List my videos",
    auth="user",
    query=MyVideosQuery,
    tags=("videos",),
)
async def list_my_videos(request: web.Request) -> web.Response:
    """Every video of the caller's channels, in every state and privacy, with ``state`` and ``progress``."""
    page = await search_videos(
        shoal_of(request), current_user(request), request[QUERY].filters(), owner=True
    )
    return video_page(request, page)


@api.route("GET", "/api/v1/videos/{id}", summary="Get a video", tags=("videos",))
async def get_video(request: web.Request) -> web.Response:
    """PeerTube's VideoDetails, with the HLS playlist and one file per rendition."""
    shoal = shoal_of(request)
    view = await video_service.video_details(shoal, request.match_info["id"], current_user(request))
    return json_response(serializers.video_details(shoal, view))


@api.route("GET", "/api/v1/videos/{id}/description", summary="Get a video's description", tags=("videos",))
async def get_video_description(request: web.Request) -> web.Response:
    """The full description (PeerTube's ``descriptionPath``)."""
    view = await video_service.video_details(
        shoal_of(request), request.match_info["id"], current_user(request)
    )
    return json_response({"description": view.video.description or None})


@api.route(
    "PUT",
    "/api/v1/videos/{id}",
    summary="Update a video",
    auth="user",
    body=VideoUpdate,
    tags=("videos",),
    responses=NO_CONTENT,
)
async def update_video(request: web.Request) -> web.Response:
    """Owner, moderator or admin; only the fields sent change. Answers 204 as PeerTube does."""
    changes = request[BODY].model_dump(exclude_unset=True)
    await video_service.update_video(
        shoal_of(request), request.match_info["id"], require_user(request), changes
    )
    return no_content()


@api.route(
    "DELETE",
    "/api/v1/videos/{id}",
    summary="Delete a video",
    auth="user",
    tags=("videos",),
    responses=NO_CONTENT,
)
async def delete_video(request: web.Request) -> web.Response:
    """Owner, moderator or admin; removes the row and every file of the video in storage."""
    await video_service.delete_video(shoal_of(request), request.match_info["id"], require_user(request))
    return no_content()


@api.route(
    "POST",
    "/api/v1/videos/{id}/blacklist",
    summary="Hide a video (block it)",
    auth="moderator",
    body=BlacklistBody,
    tags=("moderation",),
    responses=NO_CONTENT,
)
async def hide_video(request: web.Request) -> web.Response:
    """Moderators: hide a video from everyone but its owner and moderators (idempotent)."""
    reason = request[BODY].reason
    await video_service.hide_video(
        shoal_of(request), request.match_info["id"], current_user(request), reason=reason
    )
    return no_content()


@api.route(
    "DELETE",
    "/api/v1/videos/{id}/blacklist",
    summary="Show a hidden video again",
    auth="moderator",
    tags=("moderation",),
    responses=NO_CONTENT,
)
async def unhide_video(request: web.Request) -> web.Response:
    """Moderators: lift the block (idempotent)."""
    await video_service.unhide_video(shoal_of(request), request.match_info["id"], current_user(request))
    return no_content()


_THUMBNAIL_DOC = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "required": ["thumbnailfile"],
            "properties": {"thumbnailfile": {"type": "string", "format": "binary"}},
        }
    }
}


@api.route(
    "POST",
    "/api/v1/videos/{id}/thumbnail",
    summary="Replace a video's thumbnail and preview (multipart field thumbnailfile)",
    auth="user",
    rate="upload",
    tags=("videos",),
    request_content=_THUMBNAIL_DOC,
    responses=NO_CONTENT,
)
async def replace_thumbnail(request: web.Request) -> web.Response:
    """Owner, moderator or admin. A JPEG, PNG or WebP; re-encoded to both JPEG sizes; kept by processing.

    PeerTube takes ``thumbnailfile`` in a multipart ``PUT /videos/{id}``; Shoal's ``PUT``
    is JSON, so the picture has this route of its own (and the upload form's field).
    """
    if request.content_type != "multipart/form-data":
        raise BadRequest("Send the picture as multipart/form-data.", code="unsupported_content_type")
    reader = await request.multipart()
    while (part := await next_part(reader)) is not None:
        if isinstance(part, BodyPartReader) and part.name == thumbnails.FIELD:
            await thumbnails.replace_thumbnail(
                shoal_of(request), request.match_info["id"], require_user(request), _chunks(part)
            )
            return no_content()
        await part.release()
    raise BadRequest("The request has no 'thumbnailfile' part.", code="invalid_field", field=thumbnails.FIELD)


async def next_part(reader: MultipartReader) -> BodyPartReader | MultipartReader | None:
    """The next part of a multipart body; 400 ``malformed_form`` when its headers are broken."""
    try:
        return await reader.next()
    except (ValueError, LookupError, AssertionError, BadHttpMessage) as exc:
        raise BadRequest(f"The multipart body cannot be read: {exc}.", code="malformed_form") from None


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk():
        yield chunk

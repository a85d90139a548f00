"""Upload routes: multipart (legacy), resumable (PeerTube's protocol) and direct to S3."""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import BadHttpMessage
from pydantic import Field

from ..errors import BadRequest, PayloadTooLarge
from ..models import Video
from ..services import direct_uploads, resumable_uploads, thumbnails, uploads
from ..web.context import require_user, shoal_of
from ..web.responses import json_response, no_content
from ..web.validation import Body
from . import api
from .registry import BODY

FIELD_LIMIT = 64 * 1024
FIELDS_MAX = 64
"""Most non-file parts a multipart upload may have (PeerTube's form has about twenty fields)."""
FIELDS_TOTAL_LIMIT = 128 * 1024
"""Most bytes all non-file parts of a multipart upload may hold together (they are kept in memory)."""
CONTENT_RANGE = re.compile(r"^bytes (?:(\d+)-(\d+)|\*)/(\d+)$")
RESUMABLE = "/api/v1/videos/upload-resumable"

_MULTIPART_DOC = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "required": ["videofile", "channelId", "name"],
            "properties": {
                "videofile": {"type": "string", "format": "binary"},
                "channelId": {"type": "integer"},
                "name": {"type": "string"},
                "privacy": {"type": "integer"},
                "description": {"type": "string"},
                "tags[]": {"type": "array", "items": {"type": "string"}},
                "nsfw": {"type": "boolean"},
                "commentsEnabled": {"type": "boolean"},
                "thumbnailfile": {"type": "string", "format": "binary"},
            },
        }
    }
}


def video_ref(video: Video) -> dict[str, Any]:
    """PeerTube's answer to a finished upload."""
    return {"video": {"id": video.id, "uuid": video.uuid, "shortUUID": video.short_uuid}}


def _form_value(name: str, value: str, fields: dict[str, Any]) -> None:
    key = name.removesuffix("[]")
    key = re.sub(r"\[\d+\]$", "", key)
    if key == "tags":
        fields.setdefault("tags", []).append(value)
    elif key in fields:
        raise BadRequest(f"The field '{key}' is given twice.", code="invalid_field", field=key)
    else:
        fields[key] = value


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(uploads.CHUNK):
        yield chunk


@api.route(
    "POST",
    "/api/v1/videos/upload",
    summary="Upload a video in one multipart request",
    auth="user",
    rate="upload",
    tags=("uploads",),
    request_content=_MULTIPART_DOC,
)
async def upload_multipart(request: web.Request) -> web.Response:
    """The file streams to disk; the answer comes as soon as it is stored and processing is queued."""
    shoal = shoal_of(request)
    user = require_user(request)
    limit = shoal.settings.max_upload_size
    if request.content_length is not None and request.content_length > limit + FIELD_LIMIT * 4:
        raise PayloadTooLarge(
            f"The file is larger than this instance accepts ({limit} bytes).", code="max_file_size_reached"
        )
    if request.content_type != "multipart/form-data":
        raise BadRequest("Send the upload as multipart/form-data.", code="unsupported_content_type")
    tmp = uploads.uploads_dir(shoal) / f"multipart-{secrets.token_hex(8)}.part"
    pictures = thumbnails.scratch(shoal)
    try:
        fields, filename = await _receive_form(request, tmp, limit, pictures / "upload")
        attrs = uploads.parse_attributes(fields)
        # A chosen thumbnail is checked and encoded before anything is stored.
        chosen = None
        if (pictures / "upload").exists():
            chosen = await thumbnails.prepare(pictures / "upload", pictures)
        video = await uploads.create_video_from_file(shoal, user, attrs, tmp, filename)
        if chosen is not None:
            await thumbnails.apply(shoal, video.id, chosen)
    finally:
        tmp.unlink(missing_ok=True)
        shutil.rmtree(pictures, ignore_errors=True)
    return json_response(video_ref(video))


async def _receive_form(
    request: web.Request, tmp: Path, limit: int, picture: Path
) -> tuple[dict[str, Any], str]:
    """Stream the ``videofile`` part to ``tmp`` (and a ``thumbnailfile`` to ``picture``); collect the rest.

    The other parts are held in memory, so there may be at most :data:`FIELDS_MAX` of them and
    :data:`FIELDS_TOTAL_LIMIT` bytes in all: past either the upload is refused at once, before
    the parts after it are read.
    """
    fields: dict[str, Any] = {}
    filename = None
    field_parts = field_bytes = 0
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.name == "videofile":
                if filename is not None:
                    raise BadRequest("Send one videofile.", code="invalid_field", field="videofile")
                filename = part.filename or "video"
                await uploads.stream_to_file(_part_chunks(part), tmp, limit=limit)
            elif part.name == thumbnails.FIELD:
                if picture.exists():
                    raise BadRequest("Send one thumbnailfile.", code="invalid_field", field=thumbnails.FIELD)
                await thumbnails.receive(_part_chunks(part), picture)
            else:
                field_parts += 1
                if field_parts > FIELDS_MAX:
                    raise BadRequest(
                        f"A multipart upload has at most {FIELDS_MAX} fields besides its files.",
                        code="too_many_fields",
                    )
                raw = await part.read_chunk(FIELD_LIMIT + 1)
                if len(raw) > FIELD_LIMIT:
                    raise BadRequest(
                        f"The field '{part.name}' is too long.", code="invalid_field", field=part.name
                    )
                field_bytes += len(raw)
                if field_bytes > FIELDS_TOTAL_LIMIT:
                    raise PayloadTooLarge(
                        f"The fields of a multipart upload hold at most {FIELDS_TOTAL_LIMIT} bytes together.",
                        code="fields_too_large",
                    )
                _form_value(part.name, raw.decode(errors="replace"), fields)
    except (ValueError, LookupError, AssertionError, BadHttpMessage) as exc:
        raise BadRequest(f"The multipart body cannot be read: {exc}.", code="malformed_form") from None
    if filename is None:
        raise BadRequest("The upload has no 'videofile' part.", code="invalid_field", field="videofile")
    return fields, filename


@api.route(
    "POST",
    RESUMABLE,
    summary="Start (or find) a resumable upload",
    auth="user",
    rate="upload",
    tags=("uploads",),
    body=uploads.VideoAttributes,
)
async def start_resumable(request: web.Request) -> web.Response:
    """Headers X-Upload-Content-Length and X-Upload-Content-Type describe the file; the JSON body
    the video. 201 with a Location for a new upload, 200 with the received Range for a known one."""
    shoal = shoal_of(request)
    user = require_user(request)
    attrs: uploads.VideoAttributes = request[BODY]
    raw_size = request.headers.get("X-Upload-Content-Length", "")
    if not raw_size.isdigit():
        raise BadRequest(
            "X-Upload-Content-Length must give the file size in bytes.",
            code="invalid_field",
            field="X-Upload-Content-Length",
        )
    content_type = request.headers.get("X-Upload-Content-Type", "application/octet-stream")
    upload, created = await resumable_uploads.start_resumable(shoal, user, attrs, int(raw_size), content_type)
    headers = {
        "Location": f"{RESUMABLE}?upload_id={upload.id}",
        "X-Upload-Expires": upload.expires_at.isoformat(),
    }
    if created:
        return json_response({"uploadId": upload.id}, status=201, headers=headers)
    headers.update(resumable_uploads.range_header(resumable_uploads.resumable_offset(shoal, upload)))
    return json_response({"uploadId": upload.id}, status=200, headers=headers)


def _upload_id(request: web.Request) -> str:
    upload_id = request.query.get("upload_id", "")
    if not upload_id or len(upload_id) > 64:
        raise BadRequest(
            "Give the upload_id from the Location header.", code="invalid_field", field="upload_id"
        )
    return upload_id


@api.route(
    "PUT",
    RESUMABLE,
    summary="Send a chunk of a resumable upload, or ask how far it got",
    auth="user",
    tags=("uploads",),
    request_content={"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
)
async def put_resumable(request: web.Request) -> web.Response:
    """``Content-Range: bytes a-b/total`` sends a chunk; ``bytes */total`` with no body asks for the
    offset. 308 with ``Range`` while incomplete, 200 with the video once the last byte arrived
    (also to a retried last chunk)."""
    shoal = shoal_of(request)
    user = require_user(request)
    upload_id = _upload_id(request)
    match = CONTENT_RANGE.match(request.headers.get("Content-Range", ""))
    if match is None:
        raise BadRequest(
            "Content-Range must be 'bytes START-END/TOTAL' or 'bytes */TOTAL'.",
            code="invalid_content_range",
            field="Content-Range",
        )
    start, end, total = match.groups()
    if start is None:
        result = await resumable_uploads.resumable_status(shoal, user, upload_id)
    else:
        chunks = request.content.iter_chunked(uploads.CHUNK)
        result = await resumable_uploads.append_chunk(
            shoal, user, upload_id, int(start), int(end), int(total), chunks
        )
    if isinstance(result, Video):
        return json_response(video_ref(result))
    return web.Response(status=308, headers=resumable_uploads.range_header(result))


@api.route("DELETE", RESUMABLE, summary="Cancel a resumable upload", auth="user", tags=("uploads",))
async def delete_resumable(request: web.Request) -> web.Response:
    """Removes the bytes received so far."""
    await uploads.cancel_upload(shoal_of(request), require_user(request), _upload_id(request))
    return no_content()


class DirectStart(uploads.VideoAttributes):
    size: int = Field(gt=0)
    content_type: str = "application/octet-stream"


class DirectPart(Body):
    part_number: int = Field(ge=1, le=direct_uploads.S3_MAX_PARTS)
    etag: str = Field(min_length=1, max_length=200)


class DirectComplete(Body):
    parts: list[DirectPart] = Field(min_length=1, max_length=direct_uploads.S3_MAX_PARTS)


@api.route(
    "POST",
    "/api/v1/videos/upload-direct",
    summary="Start a direct upload to S3 with presigned parts",
    auth="user",
    rate="upload",
    tags=("uploads",),
    body=DirectStart,
)
async def start_direct(request: web.Request) -> web.Response:
    """Answers the part size and one presigned PUT URL per part; the client PUTs the parts to the
    bucket, keeps each part's ETag, then calls complete."""
    shoal = shoal_of(request)
    body: DirectStart = request[BODY]
    attrs = uploads.VideoAttributes.model_validate(body.model_dump(exclude={"size", "content_type"}))
    upload, parts = await direct_uploads.start_direct(
        shoal, require_user(request), attrs, body.size, body.content_type
    )
    return json_response(
        {"uploadId": upload.id, "partSize": upload.part_size, "parts": parts, "expiresAt": upload.expires_at},
        status=201,
    )


@api.route(
    "POST",
    "/api/v1/videos/upload-direct/{upload_id}/complete",
    summary="Complete a direct upload",
    auth="user",
    tags=("uploads",),
    body=DirectComplete,
)
async def complete_direct(request: web.Request) -> web.Response:
    """The server completes the multipart upload, checks the object's size and starts processing."""
    body: DirectComplete = request[BODY]
    video = await direct_uploads.complete_direct(
        shoal_of(request),
        require_user(request),
        request.match_info["upload_id"],
        [(p.part_number, p.etag) for p in body.parts],
    )
    return json_response(video_ref(video))


@api.route(
    "DELETE",
    "/api/v1/videos/upload-direct/{upload_id}",
    summary="Abort a direct upload",
    auth="user",
    tags=("uploads",),
)
async def abort_direct(request: web.Request) -> web.Response:
    """Aborts the multipart upload in the bucket."""
    await uploads.cancel_upload(shoal_of(request), require_user(request), request.match_info["upload_id"])
    return no_content()

"""Direct uploads to S3: the client sends the parts to presigned URLs, then says it is done.

The bytes never pass through Shoal. Starting checks the quota and opens a multipart upload
under ``uploads/<id>/``; completing assembles the parts, checks the object's size and creates
the video as the other uploads do, with that object as its original.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import uuid as uuid_lib
from datetime import timedelta
from typing import Any

from ..core import Shoal
from ..errors import ApiError, BadRequest
from ..models import UploadSession, User, Video, utcnow
from ..storage import keys
from .uploads import (
    VideoAttributes,
    check_upload_allowed,
    create_uploaded_video,
    discard_upload,
    get_upload,
    new_upload_session,
    safe_filename,
)

log = logging.getLogger("shoal.uploads")

S3_PART_MIN = 8 * 1024 * 1024
S3_MAX_PARTS = 10_000


async def start_direct(
    shoal: Shoal, user: User, attrs: VideoAttributes, size: int, content_type: str
) -> tuple[UploadSession, list[dict[str, Any]]]:
    """Start a multipart upload in the bucket and presign one URL per part."""
    if shoal.storage.kind != "s3":
        raise BadRequest(
            "Direct uploads need S3 storage; use the resumable upload.", code="direct_upload_unavailable"
        )
    if size <= 0:
        raise BadRequest("size must be the file size in bytes.", code="invalid_field", field="size")
    async with shoal.db.read() as session:
        await check_upload_allowed(shoal, session, user, attrs.channel_id, size)
    part_size = max(S3_PART_MIN, math.ceil(size / S3_MAX_PARTS))
    upload_id = secrets.token_urlsafe(18)
    key = keys.upload_part(upload_id, safe_filename(attrs.filename))
    s3_upload_id = await shoal.storage.create_multipart_upload(key, content_type)
    ttl = shoal.settings.upload_session_ttl
    try:
        parts = []
        for number in range(1, math.ceil(size / part_size) + 1):
            url = await shoal.storage.presign_upload_part(key, s3_upload_id, number, ttl)
            parts.append({"partNumber": number, "url": url})
        async with shoal.db.write() as session:
            await check_upload_allowed(shoal, session, user, attrs.channel_id, size)
            upload = new_upload_session(
                user,
                attrs,
                size,
                content_type,
                id=upload_id,
                kind="s3",
                s3_key=key,
                s3_upload_id=s3_upload_id,
                part_size=part_size,
                expires_at=utcnow() + timedelta(seconds=ttl),
            )
            session.add(upload)
    except (Exception, asyncio.CancelledError):
        await shoal.storage.abort_multipart_upload(key, s3_upload_id)
        raise
    return upload, parts


async def complete_direct(shoal: Shoal, user: User, upload_id: str, parts: list[tuple[int, str]]) -> Video:
    """Complete the bucket's multipart upload, check the object, and create the video."""
    upload = await get_upload(shoal, user, upload_id, "s3")
    if upload.video_id is not None:
        async with shoal.db.read() as session:
            video = await session.get(Video, upload.video_id)
        if video is not None:
            return video
    assert upload.s3_key and upload.s3_upload_id
    if not parts:
        raise BadRequest("List the uploaded parts with their ETags.", code="invalid_field", field="parts")
    try:
        await shoal.storage.complete_multipart_upload(upload.s3_key, upload.s3_upload_id, sorted(parts))
    except Exception as exc:
        raise BadRequest(
            f"The bucket refused to complete the upload: {exc}.", code="upload_incomplete"
        ) from None
    info = await shoal.storage.stat(upload.s3_key)
    if info is None or info.size != upload.size:
        await discard_upload(shoal, upload)
        got = info.size if info else 0
        raise BadRequest(
            f"The uploaded object has {got} bytes, not the {upload.size} announced; it was discarded.",
            code="size_mismatch",
        )
    attrs = VideoAttributes.model_validate(upload.attributes)
    try:
        video = await create_uploaded_video(
            shoal, user, attrs, str(uuid_lib.uuid4()), upload.s3_key, upload.size, upload.filename, upload
        )
    except ApiError:
        await discard_upload(shoal, upload)
        raise
    return video

"""Resumable uploads, PeerTube's protocol: a session, then chunks at offsets, then the video.

Chunks stream to ``<data dir>/uploads/resumable/<id>.part``. One request at a time writes an
upload: it claims the range it writes with a lease (:data:`CHUNK_LEASE`), renewed while bytes
arrive, and the database's ``received`` is the offset clients resume from. The last chunk
creates the video; the session row stays, naming it, so a retried last request gets it again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import uuid as uuid_lib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from sqlalchemy import or_, select, update

from ..core import Shoal
from ..errors import BadRequest, Conflict, NotFound, PayloadTooLarge, TooManyRequests
from ..models import UploadSession, User, Video, utcnow
from ..storage import keys
from .uploads import (
    VideoAttributes,
    check_upload_allowed,
    create_uploaded_video,
    get_upload,
    new_upload_session,
    resumable_path,
    safe_filename,
)

log = logging.getLogger("shoal.uploads")

CHUNK_LEASE = 60.0
"""Seconds a request writing a chunk holds its upload, renewed while bytes arrive; a crashed
writer's claim lapses after it."""


async def start_resumable(
    shoal: Shoal, user: User, attrs: VideoAttributes, size: int, content_type: str
) -> tuple[UploadSession, bool]:
    """Start (or find the same unfinished) resumable upload. Returns (session, created)."""
    if size <= 0:
        raise BadRequest(
            "X-Upload-Content-Length must be the file size, and an empty file is no video.",
            code="empty_file" if size == 0 else "invalid_field",
            field="X-Upload-Content-Length",
        )
    async with shoal.db.write() as session:
        existing = await session.scalar(
            select(UploadSession).where(
                UploadSession.user_id == user.id,
                UploadSession.kind == "resumable",
                UploadSession.filename == (attrs.filename or ""),
                UploadSession.size == size,
                UploadSession.video_id.is_(None),
                UploadSession.expires_at > utcnow(),
            )
        )
        if existing is not None and existing.attributes.get("name") == attrs.name:
            return existing, False
        await check_upload_allowed(shoal, session, user, attrs.channel_id, size)
        upload = new_upload_session(
            user,
            attrs,
            size,
            content_type,
            id=secrets.token_urlsafe(18),
            kind="resumable",
            expires_at=utcnow() + timedelta(seconds=shoal.settings.upload_session_ttl),
        )
        session.add(upload)
    path = resumable_path(shoal, upload.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return upload, True


def resumable_offset(shoal: Shoal, upload: UploadSession) -> int:
    """Bytes of a resumable upload received so far (the database's word, not the file's size)."""
    return upload.received


async def _finished_video(shoal: Shoal, upload: UploadSession) -> Video | None:
    """The video a finished upload made (its row is kept to answer retries), else None."""
    if upload.video_id is None:
        return None
    async with shoal.db.read() as session:
        return await session.get(Video, upload.video_id)


async def resumable_status(shoal: Shoal, user: User, upload_id: str) -> int | Video:
    """How far a resumable upload got: its offset, or its video once finished."""
    upload = await get_upload(shoal, user, upload_id, "resumable")
    video = await _finished_video(shoal, upload)
    if video is not None:
        return video
    return upload.received


async def _claim(shoal: Shoal, upload: UploadSession, start: int) -> int:
    """Take the upload for one chunk starting at ``start``: at once, in any web process.

    The claim is a conditional update, so of two requests carrying the same chunk (a client's
    retry through the load balancer) exactly one writes it; the other gets 429 while it is
    written and 409 with the new offset after. Returns the offset claimed: ``start``, or the
    file size when every byte is there but the video was not made (the last request is retried).
    """
    now = utcnow()
    free = or_(UploadSession.receiving_until.is_(None), UploadSession.receiving_until < now)
    async with shoal.db.write() as session:
        claimed = await session.scalar(
            update(UploadSession)
            .where(
                UploadSession.id == upload.id,
                UploadSession.video_id.is_(None),
                or_(UploadSession.received == start, UploadSession.received == UploadSession.size),
                free,
            )
            .values(receiving_until=now + timedelta(seconds=CHUNK_LEASE))
            .returning(UploadSession.received)
        )
        if claimed is not None:
            return claimed
        row = await session.get(UploadSession, upload.id)
    if row is None:
        raise NotFound("No such upload (it may have expired).", code="upload_not_found", field="upload_id")
    if row.receiving_until is not None and row.receiving_until >= now:
        raise TooManyRequests("Another chunk of this upload is still being received.", retry_after=1)
    raise Conflict(
        f"This chunk starts at {start} but the upload is at {row.received}.",
        code="range_mismatch",
        headers=range_header(row.received),
    )


async def _renew(shoal: Shoal, upload_id: str) -> None:
    async with shoal.db.write() as session:
        await session.execute(
            update(UploadSession)
            .where(UploadSession.id == upload_id)
            .values(receiving_until=utcnow() + timedelta(seconds=CHUNK_LEASE))
        )


async def _release(shoal: Shoal, upload_id: str, start: int, written: int) -> int:
    """Advance the offset by the bytes written from ``start`` and let the next chunk in."""
    now = utcnow()
    async with shoal.db.write() as session:
        await session.execute(
            update(UploadSession)
            .where(UploadSession.id == upload_id, UploadSession.received == start)
            .values(
                received=start + written,
                receiving_until=None,
                expires_at=now + timedelta(seconds=shoal.settings.upload_session_ttl),
            )
        )
    return start + written


async def write_at(
    shoal: Shoal,
    upload_id: str,
    chunks: AsyncIterator[bytes],
    path: Path,
    start: int,
    length: int,
    written: list[int],
) -> None:
    """Write ``chunks`` into ``path`` from byte ``start`` on (never appending), at most ``length``
    bytes; ``written[0]`` counts what is on disk, also when the client goes away midway."""
    loop = asyncio.get_running_loop()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    renewed = loop.time()
    try:
        async for chunk in chunks:
            if written[0] + len(chunk) > length:
                raise PayloadTooLarge(
                    f"The chunk is longer than its Content-Range ({length} bytes).",
                    code="max_file_size_reached",
                )
            view = memoryview(chunk)
            while view:
                done = await loop.run_in_executor(None, os.pwrite, fd, view, start + written[0])
                written[0] += done
                view = view[done:]
            if loop.time() - renewed > CHUNK_LEASE / 3:
                await _renew(shoal, upload_id)
                renewed = loop.time()
    finally:
        os.close(fd)


async def append_chunk(
    shoal: Shoal,
    user: User,
    upload_id: str,
    start: int,
    end: int,
    total: int,
    chunks: AsyncIterator[bytes],
) -> int | Video:
    """Write bytes ``start..end`` of a resumable upload at that offset.

    Returns the new offset, or the created video once the last byte arrived (again, to a client
    that retries its last request). The offset is the database's: a chunk that does not start
    there is refused with 409 and the current ``Range``, one that another request is writing
    (in this process or another) with 429.
    """
    upload = await get_upload(shoal, user, upload_id, "resumable")
    video = await _finished_video(shoal, upload)
    if video is not None:
        return video
    if total != upload.size:
        raise BadRequest(
            f"The total size must be {upload.size}.", code="invalid_content_range", field="Content-Range"
        )
    if end < start or end >= upload.size:
        raise BadRequest(
            "Content-Range is outside the file.", code="invalid_content_range", field="Content-Range"
        )
    claimed = await _claim(shoal, upload, start)
    path = resumable_path(shoal, upload_id)
    written = [0]
    finished = False
    try:
        if claimed == start:
            await write_at(shoal, upload_id, chunks, path, start, end - start + 1, written)
        if claimed + written[0] < upload.size:
            return claimed + written[0]
        video = await _finish_resumable(shoal, user, upload, path)
        finished = True
        return video
    finally:
        if not finished:
            await _release(shoal, upload_id, claimed, written[0])


async def _finish_resumable(shoal: Shoal, user: User, upload: UploadSession, path: Path) -> Video:
    """Every byte is there: store the original and create the video (the upload stays claimed)."""
    attrs = VideoAttributes.model_validate(upload.attributes)
    video_uuid = str(uuid_lib.uuid4())
    source_key = keys.original(video_uuid, safe_filename(upload.filename))
    await shoal.storage.put_file(source_key, path)
    try:
        video = await create_uploaded_video(
            shoal, user, attrs, video_uuid, source_key, upload.size, upload.filename, upload
        )
    except (Exception, asyncio.CancelledError):
        await shoal.storage.delete(source_key)
        raise
    path.unlink(missing_ok=True)
    return video


def range_header(offset: int) -> dict[str, str]:
    """The ``Range`` header telling a client how many bytes we have (none: no header)."""
    return {"Range": f"bytes=0-{offset - 1}"} if offset > 0 else {}

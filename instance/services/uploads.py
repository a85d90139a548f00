"""Uploads: multipart, resumable (PeerTube's protocol) and direct to S3 with presigned parts.

Bytes never pass through memory whole: multipart and resumable uploads stream to a file
under ``<data dir>/uploads``; direct uploads go from the client to the bucket. Once all
bytes are there, the original is put in storage under ``originals/<uuid>/`` and the video
row and its processing work row are written in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import secrets
import shutil
import uuid as uuid_lib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..api.registry import Body, validation_problem
from ..core import Shoal
from ..errors import ApiError, BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, TooManyRequests
from ..models import Actor, ActorKind, Privacy, UploadSession, User, Video, VideoState, utcnow
from ..storage import keys
from ..vocab import CATEGORIES, LANGUAGES, LICENCES
from . import processing  # noqa: F401  (registers the process_video job)

log = logging.getLogger("shoal.uploads")

CHUNK = 1024 * 1024
S3_PART_MIN = 8 * 1024 * 1024
S3_MAX_PARTS = 10_000
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
PROCESSING_STATES = (VideoState.RECEIVED, VideoState.PROBING, VideoState.TRANSCODING, VideoState.PUBLISHING)


class VideoAttributes(Body):
    """The video fields an upload carries (PeerTube's names)."""

    name: str = Field(min_length=3, max_length=120)
    channel_id: int
    privacy: int = Privacy.PUBLIC
    description: str = Field("", max_length=10_000)
    support: str = Field("", max_length=1000)
    tags: list[str] = Field(default_factory=list, max_length=5)
    nsfw: bool = False
    comments_enabled: bool = True
    download_enabled: bool = True
    wait_transcoding: bool = True
    category: int | None = None
    licence: int | None = None
    language: str | None = None
    originally_published_at: datetime | None = None
    filename: str | None = Field(None, max_length=255)

    @field_validator("privacy")
    @classmethod
    def _privacy(cls, value: int) -> int:
        if value not in {p.value for p in Privacy}:
            raise ValueError("must be 1 (public), 2 (unlisted), 3 (private) or 4 (internal)")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        for tag in value:
            if not 2 <= len(tag) <= 30:
                raise ValueError("each tag has 2 to 30 characters")
        return value

    @field_validator("category")
    @classmethod
    def _category(cls, value: int | None) -> int | None:
        if value is not None and value not in CATEGORIES:
            raise ValueError("unknown category id")
        return value

    @field_validator("licence")
    @classmethod
    def _licence(cls, value: int | None) -> int | None:
        if value is not None and value not in LICENCES:
            raise ValueError("unknown licence id")
        return value

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value is not None and value not in LANGUAGES:
            raise ValueError("unknown language code")
        return value


def parse_attributes(data: dict[str, Any]) -> VideoAttributes:
    """Validate upload fields (JSON values or form strings); 400 names the bad field."""
    try:
        return VideoAttributes.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc, "upload") from None


def safe_filename(name: str | None) -> str:
    """A storage-safe version of a client's file name (never a path)."""
    base = Path((name or "video").replace("\\", "/")).name
    cleaned = _SAFE_NAME.sub("-", base).strip("-.") or "video"
    return cleaned[-100:]


def uploads_dir(shoal: Shoal) -> Path:
    path = shoal.settings.data_dir / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def resumable_path(shoal: Shoal, upload_id: str) -> Path:
    return uploads_dir(shoal) / "resumable" / f"{upload_id}.part"


async def used_quota(session: AsyncSession, user: User, *, excluding: str | None = None) -> int:
    """Bytes the user's uploads take: processed originals plus uploads in progress."""
    videos = await session.scalar(
        select(func.coalesce(func.sum(Video.source_size), 0))
        .join(Actor, Actor.id == Video.channel_id)
        .where(Actor.owner_id == user.account_id)
    )
    pending = select(func.coalesce(func.sum(UploadSession.size), 0)).where(
        UploadSession.user_id == user.id, UploadSession.video_id.is_(None)
    )
    if excluding is not None:
        pending = pending.where(UploadSession.id != excluding)
    return int(videos or 0) + int(await session.scalar(pending) or 0)


async def check_upload_allowed(
    shoal: Shoal,
    session: AsyncSession,
    user: User,
    channel_id: int,
    size: int | None,
    *,
    excluding: str | None = None,
) -> Actor:
    """The target channel, once the user may upload ``size`` bytes to it (413 with a code if not)."""
    channel = await session.get(Actor, channel_id)
    if channel is None or channel.kind != ActorKind.GROUP or channel.host is not None:
        raise NotFound(f"No channel with id {channel_id}.", code="channel_not_found", field="channelId")
    if channel.owner_id != user.account_id:
        raise Forbidden("You can only upload to your own channels.", code="not_owner", field="channelId")
    limit = shoal.settings.max_upload_size
    if size is not None and size > limit:
        raise PayloadTooLarge(
            f"The file is larger than this instance accepts ({limit} bytes).", code="max_file_size_reached"
        )
    if size is not None and user.video_quota >= 0:
        used = await used_quota(session, user, excluding=excluding)
        if used + size > user.video_quota:
            raise PayloadTooLarge(
                f"This upload would exceed your quota ({used} of {user.video_quota} bytes used).",
                code="quota_reached",
            )
    return channel


async def stream_to_file(chunks: AsyncIterator[bytes], path: Path, *, limit: int, mode: str = "wb") -> int:
    """Write ``chunks`` to ``path``; raise 413 past ``limit`` bytes. Returns bytes written."""
    written = 0
    loop = asyncio.get_running_loop()
    with path.open(mode) as fh:
        async for chunk in chunks:
            written += len(chunk)
            if written > limit:
                raise PayloadTooLarge(
                    f"The file is larger than this upload allows ({limit} bytes).",
                    code="max_file_size_reached",
                )
            await loop.run_in_executor(None, fh.write, chunk)
    return written


async def create_video_from_file(
    shoal: Shoal, user: User, attrs: VideoAttributes, path: Path, filename: str | None
) -> Video:
    """Put the received file in storage as the original and create the video and its work row."""
    size = path.stat().st_size
    if size == 0:
        raise BadRequest("The video file is empty.", code="empty_file", field="videofile")
    video_uuid = str(uuid_lib.uuid4())
    source_key = keys.original(video_uuid, safe_filename(filename or attrs.filename))
    async with shoal.db.read() as session:
        await check_upload_allowed(shoal, session, user, attrs.channel_id, size)
    await shoal.storage.put_file(source_key, path)
    try:
        return await _create_video(shoal, user, attrs, video_uuid, source_key, size, filename)
    except (Exception, asyncio.CancelledError):
        await shoal.storage.delete(source_key)
        raise
    finally:
        path.unlink(missing_ok=True)


async def _create_video(
    shoal: Shoal,
    user: User,
    attrs: VideoAttributes,
    video_uuid: str,
    source_key: str,
    size: int,
    filename: str | None,
    upload: UploadSession | None = None,
) -> Video:
    from ..jobs import add_work, ring_item
    from .videos import add_video

    async with shoal.db.write() as session:
        channel = await check_upload_allowed(
            shoal, session, user, attrs.channel_id, size, excluding=upload.id if upload else None
        )
        video = await add_video(
            shoal,
            session,
            channel,
            uuid=video_uuid,
            name=attrs.name,
            privacy=attrs.privacy,
            description=attrs.description,
            support=attrs.support,
            tags=attrs.tags,
            nsfw=attrs.nsfw,
            comments_enabled=attrs.comments_enabled,
            download_enabled=attrs.download_enabled,
            wait_transcoding=attrs.wait_transcoding,
            category=attrs.category,
            licence=attrs.licence,
            language=attrs.language,
            originally_published_at=attrs.originally_published_at,
            state=VideoState.RECEIVED,
        )
        video.source_key = source_key
        video.source_size = size
        video.source_filename = (filename or attrs.filename or "")[:255] or None
        video.storage_prefix = secrets.token_hex(8)
        if upload is not None:
            # The upload row stays, naming its video, until it expires: a client retrying its
            # last request gets the video again.
            await session.execute(
                update(UploadSession)
                .where(UploadSession.id == upload.id)
                .values(video_id=video.id, received=size, receiving_until=None)
            )
        item = await add_work(session, "process_video", str(video.id), dedupe_key=f"process_video:{video.id}")
    log.info("video %s received (%d bytes) from %s", video.uuid, size, user.username)
    await ring_item(shoal, item)
    return video


# Resumable uploads ----------------------------------------------------------------------

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
        upload = UploadSession(
            id=secrets.token_urlsafe(18),
            kind="resumable",
            user_id=user.id,
            channel_id=attrs.channel_id,
            filename=attrs.filename or "",
            size=size,
            content_type=content_type,
            attributes=attrs.model_dump(mode="json", by_alias=True),
            expires_at=utcnow() + timedelta(seconds=shoal.settings.upload_session_ttl),
        )
        session.add(upload)
    path = resumable_path(shoal, upload.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return upload, True


async def get_upload(shoal: Shoal, user: User, upload_id: str, kind: str) -> UploadSession:
    async with shoal.db.read() as session:
        upload = await session.get(UploadSession, upload_id)
    if upload is None or upload.user_id != user.id or upload.kind != kind:
        raise NotFound("No such upload (it may have expired).", code="upload_not_found", field="upload_id")
    return upload


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
    shoal: Shoal, upload_id: str, chunks: AsyncIterator[bytes], path: Path, start: int, length: int,
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
        video = await _create_video(
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


async def cancel_upload(shoal: Shoal, user: User, upload_id: str) -> None:
    """Drop an unfinished upload and its bytes (resumable or direct)."""
    async with shoal.db.read() as session:
        upload = await session.get(UploadSession, upload_id)
    if upload is None or upload.user_id != user.id:
        raise NotFound("No such upload (it may have expired).", code="upload_not_found", field="upload_id")
    await _discard(shoal, upload)


async def _discard(shoal: Shoal, upload: UploadSession) -> None:
    if upload.kind == "s3" and upload.s3_key and upload.s3_upload_id and upload.video_id is None:
        with contextlib.suppress(Exception):
            await shoal.storage.abort_multipart_upload(upload.s3_key, upload.s3_upload_id)
        with contextlib.suppress(Exception):
            await shoal.storage.delete(upload.s3_key)
    resumable_path(shoal, upload.id).unlink(missing_ok=True)
    async with shoal.db.write() as session:
        row = await session.get(UploadSession, upload.id)
        if row is not None:
            await session.delete(row)


def scratch_dir(shoal: Shoal) -> Path:
    """Where short-lived working folders go (``tempfile`` with ``dir=``): swept when a crash leaves them."""
    path = shoal.settings.data_dir / "scratch"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sweep_folders(
    folder: Path, cutoff: float, *, pattern: str = "*", keep: frozenset[str] = frozenset()
) -> int:
    """Remove the entries of ``folder`` matching ``pattern`` last changed before ``cutoff``, but
    not those named in ``keep``."""
    removed = 0
    for entry in folder.glob(pattern) if folder.is_dir() else []:
        if entry.name in keep:
            continue
        try:
            if entry.lstat().st_mtime >= cutoff:
                continue
        except FileNotFoundError:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed


async def expire_uploads(shoal: Shoal) -> int:
    """Remove idle uploads past their expiry (and finished ones' rows), part files no session owns,
    and the scratch folders a crash left behind (thumbnail staging, processing folders of videos
    no longer processing, working folders under ``scratch``). Returns the count."""
    async with shoal.db.read() as session:
        expired = list(
            await session.scalars(
                select(UploadSession).where(UploadSession.expires_at <= utcnow())
            )
        )
        known = set(await session.scalars(select(UploadSession.id)))
    for upload in expired:
        # A finished upload's row only answers retries of its last request: its bytes are the video's.
        await _discard(shoal, upload)
        if upload.video_id is None:
            log.info("expired upload %s (%s, %d bytes declared)", upload.id, upload.kind, upload.size)
    removed = len(expired)
    cutoff = utcnow().timestamp() - shoal.settings.upload_session_ttl
    stale = [p for p in (uploads_dir(shoal) / "resumable").glob("*.part") if p.stem not in known]
    stale += list(uploads_dir(shoal).glob("multipart-*.part"))
    for part in stale:
        if part.stat().st_mtime < cutoff:
            part.unlink(missing_ok=True)
            removed += 1
    async with shoal.db.read() as session:
        processing = frozenset(
            await session.scalars(select(Video.uuid).where(Video.state.in_(PROCESSING_STATES)))
        )
    data = shoal.settings.data_dir
    removed += await asyncio.to_thread(_sweep_folders, uploads_dir(shoal), cutoff, pattern="thumbnail-*")
    removed += await asyncio.to_thread(_sweep_folders, data / "work", cutoff, keep=processing)
    removed += await asyncio.to_thread(_sweep_folders, data / "scratch", cutoff)
    return removed


# Direct uploads to S3 ---------------------------------------------------------------------


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
            upload = UploadSession(
                id=upload_id,
                kind="s3",
                user_id=user.id,
                channel_id=attrs.channel_id,
                filename=attrs.filename or "",
                size=size,
                content_type=content_type,
                attributes=attrs.model_dump(mode="json", by_alias=True),
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
        await _discard(shoal, upload)
        got = info.size if info else 0
        raise BadRequest(
            f"The uploaded object has {got} bytes, not the {upload.size} announced; it was discarded.",
            code="size_mismatch",
        )
    attrs = VideoAttributes.model_validate(upload.attributes)
    try:
        video = await _create_video(
            shoal, user, attrs, str(uuid_lib.uuid4()), upload.s3_key, upload.size, upload.filename, upload
        )
    except ApiError:
        await _discard(shoal, upload)
        raise
    return video

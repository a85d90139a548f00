"""Uploads: what every kind shares (attributes, quota, creating the video, expiry) and multipart.

Bytes never pass through memory whole: multipart and resumable uploads
(:mod:`.resumable_uploads`) stream to a file under ``<data dir>/uploads``; direct uploads
(:mod:`.direct_uploads`) go from the client to the bucket. Once all bytes are there, the
original is put in storage under ``originals/<uuid>/`` and the video row and its processing
work row are written in one transaction (:func:`create_uploaded_video`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import shutil
import uuid as uuid_lib
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..core import Shoal
from ..errors import BadRequest, Forbidden, NotFound, PayloadTooLarge
from ..models import Actor, ActorKind, Privacy, UploadSession, User, Video, VideoState, utcnow
from ..storage import keys
from ..web.validation import Body, validation_problem
from .video_fields import (
    CategoryField,
    DescriptionField,
    LanguageField,
    LicenceField,
    NameField,
    PrivacyField,
    SupportField,
    TagsField,
)

log = logging.getLogger("shoal.uploads")

CHUNK = 1024 * 1024
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
PROCESSING_STATES = (VideoState.RECEIVED, VideoState.PROBED, VideoState.TRANSCODED)


class VideoAttributes(Body):
    """The video fields an upload carries (PeerTube's names)."""

    name: NameField
    channel_id: int
    privacy: PrivacyField = Privacy.PUBLIC
    description: DescriptionField = ""
    support: SupportField = ""
    tags: TagsField = Field(default_factory=list)
    nsfw: bool = False
    comments_enabled: bool = True
    download_enabled: bool = True
    wait_transcoding: bool = True
    category: CategoryField | None = None
    licence: LicenceField | None = None
    language: LanguageField | None = None
    originally_published_at: datetime | None = None
    filename: str | None = Field(None, max_length=255)


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


def new_upload_session(
    user: User, attrs: VideoAttributes, size: int, content_type: str, **fields: Any
) -> UploadSession:
    """The row of an upload in progress, whatever its kind (``fields``: kind, id, expiry and the
    kind's own columns): who sends what into which channel, and the video's attributes."""
    return UploadSession(
        user_id=user.id,
        channel_id=attrs.channel_id,
        filename=attrs.filename or "",
        size=size,
        content_type=content_type,
        attributes=attrs.model_dump(mode="json", by_alias=True),
        **fields,
    )


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
        return await create_uploaded_video(shoal, user, attrs, video_uuid, source_key, size, filename)
    except (Exception, asyncio.CancelledError):
        await shoal.storage.delete(source_key)
        raise
    finally:
        path.unlink(missing_ok=True)


async def create_uploaded_video(
    shoal: Shoal,
    user: User,
    attrs: VideoAttributes,
    video_uuid: str,
    source_key: str,
    size: int,
    filename: str | None,
    upload: UploadSession | None = None,
) -> Video:
    """Create the video of an upload whose original is stored under ``source_key``, and its
    processing work row, in one transaction; a finished ``upload`` row names its video."""
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
        item = await add_work(
            shoal, session, "process_video", str(video.id), dedupe_key=f"process_video:{video.id}"
        )
    log.info("video %s received (%d bytes) from %s", video.uuid, size, user.username)
    await ring_item(shoal, item)
    return video


async def get_upload(shoal: Shoal, user: User, upload_id: str, kind: str) -> UploadSession:
    """The caller's unfinished or finished upload of ``kind`` (404 ``upload_not_found`` otherwise)."""
    async with shoal.db.read() as session:
        upload = await session.get(UploadSession, upload_id)
    if upload is None or upload.user_id != user.id or upload.kind != kind:
        raise NotFound("No such upload (it may have expired).", code="upload_not_found", field="upload_id")
    return upload


async def cancel_upload(shoal: Shoal, user: User, upload_id: str) -> None:
    """Drop an unfinished upload and its bytes (resumable or direct)."""
    async with shoal.db.read() as session:
        upload = await session.get(UploadSession, upload_id)
    if upload is None or upload.user_id != user.id:
        raise NotFound("No such upload (it may have expired).", code="upload_not_found", field="upload_id")
    await discard_upload(shoal, upload)


async def discard_upload(shoal: Shoal, upload: UploadSession) -> None:
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
            await session.scalars(select(UploadSession).where(UploadSession.expires_at <= utcnow()))
        )
        known = set(await session.scalars(select(UploadSession.id)))
    for upload in expired:
        # A finished upload's row only answers retries of its last request: its bytes are the video's.
        await discard_upload(shoal, upload)
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

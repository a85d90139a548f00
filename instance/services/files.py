"""Who may open a video's files: public ones freely, private and internal ones with a token.

A file token is ``<expiry>.<hmac>`` over the video's UUID with the server secret: it opens
that video's files, and no other, until it expires (PeerTube's ``videoFileToken``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import select

from ..core import Shoal
from ..models import Privacy, Video, VideoState

log = logging.getLogger("shoal.files")

CACHE_SECONDS = 5.0
_cache: dict[tuple[int, str], tuple[float, FileAccess | None]] = {}


@dataclass(frozen=True)
class FileAccess:
    """What serving a video's files needs to know about it."""

    video_id: int
    uuid: str
    needs_token: bool
    published: bool


def make_file_token(secret: bytes, video_uuid: str, ttl: int, *, now: float | None = None) -> tuple[str, int]:
    """A token opening ``video_uuid``'s files for ``ttl`` seconds; returns (token, expiry)."""
    expires = int((now or time.time()) + ttl)
    mac = hmac.new(secret, f"file:{video_uuid}:{expires}".encode(), hashlib.sha256).hexdigest()
    return f"{expires}.{mac}", expires


def check_file_token(secret: bytes, video_uuid: str, token: str | None) -> bool:
    """True when ``token`` was made for this video and has not expired."""
    if not token or "." not in token:
        return False
    raw_expiry, mac = token.split(".", 1)
    if not raw_expiry.isdigit() or int(raw_expiry) < time.time():
        return False
    expected = hmac.new(secret, f"file:{video_uuid}:{raw_expiry}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, mac)


async def file_access(shoal: Shoal, video_uuid: str) -> FileAccess | None:
    """The access rule for a local video's files (cached a few seconds: files are hot paths)."""
    key = (id(shoal), video_uuid)
    hit = _cache.get(key)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    async with shoal.db.read() as session:
        row = (
            await session.execute(
                select(Video.id, Video.privacy, Video.hidden, Video.state, Video.remote_url).where(
                    Video.uuid == video_uuid
                )
            )
        ).first()
    access = None
    if row is not None and row.remote_url is None:
        access = FileAccess(
            video_id=row.id,
            uuid=video_uuid,
            needs_token=row.privacy in (Privacy.PRIVATE, Privacy.INTERNAL) or row.hidden,
            published=row.state == VideoState.PUBLISHED,
        )
    if len(_cache) > 10_000:
        _cache.clear()
    _cache[key] = (now + CACHE_SECONDS, access)
    return access


def access_decision(shoal: Shoal, video_uuid: str) -> tuple[float, FileAccess | None] | None:
    """The cached decision for a video as it stands: (expiry, access), or None when none is cached.

    A new decision is a new tuple: callers that kept one compare by identity to learn that it was
    replaced or forgotten.
    """
    return _cache.get((id(shoal), video_uuid))


def forget(shoal: Shoal, video_uuid: str) -> None:
    """Drop the cached rule after a privacy change or deletion."""
    _cache.pop((id(shoal), video_uuid), None)


# Fetches a remote image's bytes (url, byte limit) -> bytes; federation installs its guarded
# client here at setup, so the core never opens arbitrary URLs itself.
RemoteFetch = Callable[[Shoal, str, int], Awaitable[bytes]]
REMOTE_FETCH: list[RemoteFetch] = []
REMOTE_IMAGE_LIMIT = 5 * 1024 * 1024
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF")


def remote_image_key(folder: str, video_uuid: str) -> str:
    """Where the local copy of a remote video's thumbnail or preview is kept."""
    return f"{folder}/remote-{video_uuid}.jpg"


async def cache_remote_image(shoal: Shoal, folder: str, video_uuid: str) -> str | None:
    """Copy a remote video's thumbnail (or preview) into storage on first use; returns its key.

    Players and pages load images from this instance only (and our CSP says so), so remote
    images are fetched once through the federation client (SSRF guard, size limit) and kept.
    """
    key = remote_image_key(folder, video_uuid)
    if await shoal.storage.exists(key):
        return key
    if not REMOTE_FETCH:
        return None
    column = Video.thumbnail if folder == "thumbnails" else Video.preview
    async with shoal.db.read() as session:
        row = (
            await session.execute(select(column, Video.remote_url).where(Video.uuid == video_uuid))
        ).first()
    if row is None or row.remote_url is None or not row[0] or "://" not in row[0]:
        return None
    try:
        data = await REMOTE_FETCH[0](shoal, row[0], REMOTE_IMAGE_LIMIT)
    except Exception as exc:
        log.info("remote image %s for %s not fetched: %s", row[0], video_uuid, exc)
        return None
    if not data.startswith(IMAGE_MAGIC):
        log.info("remote image %s for %s is not an image", row[0], video_uuid)
        return None
    await shoal.storage.put_bytes(key, data, "image/jpeg")
    return key

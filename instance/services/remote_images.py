"""Remote videos' thumbnails and previews, copied into our storage on first use.

Players and pages load images from this instance only (and our CSP says so). A remote image's
bytes come through the ``fetch_remote_image`` port (federation's guarded client), so the core
never opens arbitrary URLs itself.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from ..core import Shoal
from ..models import Video
from ..storage import keys

log = logging.getLogger("shoal.files")

REMOTE_IMAGE_LIMIT = 5 * 1024 * 1024
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF")


def remote_image_key(folder: str, video_uuid: str) -> str:
    """Where the local copy of a remote video's thumbnail or preview is kept."""
    return keys.remote_image(folder, video_uuid)


async def cache_remote_image(shoal: Shoal, folder: str, video_uuid: str) -> str | None:
    """Copy a remote video's thumbnail (or preview) into storage on first use; returns its key.

    Players and pages load images from this instance only (and our CSP says so), so remote
    images are fetched once through the federation client (SSRF guard, size limit) and kept.
    """
    key = remote_image_key(folder, video_uuid)
    if await shoal.storage.exists(key):
        return key
    fetch = shoal.ext.fetch_remote_image
    if fetch is None:
        return None
    column = Video.thumbnail if folder == keys.THUMBNAILS else Video.preview
    async with shoal.db.read() as session:
        row = (
            await session.execute(select(column, Video.remote_url).where(Video.uuid == video_uuid))
        ).first()
    if row is None or row.remote_url is None or not row[0] or "://" not in row[0]:
        return None
    try:
        data = await fetch(shoal, row[0], REMOTE_IMAGE_LIMIT)
    except Exception as exc:
        log.info("remote image %s for %s not fetched: %s", row[0], video_uuid, exc)
        return None
    if not data.startswith(IMAGE_MAGIC):
        log.info("remote image %s for %s is not an image", row[0], video_uuid)
        return None
    await shoal.storage.put_bytes(key, data, "image/jpeg")
    return key

"""Thumbnails the uploader chooses: check the picture, re-encode it, store it, keep it.

PeerTube lets the uploader replace the frame processing picks (``thumbnailfile``). The
picture must be a real JPEG, PNG or WebP within :data:`MAX_BYTES` and
:data:`MAX_PIXELS`: the first bytes must say so *and* ffprobe must find one picture of
that codec; then ffmpeg decodes it (any decoding error refuses it) and writes the two
JPEG sizes processing makes (280×157 thumbnail, 850×480 preview), centre-cropped. ffmpeg
and ffprobe run as child processes, never on the event loop. The files replace the video's
``thumbnails/<prefix>.jpg`` and ``previews/<prefix>.jpg`` and the row gets
``custom_thumbnail``, which processing respects (it does not put its own frame over it,
even when processing ends after the change).

Anything not acceptable is a 400 ``invalid_thumbnail`` naming ``thumbnailfile`` with the
reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from transcoding.images import PREVIEW_SIZE, THUMBNAIL_SIZE

from ..children import child_argv
from ..core import Shoal
from ..errors import BadRequest, Forbidden
from ..models import User, Video, utcnow
from ..storage import keys
from .uploads import uploads_dir
from .videos import get_video_for
from .visibility import Viewer, can_manage_video

log = logging.getLogger("shoal.thumbnails")

FIELD = "thumbnailfile"
MAX_BYTES = 8 * 1024 * 1024
MAX_PIXELS = 50_000_000
TIMEOUT = 60.0
JPEG_QUALITY = "3"

# Leading bytes → (ffprobe demuxer, codec) of the accepted picture formats.
_FORMATS = {
    "jpeg": ("jpeg_pipe", "mjpeg"),
    "png": ("png_pipe", "png"),
    "webp": ("webp_pipe", "webp"),
}


def refuse(reason: str) -> BadRequest:
    """The 400 every unacceptable picture gets."""
    return BadRequest(f"The thumbnail was refused: {reason}.", code="invalid_thumbnail", field=FIELD)


def sniff(head: bytes) -> str | None:
    """``jpeg``, ``png`` or ``webp`` from a file's first bytes, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


async def receive(chunks: AsyncIterator[bytes], path: Path) -> None:
    """Write an uploaded picture to ``path``, refusing it past :data:`MAX_BYTES`."""
    written = 0
    loop = asyncio.get_running_loop()
    with path.open("wb") as fh:
        async for chunk in chunks:
            written += len(chunk)
            if written > MAX_BYTES:
                raise refuse(f"it is larger than {MAX_BYTES // (1024 * 1024)} MiB")
            await loop.run_in_executor(None, fh.write, chunk)
    if written == 0:
        raise refuse("the file is empty")


async def _run(*argv: str) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *child_argv(list(argv)),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    except (Exception, asyncio.CancelledError):
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    return proc.returncode or 0, out, err


async def check_picture(path: Path) -> str:
    """The ffprobe demuxer of a valid JPEG/PNG/WebP at ``path``; :func:`refuse` otherwise."""
    with path.open("rb") as fh:
        kind = sniff(fh.read(16))
    if kind is None:
        raise refuse("it is not a JPEG, PNG or WebP picture")
    demuxer, codec = _FORMATS[kind]
    code, out, _ = await _run(
        "ffprobe", "-v", "error", "-f", demuxer, "-show_entries", "stream=codec_type,codec_name,width,height",
        "-of", "json", f"file:{path}",
    )
    streams = json.loads(out or b"{}").get("streams", []) if code == 0 else []
    if len(streams) != 1 or streams[0].get("codec_type") != "video" or streams[0].get("codec_name") != codec:
        raise refuse(f"it is not a readable {kind.upper()} picture")
    width, height = int(streams[0].get("width") or 0), int(streams[0].get("height") or 0)
    if width < 1 or height < 1:
        raise refuse("the picture has no size")
    if width * height > MAX_PIXELS:
        raise refuse(f"the picture is too large ({width}×{height})")
    return demuxer


async def _encode(source: Path, demuxer: str, target: Path, width: int, height: int) -> None:
    box = (
        f"crop='min(iw,ih*{width}/{height})':'min(ih,iw*{height}/{width})',"
        f"scale={width}:{height},setsar=1,format=yuvj420p"
    )
    code, _, err = await _run(
        "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-xerror", "-err_detect", "explode",
        "-f", demuxer, "-i", f"file:{source}", "-frames:v", "1", "-vf", box,
        "-c:v", "mjpeg", "-q:v", JPEG_QUALITY, "-f", "image2", "-y", str(target),
    )
    if code != 0 or not target.exists() or target.stat().st_size == 0:
        log.info("thumbnail refused: %s", err.decode(errors="replace")[-500:])
        raise refuse("the picture cannot be decoded")


@dataclass
class Prepared:
    """The two JPEGs made from an accepted picture, in a folder of their own."""

    folder: Path

    @property
    def thumbnail(self) -> Path:
        return self.folder / "thumbnail.jpg"

    @property
    def preview(self) -> Path:
        return self.folder / "preview.jpg"

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def scratch(shoal: Shoal) -> Path:
    """A new folder for one picture (under the uploads folder, removed by :meth:`Prepared.discard`)."""
    folder = uploads_dir(shoal) / f"thumbnail-{secrets.token_hex(8)}"
    folder.mkdir(parents=True)
    return folder


async def prepare(picture: Path, folder: Path) -> Prepared:
    """Check ``picture`` and write both JPEG sizes into ``folder``."""
    demuxer = await check_picture(picture)
    prepared = Prepared(folder)
    await _encode(picture, demuxer, prepared.thumbnail, *THUMBNAIL_SIZE)
    await _encode(picture, demuxer, prepared.preview, *PREVIEW_SIZE)
    return prepared


async def apply(shoal: Shoal, video_id: int, prepared: Prepared) -> None:
    """Store the prepared JPEGs under the video's keys and mark the thumbnail as chosen."""
    async with shoal.db.write() as session:
        video = await session.get(Video, video_id)
        if video is None:
            return
        # Mark first: processing finishing meanwhile then leaves the keys alone.
        video.custom_thumbnail = True
        prefix = video.storage_prefix or video.uuid
        video.thumbnail = keys.thumbnail(prefix)
        video.preview = keys.preview(prefix)
        video.updated_at = utcnow()
    await shoal.storage.put_file(keys.thumbnail(prefix), prepared.thumbnail)
    await shoal.storage.put_file(keys.preview(prefix), prepared.preview)


async def replace_thumbnail(
    shoal: Shoal, ident: str, user: User | None, chunks: AsyncIterator[bytes]
) -> None:
    """Owner, moderator or admin: make the picture in ``chunks`` the video's thumbnail and preview.

    The right to edit is checked before a byte is stored.
    """
    async with shoal.db.read() as session:
        video = await get_video_for(shoal, session, ident, user)
        if not can_manage_video(Viewer.of(user), video):
            raise Forbidden("Only the video's owner, a moderator or an admin may do this.", code="not_owner")
        video_id = video.id
    folder = scratch(shoal)
    try:
        picture = folder / "upload"
        await receive(chunks, picture)
        await apply(shoal, video_id, await prepare(picture, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)

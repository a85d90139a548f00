"""Processing an upload: received → probing → transcoding → publishing → published, or failed.

The video row is the truth and every step is idempotent, so a job killed anywhere (even by
SIGKILL) is simply run again: it starts from the original in storage, rebuilds the outputs
in a fresh work directory, overwrites the same storage keys (file names come from the
video's fixed ``storage_prefix``) and replaces the renditions in one transaction with the
state change. Nothing is left behind on failure: the work directory, the partial files in
storage and (unless kept) the original are removed.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

import transcoding

from ..core import Shoal
from ..jobs import PermanentFailure
from ..models import Rendition, Video, VideoState, WorkItem, utcnow
from ..models.video import VIDEO_STATES
from ..storage import keys
from .files import access_changed

if TYPE_CHECKING:
    from ..extensions import Surface

log = logging.getLogger("shoal.processing")

PROGRESS_EVERY = 0.5


def work_dir(shoal: Shoal, video_uuid: str) -> Path:
    """The local scratch directory of one video's processing."""
    return shoal.settings.data_dir / "work" / video_uuid


def media_limits(shoal: Shoal) -> transcoding.ProbeLimits:
    settings = shoal.settings
    return transcoding.ProbeLimits(
        max_width=settings.max_video_width,
        max_height=settings.max_video_height,
        max_pixels=settings.max_video_pixels,
        max_duration=settings.max_video_duration,
    )


def ladder_settings(shoal: Shoal) -> transcoding.LadderSettings:
    settings = shoal.settings
    return transcoding.LadderSettings(
        heights=tuple(settings.ladder_heights),
        preset=settings.transcoding_preset,
        threads=settings.transcoding_threads,
        copy_compliant_top=settings.transcoding_copy_top,
    )


async def _set(shoal: Shoal, video_id: int, **values: Any) -> None:
    where = [Video.id == video_id]
    if "state" in values:
        values.setdefault("state_changed_at", utcnow())
        # The move must be one VIDEO_STATES allows from where the row is now (it may have
        # failed or been deleted meanwhile): else processing stops here.
        where.append(Video.state.in_(VIDEO_STATES.sources(values["state"])))
    async with shoal.db.write() as session:
        result = await session.execute(update(Video).where(*where).values(**values))
    if "state" in values and not result.rowcount:
        raise PermanentFailure(f"the video cannot go to {values['state']} now (deleted or already final)")


class _Progress:
    """Writes progress to the row at most every half second, mapped into [low, high]."""

    def __init__(self, shoal: Shoal, video_id: int, low: int, high: int) -> None:
        self.shoal, self.video_id, self.low, self.high = shoal, video_id, low, high
        self.last_time = 0.0
        self.last_value = -1

    async def __call__(self, percent: float) -> None:
        value = self.low + int((self.high - self.low) * max(0.0, min(percent, 100.0)) / 100)
        now = time.monotonic()
        if value == self.last_value or (now - self.last_time < PROGRESS_EVERY and percent < 100):
            return
        self.last_time, self.last_value = now, value
        await _set(self.shoal, self.video_id, progress=value)


def hls_key(video: Video, name: str) -> str:
    return keys.hls(video.uuid, name)


async def handle_process_video(shoal: Shoal, item: WorkItem) -> None:
    """Job ``process_video``: take one video from wherever it is to published (or failed)."""
    video_id = int(item.subject)
    async with shoal.db.read() as session:
        video = await session.get(Video, video_id)
    if video is None or video.state in (VideoState.PUBLISHED, VideoState.FAILED):
        return
    try:
        await _process(shoal, video)
    except transcoding.TranscodingError as exc:
        await fail_video(shoal, video, exc.code, exc.reason)
        raise PermanentFailure(f"{exc.code}: {exc.reason}") from None
    except PermanentFailure:
        raise
    except Exception as exc:
        if item.attempts >= item.max_attempts:
            await fail_video(shoal, video, "processing_failed", f"Processing failed repeatedly: {exc}")
        raise
    finally:
        shutil.rmtree(work_dir(shoal, video.uuid), ignore_errors=True)


async def _process(shoal: Shoal, video: Video) -> None:
    work = work_dir(shoal, video.uuid)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    await _set(shoal, video.id, state=VideoState.RECEIVED, progress=0)
    if not video.source_key:
        raise PermanentFailure("the video has no original to process")
    steps = _Steps()
    source = work / "source"
    await shoal.storage.get_to_file(video.source_key, source)
    steps.done("fetch")
    info = await transcoding.probe(source, media_limits(shoal))
    steps.done("probe")
    plan = await transcoding.plan_hls(info, ladder_settings(shoal))
    await _set(
        shoal,
        video.id,
        state=VideoState.PROBED,
        progress=2,
        duration=info.duration,
        aspect_ratio=round(info.width / info.height, 4) if info.height else None,
    )
    out = work / "out"
    out.mkdir()
    prefix = video.storage_prefix or video.uuid
    result = await transcoding.transcode_hls(
        source,
        out,
        plan,
        prefix=prefix,
        on_progress=_Progress(shoal, video.id, 2, 90),
        nice=shoal.settings.transcoding_nice,
        timeout=max(600.0, info.duration * 20),
        max_pixels=shoal.settings.max_video_pixels,
    )
    steps.done("transcode")
    images = work / "images"
    images.mkdir()
    nice = shoal.settings.transcoding_nice

    async def storyboard_of_smallest() -> Any:
        if not info.has_video:
            return None
        smallest = out / result.renditions[-1].file_name
        return await transcoding.make_storyboard(smallest, images, prefix, result.duration, nice=nice)

    # Independent short jobs (seeks, keyframe-only decodes, hashing) share the cores; if one
    # fails the others are cancelled (their ffmpeg children die with them).
    try:
        async with asyncio.TaskGroup() as group:
            sizes = (("thumbnail", transcoding.THUMBNAIL_SIZE), ("preview", transcoding.PREVIEW_SIZE))
            for name, size in sizes:
                group.create_task(
                    transcoding.make_thumbnail(
                        source, images / f"{prefix}-{name}.jpg", None, *size, info=info, nice=nice
                    )
                )
            storyboard_task = group.create_task(storyboard_of_smallest())
            manifest_task = group.create_task(
                transcoding.write_segments_sha256_async(out, prefix, result.media_playlists)
            )
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None  # the retry policy looks at the error itself
    storyboard = storyboard_task.result()
    manifest_name = manifest_task.result().name
    steps.done("images")
    await _set(shoal, video.id, state=VideoState.TRANSCODED, progress=95)
    await _publish(shoal, video, out, images, result, storyboard, manifest_name, prefix)
    steps.done("publish")
    log.info(
        "video %s processed: %s; rungs %s%s",
        video.uuid,
        steps,
        ",".join(str(r.resolution) for r in plan.rungs),
        " (top copied from the source)" if plan.copies_top else "",
    )


class _Steps:
    """Seconds each processing step took, for the admin's log line."""

    def __init__(self) -> None:
        self.started = self.last = time.monotonic()
        self.times: list[tuple[str, float]] = []

    def done(self, name: str) -> None:
        now = time.monotonic()
        self.times.append((name, now - self.last))
        self.last = now

    def __str__(self) -> str:
        parts = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in self.times)
        return f"{parts} ({self.last - self.started:.2f} s in all)"


async def _publish(
    shoal: Shoal,
    video: Video,
    out: Path,
    images: Path,
    result: Any,
    storyboard: Any,
    manifest_name: str,
    prefix: str,
) -> None:
    storage = shoal.storage
    published: set[str] = set()
    for path in sorted(out.iterdir()):
        if path.is_file() and path.name.startswith(prefix):
            key = hls_key(video, path.name)
            await storage.put_file(key, path)
            published.add(key)
    for key in await storage.list(keys.hls(video.uuid)):
        if key not in published:
            await storage.delete(key)
    # A thumbnail the uploader chose (``instance.services.thumbnails``) stays.
    async with shoal.db.read() as session:
        custom = await session.scalar(select(Video.custom_thumbnail).where(Video.id == video.id))
    if not custom:
        await storage.put_file(keys.thumbnail(prefix), images / f"{prefix}-thumbnail.jpg")
        await storage.put_file(keys.preview(prefix), images / f"{prefix}-preview.jpg")
    storyboard_info = None
    if storyboard is not None:
        for name in storyboard.files:
            await storage.put_file(keys.storyboards(video.uuid, name), images / name)
        storyboard_info = {
            "key": keys.storyboards(video.uuid, storyboard.vtt),
            "sprites": [keys.storyboards(video.uuid, name) for name in storyboard.sprites],
            "tileWidth": storyboard.tile_width,
            "tileHeight": storyboard.tile_height,
            "columns": storyboard.columns,
            "rows": storyboard.rows,
            "tileCount": storyboard.tile_count,
            "tileDuration": storyboard.tile_duration,
        }
    shutil.rmtree(work_dir(shoal, video.uuid), ignore_errors=True)
    async with shoal.db.write() as session:
        current = await session.get(Video, video.id)
        if current is None:
            return
        await session.execute(delete(Rendition).where(Rendition.video_id == video.id))
        for rung in result.renditions:
            session.add(
                Rendition(
                    video_id=video.id,
                    height=rung.resolution,
                    width=rung.width,
                    fps=rung.fps,
                    bitrate=rung.peak_bandwidth,
                    average_bitrate=rung.average_bandwidth,
                    codecs=rung.codecs,
                    playlist_path=hls_key(video, rung.playlist_name),
                    file_path=hls_key(video, rung.file_name),
                    size=rung.size,
                )
            )
        current.master_playlist = result.master_playlist
        current.segments_sha256 = manifest_name
        if not current.custom_thumbnail:
            current.thumbnail = keys.thumbnail(prefix)
            current.preview = keys.preview(prefix)
        current.storyboard = storyboard_info
        current.state = VideoState.PUBLISHED
        current.state_changed_at = utcnow()
        current.progress = 100
        current.published_at = current.published_at or utcnow()
        current.failure_code = current.failure_reason = None
        if not shoal.settings.keep_originals:
            source_key, current.source_key = current.source_key, None
        else:
            source_key = None
    if source_key:
        await storage.delete(source_key)
    await access_changed(shoal, video.uuid)
    log.info("video %s published with %d renditions", video.uuid, len(result.renditions))
    await shoal.ext.fire(shoal, "video_published", video.id)


async def fail_video(shoal: Shoal, video: Video, code: str, reason: str) -> None:
    """Mark the video failed with its reason and remove every file it had."""
    storage = shoal.storage
    await storage.delete_prefix(keys.hls(video.uuid))
    prefix = video.storage_prefix or video.uuid
    for key in (keys.thumbnail(prefix), keys.preview(prefix)):
        await storage.delete(key)
    await storage.delete_prefix(keys.storyboards(video.uuid))
    shutil.rmtree(work_dir(shoal, video.uuid), ignore_errors=True)
    async with shoal.db.write() as session:
        current = await session.get(Video, video.id)
        if current is None:
            return
        source_key = current.source_key
        await session.execute(delete(Rendition).where(Rendition.video_id == video.id))
        current.state = VideoState.FAILED
        current.state_changed_at = utcnow()
        current.failure_code = code
        current.failure_reason = reason
        current.source_key = None
    if source_key:
        await storage.delete(source_key)
    await access_changed(shoal, video.uuid)
    log.warning("video %s failed: %s (%s)", video.uuid, reason, code)


async def gave_up_processing(shoal: Shoal, item: WorkItem, error: str) -> None:
    """The ``process_video`` row failed for good: so does its video, with the reason (else it
    would stay unfinished forever, its original and files kept)."""
    async with shoal.db.read() as session:
        video = await session.get(Video, int(item.subject))
    if video is None or video.state in (VideoState.PUBLISHED, VideoState.FAILED):
        return
    reason = f"Processing gave up after {item.attempts} attempts: {error}"
    await fail_video(shoal, video, "processing_failed", reason)


def install(surface: Surface) -> None:
    """Register the ``process_video`` job (installed by the core into every Surface)."""
    surface.jobs.register(
        "process_video", handle_process_video, max_attempts=5, on_give_up=gave_up_processing
    )

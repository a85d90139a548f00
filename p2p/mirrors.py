"""Our mirrors of remote videos: picking, copying, serving, renewing and dropping them.

An instance copies the HLS files of remote videos — master and rendition playlists and the
fragmented MP4 of every rung, same file names — into its storage under
``redundancy/hls/<uuid>/``, serves them at ``/static/redundancy/hls/<uuid>/<file>``, seeds them
(the origin's torrent, same infohash, fed from our copy: :func:`p2p.seeding.mirrored_renditions`)
and announces the mirror to the origin with PeerTube's ``CacheFile`` (sent by the federation
layer through the ``announce_mirror`` port). Videos are picked by the admin
(``POST /api/v1/server/redundancy/videos``) or by the ``redundancy_strategy`` setting (newest or
most viewed, within ``redundancy_size``), only from followed instances the admin allowed
(``PUT /api/v1/server/redundancy/{host}``). A mirror is announced for ``redundancy_lifetime``
seconds and renewed (CacheFile ``Update``) at half-life while it is still wanted; a mirror no
longer wanted is deleted and its CacheFile undone.

The other direction, other instances' mirrors of our videos, is :mod:`p2p.redundancy`.
"""

from __future__ import annotations

import logging
import posixpath
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy import delete, func, select

from instance.core import Shoal
from instance.errors import BadRequest, Conflict, NotFound
from instance.jobs import submit
from instance.models import (
    Actor,
    ActorKind,
    InstanceOption,
    MirrorState,
    Rendition,
    Video,
    VideoMirror,
    WorkItem,
)
from instance.netguard import check_url
from instance.services.uploads import scratch_dir
from instance.services.visibility import shared, shared_clause
from instance.storage import guess_content_type, keys
from instance.web.context import SHOAL

from .files import FILE_RE
from .redundancy import expire_redundancies
from .seeding import nudge

log = logging.getLogger("shoal.p2p.redundancy")

MIRROR_VIDEO = "mirror_video"
ALLOWED_HOSTS = "redundancy_allowed_hosts"
CHUNK = 256 * 1024


def now() -> datetime:
    return datetime.now(UTC)


def _host(url: str) -> str:
    return urlsplit(url).netloc.lower()


# ---------------------------------------------------------------- hosts allowed for redundancy


async def allowed_hosts(shoal: Shoal) -> set[str]:
    """Hosts whose videos this instance may mirror (``redundancyAllowed``)."""
    async with shoal.db.read() as session:
        row = await session.get(InstanceOption, ALLOWED_HOSTS)
    return set(row.value) if row is not None and isinstance(row.value, list) else set()


async def set_host_allowed(shoal: Shoal, host: str, allowed: bool) -> None:
    """Allow or forbid mirroring the videos of the followed instance ``host``."""
    host = host.lower()
    async with shoal.db.write() as session:
        followed = await session.scalar(
            select(func.count())
            .select_from(Actor)
            .where(Actor.host == host, Actor.kind == ActorKind.APPLICATION)
        )
        if not followed:
            raise NotFound(f"{host} is not an instance this one knows.", code="unknown_host")
        row = await session.get(InstanceOption, ALLOWED_HOSTS)
        hosts = set(row.value) if row is not None and isinstance(row.value, list) else set()
        hosts = hosts | {host} if allowed else hosts - {host}
        if row is None:
            session.add(InstanceOption(key=ALLOWED_HOSTS, value=sorted(hosts)))
        else:
            row.value = sorted(hosts)
    if not allowed:
        for mirror in await list_mirrors(shoal):
            if mirror[1].remote_url and _host(mirror[1].remote_url) == host:
                await remove_mirror(shoal, mirror[0].id)


# ---------------------------------------------------------------- our mirrors


def _mirrorable(video: Video) -> bool:
    return video.remote_url is not None and shared(video)


async def list_mirrors(shoal: Shoal) -> list[tuple[VideoMirror, Video]]:
    """Every mirror of ours with its video, newest first."""
    async with shoal.db.read() as session:
        rows = await session.execute(
            select(VideoMirror, Video)
            .join(Video, Video.id == VideoMirror.video_id)
            .order_by(VideoMirror.id.desc())
        )
        result = [(m, v) for m, v in rows.all()]
        session.expunge_all()
    return result


async def add_mirror(shoal: Shoal, video_id: int, strategy: str = "manual") -> VideoMirror:
    """Start mirroring a remote video (idempotent per video); the copy is made by a job."""
    async with shoal.db.write() as session:
        video = await session.get(Video, video_id)
        if video is None:
            raise NotFound("No such video.", code="video_not_found")
        if not _mirrorable(video):
            raise BadRequest(
                "Only published public or unlisted videos of other instances can be mirrored.",
                code="video_not_mirrorable",
            )
        if _host(video.remote_url or "") not in await allowed_hosts(shoal):
            raise BadRequest(
                "Mirroring is not allowed for this video's instance (PUT /api/v1/server/redundancy/{host}).",
                code="redundancy_not_allowed",
            )
        existing = await session.scalar(select(VideoMirror).where(VideoMirror.video_id == video_id))
        if existing is not None:
            raise Conflict("This video is already mirrored.", code="already_mirrored")
        mirror = VideoMirror(video_id=video_id, strategy=strategy, state=MirrorState.WANTED)
        session.add(mirror)
        await session.flush()
        mirror_id = mirror.id
    await submit(shoal, MIRROR_VIDEO, str(mirror_id), dedupe_key=f"{MIRROR_VIDEO}:{mirror_id}")
    async with shoal.db.read() as session:
        mirror = await session.get(VideoMirror, mirror_id)
        session.expunge_all()
    assert mirror is not None
    return mirror


async def remove_mirror(shoal: Shoal, mirror_id: int) -> bool:
    """Stop mirroring: undo the CacheFile, delete the files and the row. False if unknown."""
    async with shoal.db.read() as session:
        mirror = await session.get(VideoMirror, mirror_id)
        video = await session.get(Video, mirror.video_id) if mirror is not None else None
        session.expunge_all()
    if mirror is None or video is None:
        return False
    if mirror.state == MirrorState.MIRRORED:
        await announce(shoal, video, mirror, "Undo")
    async with shoal.db.write() as session:
        await session.execute(delete(VideoMirror).where(VideoMirror.id == mirror_id))
    await shoal.storage.delete_prefix(keys.mirror(video.uuid))
    async with shoal.db.read() as session:
        rows = await session.execute(select(Rendition.info_hash).where(Rendition.video_id == video.id))
        hashes = [h for h in rows.scalars() if h]
    for info_hash in hashes:
        await shoal.storage.delete(keys.mirror_torrent(f"{info_hash}.torrent"))
    nudge()
    log.info("stopped mirroring %s", video.remote_url)
    return True


async def announce(shoal: Shoal, video: Video, mirror: VideoMirror, verb: str) -> None:
    """Tell the origin about the mirror (a CacheFile ``Create``, ``Update`` or ``Undo``) through
    the ``announce_mirror`` port, which federation answers (nothing is sent without it)."""
    if shoal.ext.announce_mirror is not None:
        await shoal.ext.announce_mirror(shoal, video, mirror, verb)


async def _download(shoal: Shoal, url: str, dest: Path, limit: int) -> int:
    """Stream ``url`` (after the SSRF guard) into ``dest``; its size."""
    await check_url(shoal.settings.allow_hosts, url)
    assert shoal.http is not None
    size = 0
    async with shoal.http.get(url) as resp:
        if resp.status != 200:
            raise OSError(f"GET {url}: HTTP {resp.status}")
        with dest.open("wb") as out:
            async for chunk in resp.content.iter_chunked(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise OSError(f"{url} is larger than the redundancy quota allows")
                out.write(chunk)
    return size


async def used_bytes(shoal: Shoal, exclude: int | None = None) -> int:
    async with shoal.db.read() as session:
        query = select(func.coalesce(func.sum(VideoMirror.size), 0))
        if exclude is not None:
            query = query.where(VideoMirror.id != exclude)
        return int(await session.scalar(query) or 0)


async def mirror_video(shoal: Shoal, mirror_id: int) -> None:
    """Copy a remote video's HLS files (and its torrents) into storage, then announce the mirror."""
    async with shoal.db.read() as session:
        mirror = await session.get(VideoMirror, mirror_id)
        video = await session.get(Video, mirror.video_id) if mirror is not None else None
        renditions = list(
            (await session.execute(select(Rendition).where(Rendition.video_id == video.id))).scalars()
        ) if video is not None else []  # fmt: skip
        session.expunge_all()
    if mirror is None or video is None:
        return
    if mirror.state == MirrorState.MIRRORED:
        return
    if video.remote_url and any(not (r.info_hash and r.torrent_path) for r in renditions):
        # The origin makes torrents after publishing: our copy of the video may predate them.
        if shoal.ext.refresh_remote_video is not None:
            await shoal.ext.refresh_remote_video(shoal, video.remote_url)
        async with shoal.db.read() as session:
            query = select(Rendition).where(Rendition.video_id == video.id)
            renditions = list((await session.execute(query)).scalars())
            session.expunge_all()
    budget = shoal.settings.redundancy_size - await used_bytes(shoal, exclude=mirror.id)
    expected = sum(r.size for r in renditions)
    if not renditions or expected > budget:
        await _fail(shoal, mirror.id, "the video does not fit in the redundancy quota" if renditions
                    else "the video has no renditions")  # fmt: skip
        return
    urls = [video.master_playlist] + [u for r in renditions for u in (r.playlist_path, r.file_path)]
    size = 0
    with tempfile.TemporaryDirectory(dir=scratch_dir(shoal)) as tmp:
        for url in [u for u in urls if u]:
            if "://" not in url:
                continue
            local = Path(tmp) / "part"
            size += await _download(shoal, url, local, budget - size)
            name = posixpath.basename(urlsplit(url).path)
            await shoal.storage.put_file(keys.mirror(video.uuid, name), local)
        for rendition in renditions:
            if rendition.info_hash and rendition.torrent_path and "://" in rendition.torrent_path:
                local = Path(tmp) / "torrent"
                await _download(shoal, rendition.torrent_path, local, 10 * 1024 * 1024)
                await shoal.storage.put_file(keys.mirror_torrent(f"{rendition.info_hash}.torrent"), local)
    async with shoal.db.write() as session:
        row = await session.get(VideoMirror, mirror.id)
        if row is None:
            return
        row.state, row.size, row.last_error = MirrorState.MIRRORED, size, None
        row.expires_at = now() + timedelta(seconds=shoal.settings.redundancy_lifetime)
        await session.flush()
        session.expunge(row)
    log.info("mirrored %s (%d bytes)", video.remote_url, size)
    await announce(shoal, video, row, "Create")
    nudge()


async def _fail(shoal: Shoal, mirror_id: int, reason: str) -> None:
    async with shoal.db.write() as session:
        row = await session.get(VideoMirror, mirror_id)
        if row is not None:
            row.state, row.last_error = MirrorState.FAILED, reason
    log.info("cannot mirror (mirror %d): %s", mirror_id, reason)


async def handle_mirror_video(shoal: Shoal, item: WorkItem) -> None:
    """Job ``mirror_video``: copy and announce one mirror (idempotent)."""
    await mirror_video(shoal, int(item.subject))


# ---------------------------------------------------------------- the chore


async def _candidates(shoal: Shoal) -> list[Video]:
    strategy = shoal.settings.redundancy_strategy
    order = Video.views.desc() if strategy == "most_viewed" else Video.published_at.desc()
    hosts = await allowed_hosts(shoal)
    async with shoal.db.read() as session:
        mirrored = select(VideoMirror.video_id)
        rows = await session.execute(
            select(Video)
            .where(
                Video.remote_url.is_not(None),
                shared_clause(),
                Video.id.not_in(mirrored),
            )
            .order_by(order, Video.id.desc())
            .limit(50)
        )
        videos = [v for v in rows.scalars() if _host(v.remote_url or "") in hosts]
        session.expunge_all()
    return videos


async def redundancy_chore(shoal: Shoal) -> None:
    """Chore: every ``redundancy_check_interval`` seconds, :func:`check_redundancy`."""
    last = shoal.extras.get("p2p.redundancy.last", 0.0)
    if time.monotonic() - last < shoal.settings.redundancy_check_interval:
        return
    shoal.extras["p2p.redundancy.last"] = time.monotonic()
    await check_redundancy(shoal)


async def check_redundancy(shoal: Shoal) -> None:
    """Pick new mirrors (automatic strategies), renew or drop ours, expire the others' CacheFiles."""
    if not shoal.settings.p2p_enabled:
        return
    if shoal.settings.redundancy_strategy != "manual":
        budget = shoal.settings.redundancy_size - await used_bytes(shoal)
        for video in await _candidates(shoal):
            async with shoal.db.read() as session:
                sizes = await session.scalars(select(Rendition.size).where(Rendition.video_id == video.id))
                size = sum(sizes)
            if 0 < size <= budget:
                await add_mirror(shoal, video.id, strategy=shoal.settings.redundancy_strategy)
                budget -= size
    await renew_mirrors(shoal)
    await expire_redundancies(shoal)


async def renew_mirrors(shoal: Shoal) -> int:
    """Renew (CacheFile Update) the mirrors past half their lifetime that are still wanted; drop the
    others (their video gone private or deleted, their host no longer allowed). How many renewed."""
    lifetime = timedelta(seconds=shoal.settings.redundancy_lifetime)
    hosts = await allowed_hosts(shoal)
    renewed = 0
    for mirror, video in await list_mirrors(shoal):
        if mirror.state != MirrorState.MIRRORED or mirror.expires_at is None:
            continue
        if mirror.expires_at - now() > lifetime / 2:
            continue
        if not _mirrorable(video) or _host(video.remote_url or "") not in hosts:
            await remove_mirror(shoal, mirror.id)
            continue
        async with shoal.db.write() as session:
            row = await session.get(VideoMirror, mirror.id)
            if row is None:
                continue
            row.expires_at = now() + lifetime
            await session.flush()
            session.expunge(row)
        await announce(shoal, video, row, "Update")
        renewed += 1
    return renewed


# ---------------------------------------------------------------- serving our copies


async def serve_mirrored_file(request: web.Request) -> web.StreamResponse:
    """``/static/redundancy/hls/<uuid>/<file>``: our copy of a remote video's HLS file."""
    shoal = request.app[SHOAL]
    uuid, name = request.match_info["uuid"], request.match_info["file"]
    if not FILE_RE.match(name) or not FILE_RE.match(uuid):
        raise NotFound("No such file.", code="file_not_found")
    key = keys.mirror(uuid, name)
    headers = {"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=3600"}
    local = shoal.storage.local_path(key)
    if local is not None:
        if not local.is_file():
            raise NotFound("No such file.", code="file_not_found")
        return web.FileResponse(local, headers={**headers, "Content-Type": guess_content_type(key)})
    if await shoal.storage.stat(key) is None:
        raise NotFound("No such file.", code="file_not_found")
    url = await shoal.storage.presigned_get_url(key, 600)
    if url is None:
        raise NotFound("No such file.", code="file_not_found")
    raise web.HTTPFound(url, headers=headers)


async def gave_up_mirroring(shoal: Shoal, item: WorkItem, error: str) -> None:
    """The ``mirror_video`` row failed for good: a mirror still wanted fails with the reason
    (a wanted mirror is never picked again, so it would wait forever)."""
    async with shoal.db.read() as session:
        row = await session.get(VideoMirror, int(item.subject))
    if row is not None and row.state == MirrorState.WANTED:
        await _fail(shoal, row.id, f"gave up after {item.attempts} attempts: {error}")


"""Torrents of local videos: making and removing them, their web seeds, and the infohashes we know.

A video's torrents are made by the ``make_torrents`` job once it is published, one per
rendition, stored as ``torrents/<prefix>-<res>-hls.torrent`` (:func:`instance.storage.keys.torrent`)
and recorded on the rendition (``torrent_path``, ``info_hash``). Only public and unlisted
videos get torrents; the same job removes them when a video is private, internal or hidden,
so it is run again after any change of privacy or title (a new title is a new torrent name,
hence a new infohash, as in PeerTube). A change of a video's torrents is announced through
the videos' media hook, so federation sends the new links to followers.
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from instance.core import Shoal
from instance.models import Rendition, Video, VideoState
from instance.services.uploads import scratch_dir
from instance.services.videos import media_changed
from instance.services.visibility import SHARED_PRIVACIES, shared
from instance.storage import keys
from instance.web.media import media_url, tracker_urls

from . import webseed
from .redundancy import redundancy_urls
from .swarm import swarm_ids
from .torrents import announce_order, make_torrent, torrent_file_name, torrent_name

log = logging.getLogger("shoal.p2p")

KNOWN_TTL = 60.0
KNOWN_MIN_RELOAD = 5.0
_KNOWN = "p2p.known"


def may_have_torrents(video: Video) -> bool:
    """Public and unlisted, published, local videos that are not hidden get torrents."""
    return video.is_local and shared(video)


def web_seed_url(shoal: Shoal, video: Video, rendition: Rendition) -> str:
    """The web seed of a rendition: with local storage our web-seed route, which stands back
    while the seeder serves the client (:mod:`p2p.webseed`); with S3 the object's own URL."""
    if shoal.storage.local_path(rendition.file_path) is not None:
        return webseed.web_seed_url(shoal, video.uuid, posixpath.basename(rendition.file_path))
    public = shoal.storage.public_url(rendition.file_path)
    return public or media_url(shoal, video, rendition.file_path) or ""


async def make_torrents(shoal: Shoal, video_id: int) -> int:
    """Make (or remove) the torrents of one video; returns how many it has now. Idempotent."""
    async with shoal.db.read() as session:
        video = await session.get(Video, video_id)
        if video is None:
            return 0
        renditions = list(
            (await session.execute(select(Rendition).where(Rendition.video_id == video_id))).scalars()
        )
    if not may_have_torrents(video) or not shoal.settings.p2p_enabled:
        await remove_torrents(shoal, video, renditions)
        return 0
    prefix = video.storage_prefix or video.uuid
    trackers = announce_order(tracker_urls(shoal))
    made: dict[int, tuple[str, str]] = {}
    # A CacheFile may come or go while the torrents are made (and a second run of this job is
    # deduplicated into this one): make them again until the mirrors they list are current.
    for _ in range(3):
        mirrors = await redundancy_urls(shoal, video.id)
        for rendition in renditions:
            name = torrent_name(video.name, rendition.height)
            # The file in storage, then its copies on the instances that mirror the video (CacheFile).
            file_name = posixpath.basename(rendition.file_path)
            seeds = [web_seed_url(shoal, video, rendition), *(f"{base}/{file_name}" for base in mirrors)]
            key = keys.torrent(torrent_file_name(prefix, rendition.height))
            local = shoal.storage.local_path(rendition.file_path)
            with tempfile.TemporaryDirectory(dir=scratch_dir(shoal)) as tmp:
                if local is None:
                    local = Path(tmp) / posixpath.basename(rendition.file_path)
                    await shoal.storage.get_to_file(rendition.file_path, local)
                torrent = await asyncio.to_thread(
                    make_torrent, local, name=name, trackers=trackers, web_seeds=seeds
                )
            await shoal.storage.put_bytes(key, torrent.data, "application/x-bittorrent")
            made[rendition.id] = (key, torrent.info_hash)
        if await redundancy_urls(shoal, video.id) == mirrors:
            break
    async with shoal.db.write() as session:
        for rendition_id, (key, info_hash) in made.items():
            row = await session.get(Rendition, rendition_id)
            if row is not None:
                row.torrent_path, row.info_hash = key, info_hash
    forget_known(shoal)
    log.info("made %d torrents of video %s", len(made), video.uuid)
    if {r.id: (r.torrent_path, r.info_hash) for r in renditions} != made:
        await media_changed(shoal, video_id)  # followers learn the torrent and magnet links
    return len(made)


async def remove_torrents(shoal: Shoal, video: Video, renditions: list[Rendition]) -> None:
    """Delete a video's torrent files and clear its renditions' torrent fields."""
    stale = [r for r in renditions if r.torrent_path or r.info_hash]
    if not stale:
        return
    for rendition in stale:
        if rendition.torrent_path and "://" not in rendition.torrent_path:
            await shoal.storage.delete(rendition.torrent_path)
    async with shoal.db.write() as session:
        for rendition in stale:
            row = await session.get(Rendition, rendition.id)
            if row is not None:
                row.torrent_path = row.info_hash = None
    forget_known(shoal)
    log.info("removed the torrents of video %s", video.uuid)
    await media_changed(shoal, video.id)


# ---------------------------------------------------------------- infohashes the tracker accepts


@dataclass
class KnownHashes:
    """The set of hex infohashes the tracker accepts, and when it was loaded."""

    hashes: frozenset[str] = frozenset()
    loaded: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def forget_known(shoal: Shoal) -> None:
    """Make the next lookup reload the known infohashes (this process only)."""
    known = shoal.extras.get(_KNOWN)
    if known is not None:
        known.loaded = 0.0


async def load_known(shoal: Shoal) -> frozenset[str]:
    """Every infohash this instance accepts: torrents of its public and unlisted videos, their
    PeerTube swarm ids, and the torrents of remote videos (of instances it follows)."""
    hashes: set[str] = set()
    async with shoal.db.read() as session:
        rows = await session.execute(
            select(Video, Rendition)
            .join(Rendition, Rendition.video_id == Video.id)
            .where(Video.state == VideoState.PUBLISHED)
        )
        by_video: dict[int, tuple[Video, list[Rendition]]] = {}
        for video, rendition in rows:
            by_video.setdefault(video.id, (video, []))[1].append(rendition)
    for video, renditions in by_video.values():
        if video.is_local:
            if not may_have_torrents(video):
                continue
            hashes.update(swarm_ids(shoal, video, renditions))
        elif video.privacy not in SHARED_PRIVACIES:
            continue
        hashes.update(r.info_hash.lower() for r in renditions if r.info_hash)
    return frozenset(hashes)


async def is_known(shoal: Shoal, info_hash: str) -> bool:
    """Whether the tracker accepts ``info_hash`` (hex). The set is cached for a minute and
    reloaded at most every few seconds when an unknown hash is asked about, so a video
    published a moment ago is accepted at once."""
    known: KnownHashes = shoal.extras.setdefault(_KNOWN, KnownHashes())
    now = time.monotonic()
    age = now - known.loaded
    if age < KNOWN_TTL and (info_hash in known.hashes or age < KNOWN_MIN_RELOAD):
        return info_hash in known.hashes
    async with known.lock:
        if time.monotonic() - known.loaded >= min(age, KNOWN_MIN_RELOAD):
            known.hashes = await load_known(shoal)
            known.loaded = time.monotonic()
    return info_hash in known.hashes

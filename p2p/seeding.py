"""What the seeder seeds: the seeding policy, and telling running seeders that it changed.

The most watched and the newest public or unlisted local videos, alternately, every rendition
that has a torrent, then the remote videos this instance mirrors (the origin's torrents, fed
from our copy), up to ``seeder_max_torrents``. A seeder reads the policy every
``REFRESH_INTERVAL`` seconds (:mod:`p2p.seeder`); :func:`nudge` makes it read it now.
"""

from __future__ import annotations

import asyncio
import posixpath
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select

from instance.core import Shoal
from instance.models import MirrorState, Rendition, Video, VideoMirror
from instance.services.visibility import shared_clause
from instance.storage import keys

_WAKE: set[asyncio.Event] = set()
"""The wake-up events of the seeders running in this process."""


@dataclass(frozen=True)
class Wanted:
    """One rendition the policy wants seeded."""

    info_hash: str
    torrent_key: str
    file_key: str
    size: int


def watch(wake: asyncio.Event) -> None:
    """Set ``wake`` (a running seeder's) on every :func:`nudge`, until :func:`unwatch`."""
    _WAKE.add(wake)


def unwatch(wake: asyncio.Event) -> None:
    """Stop setting ``wake`` (its seeder stopped)."""
    _WAKE.discard(wake)


def nudge() -> None:
    """Ask every seeder of this process to look at the policy again now (new torrents)."""
    for wake in _WAKE:
        wake.set()


async def wanted_renditions(shoal: Shoal, limit: int) -> list[Wanted]:
    """The policy: renditions of the most watched and the newest videos, alternately, up to ``limit``."""
    base = (
        select(Video.id)
        .join(Rendition, Rendition.video_id == Video.id)
        .where(
            Video.remote_url.is_(None),
            shared_clause(),
            Rendition.info_hash.is_not(None),
        )
        .group_by(Video.id)
        .limit(limit)
    )
    async with shoal.db.read() as session:
        by_views = list((await session.execute(base.order_by(Video.views.desc(), Video.id.desc()))).scalars())
        newest = list(
            (await session.execute(base.order_by(Video.published_at.desc(), Video.id.desc()))).scalars()
        )
        order: list[int] = []
        for pair in zip(by_views, newest, strict=False):
            order += [v for v in pair if v not in order]
        order += [v for v in by_views + newest if v not in order]
        rows = await session.execute(
            select(Rendition).where(Rendition.video_id.in_(order), Rendition.info_hash.is_not(None))
        )
        renditions = sorted(rows.scalars(), key=lambda r: (order.index(r.video_id), -r.height))
    wanted = [
        Wanted(r.info_hash.lower(), r.torrent_path, r.file_path, r.size)
        for r in renditions[:limit]
        if r.info_hash and r.torrent_path
    ]
    # Then the remote videos this instance mirrors: the origin's torrents, fed from our copy.
    seen = {w.info_hash for w in wanted}
    for item in await mirrored_renditions(shoal):
        if len(wanted) < limit and item.info_hash not in seen:
            wanted.append(item)
            seen.add(item.info_hash)
    return wanted


async def mirrored_renditions(shoal: Shoal) -> list[Wanted]:
    """What the seeder seeds of our mirrors (:mod:`p2p.mirrors`): every rung of a mirrored video."""
    async with shoal.db.read() as session:
        rows = await session.execute(
            select(Video.uuid, Rendition)
            .join(VideoMirror, VideoMirror.video_id == Video.id)
            .join(Rendition, Rendition.video_id == Video.id)
            .where(VideoMirror.state == MirrorState.MIRRORED, Rendition.info_hash.is_not(None))
        )
        return [
            Wanted(
                r.info_hash.lower(),
                keys.mirror_torrent(f"{r.info_hash}.torrent"),
                keys.mirror(uuid, posixpath.basename(urlsplit(r.file_path).path)),
                r.size,
            )
            for uuid, r in rows.all()
            if r.info_hash
        ]

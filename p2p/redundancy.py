"""Other instances' mirrors of our videos: the CacheFiles they send us, and the web seeds they add.

A ``CacheFile`` for one of our videos (received by :mod:`federation.cachefile`) becomes a
:class:`VideoRedundancy` row; the mirror's copy of each rung is then an extra web seed
(``url-list``) of the rung's torrent, so BitTorrent clients spread HTTP load over the origin
and its mirrors. Rows whose ``expires`` passed are dropped by the redundancy chore
(:func:`p2p.mirrors.check_redundancy`), and the torrents remade without them.

The other direction, our mirrors of remote videos, is :mod:`p2p.mirrors`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from instance.core import Shoal
from instance.models import Video, VideoRedundancy
from instance.web.responses import iso

from .kinds import submit_make_torrents


def now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- mirrors of our videos


async def record_redundancy(
    shoal: Shoal,
    *,
    video_id: int,
    actor_id: int,
    ap_id: str,
    base_url: str,
    expires_at: datetime,
    create: bool = True,
) -> None:
    """Store (or renew) a CacheFile another instance sent for one of our videos; remake its torrents.
    With ``create`` false (an Update) an unknown CacheFile is not stored: an Update delivered after
    the Undo of the same mirror must not bring it back."""
    async with shoal.db.write() as session:
        row = await session.scalar(select(VideoRedundancy).where(VideoRedundancy.ap_id == ap_id))
        if row is None and not create:
            return
        if row is None:
            session.add(VideoRedundancy(video_id=video_id, actor_id=actor_id, ap_id=ap_id,
                                        base_url=base_url.rstrip("/"), expires_at=expires_at))  # fmt: skip
        elif row.actor_id == actor_id:
            row.expires_at, row.base_url = expires_at, base_url.rstrip("/")
    await _remake(shoal, video_id)


async def drop_redundancy(shoal: Shoal, *, actor_id: int, ap_id: str) -> bool:
    """Forget a CacheFile (Undo or Delete by its sender); remakes the video's torrents."""
    async with shoal.db.write() as session:
        row = await session.scalar(
            select(VideoRedundancy).where(
                VideoRedundancy.ap_id == ap_id, VideoRedundancy.actor_id == actor_id
            )
        )
        if row is None:
            return False
        video_id = row.video_id
        await session.delete(row)
    await _remake(shoal, video_id)
    return True


async def expire_redundancies(shoal: Shoal) -> int:
    """Drop the CacheFiles whose ``expires`` passed (their mirror did not renew)."""
    async with shoal.db.write() as session:
        rows = list(await session.scalars(select(VideoRedundancy).where(VideoRedundancy.expires_at < now())))
        for row in rows:
            await session.delete(row)
        videos = {row.video_id for row in rows}
    for video_id in videos:
        await _remake(shoal, video_id)
    return len(rows)


async def redundancy_urls(shoal: Shoal, video_id: int) -> list[str]:
    """Base URLs of the live mirrors of one of our videos (file URL = base + "/" + file name)."""
    async with shoal.db.read() as session:
        rows = await session.scalars(
            select(VideoRedundancy.base_url)
            .where(VideoRedundancy.video_id == video_id, VideoRedundancy.expires_at >= now())
            .order_by(VideoRedundancy.id)
        )
        return list(rows)


async def received_redundancies(shoal: Shoal) -> list[dict[str, Any]]:
    """The live CacheFiles other instances sent for our videos, in PeerTube's ``VideoRedundancy`` shape."""
    async with shoal.db.read() as session:
        rows = await session.execute(
            select(VideoRedundancy, Video.name, Video.uuid)
            .join(Video, Video.id == VideoRedundancy.video_id)
            .order_by(VideoRedundancy.id.desc())
        )
        return [
            {
                "id": row.id,
                "name": name,
                "uuid": uuid,
                "url": f"{shoal.settings.public_url.rstrip('/')}/videos/watch/{uuid}",
                "redundancies": {
                    "files": [],
                    "streamingPlaylists": [
                        {
                            "id": row.id,
                            "fileUrl": row.base_url,
                            "createdAt": iso(row.created_at),
                            "expiresOn": iso(row.expires_at),
                        }  # fmt: skip
                    ],
                },
            }
            for row, name, uuid in rows.all()
        ]


async def _remake(shoal: Shoal, video_id: int) -> None:
    await submit_make_torrents(shoal, video_id)

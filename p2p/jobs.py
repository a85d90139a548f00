"""The ``make_torrents`` job, and the publish and update hooks that queue it.

:func:`p2p.install` registers the job and the hooks in every Shoal's surface, so they are in
place wherever ``process_video`` publishes a video.
"""

from __future__ import annotations

from instance.core import Shoal
from instance.models import WorkItem

from .kinds import submit_make_torrents
from .seeding import nudge
from .service import make_torrents


async def handle_make_torrents(shoal: Shoal, item: WorkItem) -> None:
    """Job ``make_torrents``: a video's torrents made, refreshed or removed (idempotent)."""
    await make_torrents(shoal, int(item.subject))
    nudge()


async def after_publish(shoal: Shoal, video_id: int) -> None:
    """Publish hook: queue the torrents of a video that was just published."""
    if shoal.settings.p2p_enabled:
        await submit_make_torrents(shoal, video_id)


async def after_update(shoal: Shoal, video: object, *_: object, **__: object) -> None:
    """Update hook (a video's id or row): a change of privacy or title remakes or removes its torrents."""
    video_id = video if isinstance(video, int) else getattr(video, "id", None)
    if isinstance(video_id, int):
        await submit_make_torrents(shoal, video_id)

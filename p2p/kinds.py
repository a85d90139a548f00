"""Asking for a video's torrents to be made again: the ``make_torrents`` job kind and its queueing.

Light on purpose (the job queue only): CacheFiles received (:mod:`p2p.redundancy`) and the
core's publish and update events (:mod:`p2p.jobs`) ask for new torrents; :mod:`p2p.jobs`
registers the job that makes them (:func:`p2p.service.make_torrents`).
"""

from __future__ import annotations

from instance.core import Shoal
from instance.jobs import submit

MAKE_TORRENTS = "make_torrents"


async def submit_make_torrents(shoal: Shoal, video_id: int) -> None:
    """Queue the ``make_torrents`` job of a video (once: a second ask joins the queued one)."""
    await submit(shoal, MAKE_TORRENTS, str(video_id), dedupe_key=f"{MAKE_TORRENTS}:{video_id}")

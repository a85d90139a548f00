"""PeerTube's P2P swarm ids: what its players announce to a tracker for each rendition.

p2p-media-loader joins one swarm per rendition whose id is
``sha1("2" + masterPlaylistUrl + "+V" + index)`` (hex), ``index`` the rendition's position
in the master playlist (0-based) and ``"2"`` the loader's peer version. Shoal's master
playlist lists rungs from the tallest down and its URL never changes once published, so
the ids are stable: PeerTube players watching our video (here or on another instance)
share segments through our tracker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from instance.core import Shoal
from instance.models import Rendition, Video
from instance.web.media import media_url

PEER_VERSION = "2"


def swarm_id(master_playlist_url: str, index: int) -> str:
    """The swarm id of the ``index``-th variant of the master playlist at ``master_playlist_url``."""
    return hashlib.sha1(f"{PEER_VERSION}{master_playlist_url}+V{index}".encode()).hexdigest()


def master_order(renditions: Iterable[Rendition]) -> list[Rendition]:
    """Renditions in the master playlist's variant order (tallest first, as transcoding writes it)."""
    return sorted(renditions, key=lambda r: r.height, reverse=True)


def swarm_ids(shoal: Shoal, video: Video, renditions: Iterable[Rendition]) -> list[str]:
    """The swarm id of every rendition of ``video``, in master playlist order ([] before publication)."""
    ordered = master_order(renditions)
    master = media_url(shoal, video, video.master_playlist)
    if not master or not ordered:
        return []
    return [swarm_id(master, index) for index in range(len(ordered))]

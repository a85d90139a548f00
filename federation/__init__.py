"""ActivityPub: actors, signatures, WebFinger, NodeInfo, inbox and delivery."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp.web import Application


def setup(app: Application) -> None:
    """Add the federation routes, the Application actor's startup hook, and the hooks through
    which the core's subscriptions and instance follows reach remote actors."""
    from instance.app import add_chore, add_startup_hook
    from instance.services import subscriptions

    from .follows import REMOTE
    from .instance_actor import ensure_application_actor
    from .web import add_routes

    add_routes(app)
    from . import cachefile, fanout  # noqa: F401 - content hooks, handlers, backfill; CacheFile (redundancy)
    from .video_routes import add_routes as add_video_routes

    add_video_routes(app)
    from .backfill import REFRESH_INTERVAL, refresh_remote_videos
    from .delivery import ROUND, probe_paused_hosts
    from .inbox import PRUNE_EVERY, prune_received

    add_chore(app, "prune_received_activities", PRUNE_EVERY, prune_received)
    add_chore(app, "probe_paused_hosts", ROUND.total_seconds(), probe_paused_hosts)
    add_chore(app, "refresh_remote_videos", REFRESH_INTERVAL, refresh_remote_videos)
    add_startup_hook(app, ensure_application_actor)
    subscriptions.REMOTE = REMOTE
    from instance.services import files

    from .http import fetch_image

    if fetch_image not in files.REMOTE_FETCH:
        files.REMOTE_FETCH.append(fetch_image)

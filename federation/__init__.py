"""ActivityPub: actors, signatures, WebFinger, NodeInfo, inbox and delivery.

Two explicit entry points, nothing registered on import for the core: :func:`install` puts
federation's event handlers and ports into a Shoal's extension surface (every process that
runs jobs or serves gets them: :mod:`instance.extensions`), :func:`setup` adds the routes,
chores and startup hook to a web app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp.web import Application

    from instance.extensions import Surface


def install(surface: Surface) -> None:
    """Handle the core's events (send Create, Update, Delete, Like, View, Flag …) and answer its
    ports: remote actors, remote images, video URLs, and the announces of our mirrors."""
    from . import cachefile, fanout
    from .follows import REMOTE
    from .http import fetch_image

    for event, handler in fanout.HANDLERS.items():
        surface.on(event, handler)
    surface.remote_actors = REMOTE
    surface.fetch_remote_image = fetch_image
    surface.resolve_video_url = fanout.resolve_video_url
    surface.announce_mirror = cachefile.send_cachefile
    surface.refresh_remote_video = cachefile.refresh_video


def setup(app: Application) -> None:
    """Add the federation routes, chores and the Application actor's startup hook to ``app``."""
    from instance.app import add_chore, add_startup_hook

    from .backfill import REFRESH_INTERVAL, refresh_remote_videos
    from .delivery import ROUND, probe_paused_hosts
    from .inbox import PRUNE_EVERY, prune_received
    from .instance_actor import ensure_application_actor
    from .video_routes import add_routes as add_video_routes
    from .web import add_routes

    add_routes(app)
    add_video_routes(app)
    add_chore(app, "prune_received_activities", PRUNE_EVERY, prune_received)
    add_chore(app, "probe_paused_hosts", ROUND.total_seconds(), probe_paused_hosts)
    add_chore(app, "refresh_remote_videos", REFRESH_INTERVAL, refresh_remote_videos)
    add_startup_hook(app, ensure_application_actor)

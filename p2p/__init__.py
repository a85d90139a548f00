"""Torrents, the seeder, the built-in tracker and redundancy.

``setup(app)`` (called by the app factory) adds the tracker routes (``/tracker/announce``,
``/tracker/scrape``, ``/tracker/socket``), ``/download/torrents/<file>``, the web seed of local
storage (``/p2p/web-seed/<uuid>/<file>``), the mirrored files
(``/static/redundancy/hls/…``) and the redundancy admin routes, the tracker and seeder
startup hooks, and the peer-expiry and redundancy chores. ``install(surface)`` handles the core's
publish and update events, answers its ``swarm_ids`` port and registers the ``make_torrents``
and ``mirror_video`` jobs, in every Shoal (so a worker has them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from instance.extensions import Surface


def setup(app: web.Application) -> None:
    """Add the P2P routes, startup hooks and chores to ``app``."""
    from instance.app import add_chore, add_startup_hook

    from .files import download_torrent
    from .mirrors import redundancy_chore, serve_mirrored_file
    from .redundancy_api import add_routes as add_redundancy_routes
    from .seeder import start_in_web
    from .tracker import http_announce, http_scrape, start_tracker, sweep_peers
    from .webseed import ROUTE, serve_web_seed
    from .webtorrent import ws_tracker

    app.router.add_get("/tracker/announce", http_announce)
    app.router.add_get("/tracker/scrape", http_scrape)
    app.router.add_get("/tracker/socket", ws_tracker)
    app.router.add_get("/download/torrents/{file}", download_torrent)
    app.router.add_get(ROUTE, serve_web_seed)
    app.router.add_get("/static/redundancy/hls/{uuid}/{file}", serve_mirrored_file)
    add_redundancy_routes(app)
    for hook in (start_tracker, start_in_web):
        add_startup_hook(app, hook)
    add_chore(app, "tracker_sweep", 60.0, sweep_peers)
    # Every minute; the chore itself keeps to each instance's redundancy_check_interval.
    add_chore(app, "redundancy", 60.0, redundancy_chore)


def install(surface: Surface) -> None:
    """Make torrents once a video is published, remake or remove them when it changes (privacy,
    title), answer the ``swarm_ids`` port (the P2P swarm of each rendition), and register the
    ``make_torrents`` and ``mirror_video`` jobs."""
    from .jobs import after_publish, after_update, handle_make_torrents
    from .kinds import MAKE_TORRENTS
    from .mirrors import MIRROR_VIDEO, gave_up_mirroring, handle_mirror_video
    from .swarm import swarm_ids

    surface.on("video_published", after_publish)
    surface.on("video_updated", after_update)
    surface.swarm_ids = swarm_ids
    surface.jobs.register(MAKE_TORRENTS, handle_make_torrents, max_attempts=5)
    surface.jobs.register(MIRROR_VIDEO, handle_mirror_video, max_attempts=5, on_give_up=gave_up_mirroring)

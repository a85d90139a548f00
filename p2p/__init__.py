"""Torrents, the seeder, the built-in tracker and redundancy.

``setup(app)`` (called by the app factory) adds the tracker routes (``/tracker/announce``,
``/tracker/scrape``, ``/tracker/socket``), ``/download/torrents/<file>``, the mirrored files
(``/static/redundancy/hls/…``) and the redundancy admin routes, the tracker and seeder
startup hooks, and the peer-expiry and redundancy chores. The ``make_torrents`` job and its publish
hook live in :mod:`p2p.jobs` (listed in ``JOB_MODULES``, so workers have them too).
"""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Add the P2P routes, startup hooks and chores to ``app``."""
    from instance.app import add_chore, add_startup_hook

    from . import jobs  # noqa: F401 - the make_torrents job and the publish hook
    from .files import download_torrent
    from .redundancy import redundancy_chore, serve_mirrored_file
    from .redundancy_api import add_routes as add_redundancy_routes
    from .seeder import start_in_web
    from .tracker import http_announce, http_scrape, start_tracker, sweep_peers, ws_tracker

    app.router.add_get("/tracker/announce", http_announce)
    app.router.add_get("/tracker/scrape", http_scrape)
    app.router.add_get("/tracker/socket", ws_tracker)
    app.router.add_get("/download/torrents/{file}", download_torrent)
    app.router.add_get("/static/redundancy/hls/{uuid}/{file}", serve_mirrored_file)
    add_redundancy_routes(app)
    for hook in (start_tracker, start_in_web):
        add_startup_hook(app, hook)
    add_chore(app, "tracker_sweep", 60.0, sweep_peers)
    # Every minute; the chore itself keeps to each instance's redundancy_check_interval.
    add_chore(app, "redundancy", 60.0, redundancy_chore)
    _hook_video_updates()


def _hook_video_updates() -> None:
    """Remake or remove torrents when a video changes (privacy, title), if videos offer the hook."""
    from instance.services import videos

    from .jobs import after_update

    hooks = getattr(videos, "UPDATE_HOOKS", None)
    if hooks is not None and after_update not in hooks:
        hooks.append(after_update)

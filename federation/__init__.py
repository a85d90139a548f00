"""ActivityPub: actors, signatures, WebFinger, NodeInfo, inbox and delivery.

Two explicit entry points, nothing registered on import: :func:`install` puts federation's
event handlers, ports, job kinds and its own tables (inbox routes, follow-accepted hooks,
outbox sources: :mod:`.tables`) into a Shoal's extension surface (every process that runs
jobs or serves gets them: :mod:`instance.extensions`); :func:`setup` adds the HTTP routes,
chores and startup hook to a web app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp.web import Application

    from instance.extensions import Surface


def install(surface: Surface) -> None:
    """Handle the core's events (send Create, Update, Delete, Like, View, Flag …), answer its
    ports (remote actors, remote images, video URLs, the announces of our mirrors), register
    the jobs (inbox, deliver, deliver_batch, fetch_comments) and build this Shoal's tables."""
    from datetime import timedelta

    from . import (
        activities,
        backfill,
        cachefile,
        delivery,
        fanout,
        follow_handlers,
        follows,
        inbox,
        sender,
        video_store,
    )
    from .http import fetch_image
    from .signatures import start_signing_process
    from .tables import PACKAGE, Tables
    from .video_routes import VIDEO_OUTBOX

    for event, handler in fanout.HANDLERS.items():
        surface.on(event, handler)
    surface.remote_actors = follows.REMOTE
    surface.fetch_remote_image = fetch_image
    surface.resolve_video_url = fanout.resolve_video_url
    surface.announce_mirror = cachefile.send_cachefile
    surface.refresh_remote_video = cachefile.refresh_video

    tables = Tables()
    for handlers in (follow_handlers, cachefile, activities):
        handlers.install_routes(tables)
    tables.on_follow_accepted.append(backfill.on_follow_accepted)
    tables.outbox_sources.append(VIDEO_OUTBOX)
    surface.packages[PACKAGE] = tables

    jobs = surface.jobs
    minutes = timedelta(minutes=1)
    jobs.register(
        inbox.KIND, inbox.handle_inbox, max_attempts=6, lease=5 * minutes, backoff_base=timedelta(seconds=30)
    )
    jobs.register(delivery.BATCH_KIND, sender.handle_deliver_batch, max_attempts=3, lease=2 * minutes)
    jobs.register(
        delivery.KIND,
        sender.handle_deliver,
        max_attempts=delivery.MAX_ATTEMPTS,
        lease=2 * minutes,
        backoff_base=minutes,
        backoff_cap=timedelta(days=1),
        swept_by=delivery.BATCH_KIND,
    )
    jobs.register(video_store.FETCH_COMMENTS, backfill.handle_fetch_comments, max_attempts=3)
    # Started with a consuming queue, so that the first fan-out does not wait for it to spawn.
    jobs.on_consumer_start(start_signing_process)


def setup(app: Application) -> None:
    """Add the federation routes, chores and the Application actor's startup hook to ``app``."""
    from instance.app import add_chore, add_startup_hook

    from .backfill import REFRESH_INTERVAL, refresh_remote_videos
    from .hosts import ROUND, probe_paused_hosts
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

"""The one app factory: ``create_app(settings)`` builds the web application for every entry point."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from . import migrate
from .api import setup_api
from .core import Shoal, open_shoal
from .settings import Settings
from .web import hotfiles
from .web.context import SHOAL
from .web.middleware import auth_middleware, error_middleware, retry_middleware

log = logging.getLogger("shoal.app")

SETTINGS = web.AppKey("settings", Settings)
StartupHook = Callable[[Shoal, web.Application], Awaitable[None]]


@dataclass(frozen=True)
class Periodic:
    """A chore every web process runs on a timer (its failures are logged, never fatal)."""

    name: str
    interval: float
    run: Callable[[Shoal], Awaitable[object]]


# Per app, filled by the factory and the extensions' ``setup(app)``: two apps in one process
# (tests, benches) each run their own chores at their own settings' intervals.
CHORES = web.AppKey("chores", list[Periodic])
STARTUP_HOOKS = web.AppKey("startup_hooks", list[StartupHook])


def add_chore(
    app: web.Application, name: str, interval: float, run: Callable[[Shoal], Awaitable[object]]
) -> None:
    """Run ``run(shoal)`` every ``interval`` seconds while ``app`` serves (once per name)."""
    if not any(chore.name == name for chore in app[CHORES]):
        app[CHORES].append(Periodic(name, interval, run))


def add_startup_hook(app: web.Application, hook: StartupHook) -> None:
    """Await ``hook(shoal, app)`` once ``app``'s resources are open, before it serves."""
    if hook not in app[STARTUP_HOOKS]:
        app[STARTUP_HOOKS].append(hook)

# Packages that add routes, hooks and chores of their own: each may define
# ``setup(app: web.Application) -> None``, called once per app by the factory.
EXTENSIONS = ("federation", "p2p", "webui")


async def _every(shoal: Shoal, chore: Periodic) -> None:
    while True:
        await asyncio.sleep(chore.interval)
        try:
            await chore.run(shoal)
        except Exception:
            log.exception("periodic %s failed", chore.name)


class NotMigrated(RuntimeError):
    """The database is behind the code's migrations and this process may not migrate it."""


async def prepare_database(shoal: Shoal, *, migrate_now: bool) -> None:
    """Apply pending migrations (embedded mode) or refuse to start on an old schema."""
    if not await migrate.pending(shoal.db):
        return
    if not migrate_now:
        raise NotMigrated("the database schema is not up to date: run `shoal db upgrade` first")
    log.info("applying database migrations")
    await migrate.upgrade(shoal.db)


def create_app(settings: Settings, *, migrate_on_start: bool | None = None) -> web.Application:
    """Build the application; resources open on startup and close on cleanup.

    ``migrate_on_start`` defaults to True in embedded mode (SQLite) and False otherwise,
    where `shoal db upgrade` is an explicit deployment step.
    """
    if migrate_on_start is None:
        migrate_on_start = settings.is_sqlite
    app = web.Application(
        middlewares=[error_middleware, retry_middleware, auth_middleware],
        client_max_size=settings.max_json_body,
    )
    app[SETTINGS] = settings
    app[CHORES] = []
    app[STARTUP_HOOKS] = []

    async def resources(app: web.Application) -> AsyncIterator[None]:
        async with open_shoal(settings) as shoal:
            await prepare_database(shoal, migrate_now=migrate_on_start)
            app[SHOAL] = shoal
            from .jobs import create_queue
            from .services.users import ensure_admin

            jobs = create_queue(shoal, consume=settings.workers_mode == "embedded")
            await jobs.start()
            shoal.jobs = jobs
            try:
                await ensure_admin(shoal)
                for hook in app[STARTUP_HOOKS]:
                    await hook(shoal, app)
                tasks = [asyncio.create_task(_every(shoal, chore), name=chore.name) for chore in app[CHORES]]
                if shoal.redis is not None:
                    from .services.files import follow_access_changes

                    tasks.append(await follow_access_changes(shoal))
                # Everything loaded so far (modules, models, templates) lives as long as the
                # process: out of the collector's sight, a full collection no longer walks it
                # and stalls every request in flight (tens of ms with a big heap).
                gc.collect()
                gc.freeze()
                try:
                    yield
                finally:
                    for task in tasks:
                        task.cancel()
                    for task in tasks:
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
            finally:
                await jobs.close()

    app.cleanup_ctx.append(resources)
    setup_api(app)
    for name in EXTENSIONS:
        module = importlib.import_module(name)
        setup = getattr(module, "setup", None)
        if setup is not None:
            setup(app)
    # Last of the on_response_prepare hooks: it keeps the final headers of answers it may repeat.
    hotfiles.install(app)
    _register_chores(app, settings)
    app.on_shutdown.append(_flush_views_on_shutdown)
    return app


async def _flush_views_on_shutdown(app: web.Application) -> None:
    """Write buffered view counts (embedded mode keeps them in memory) and players' P2P byte
    counts before the process stops."""
    from .services.p2p_stats import write_pending
    from .services.views import flush_views

    shoal = app.get(SHOAL)
    if shoal is not None:
        try:
            await flush_views(shoal)
        except Exception:
            log.exception("could not flush view counts on shutdown")
        try:
            await write_pending(shoal)
        except Exception:
            log.exception("could not write the players' P2P byte counts on shutdown")


def _register_chores(app: web.Application, settings: Settings) -> None:
    from .services.p2p_stats import WRITE_EVERY, write_pending
    from .services.public_links import reconcile_public_links
    from .services.uploads import expire_uploads
    from .services.views import flush_views

    add_chore(app, "expire_uploads", 300.0, expire_uploads)
    add_chore(app, "flush_views", settings.views_flush_interval, flush_views)
    add_chore(app, "write_p2p_stats", WRITE_EVERY, write_pending)
    # The links nginx follows to send public HLS files itself (local storage only; the chore
    # does nothing on S3): checked once before the process serves and then every minute, so
    # what a crash between a change and its link update left behind does not last.
    add_chore(app, "reconcile_public_links", 60.0, reconcile_public_links)
    add_startup_hook(app, _reconcile_at_start)


async def _reconcile_at_start(shoal: Shoal, app: web.Application) -> None:
    from .services.public_links import reconcile_public_links

    try:
        await reconcile_public_links(shoal)
    except Exception:
        log.exception("reconciling the public links at start failed")

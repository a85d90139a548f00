"""Server-rendered pages, static assets and the player bundle.

``setup(app)`` (called by the app factory) adds the page routes, ``/static/webui/`` (the
stylesheet, icons and the esbuild bundles in ``static/dist/``), oEmbed, and the security
headers every response carries.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from instance.app import SETTINGS

from . import oembed, pages, render, security

HERE = Path(__file__).parent
STATIC = HERE / "static"
DIST = STATIC / "dist"


def _asset_version() -> str:
    """Changes when the bundle is rebuilt, so browsers fetch the new one."""
    try:
        return str(int(max(p.stat().st_mtime for p in DIST.iterdir())))
    except (OSError, ValueError):
        return "0"


def setup(app: web.Application) -> None:
    """Add the web UI's routes, templates and headers to ``app``."""
    settings = app[SETTINGS]
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["duration"] = render.duration
    env.globals["asset_version"] = _asset_version()
    app.router.add_routes(pages.routes)
    app.router.add_routes(oembed.routes)
    DIST.mkdir(parents=True, exist_ok=True)
    app.router.add_static("/static/webui/", STATIC, append_version=False)
    security.install(app, settings)

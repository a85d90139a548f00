"""The REST API v1, in PeerTube's paths and shapes. Route modules register on :data:`api`."""

from __future__ import annotations

import importlib

from aiohttp import web

from .registry import Api

api = Api()

ROUTE_MODULES = (
    "meta", "oauth", "registrations", "users", "session", "channels", "accounts", "videos",
    "subscriptions", "jobs", "uploads", "files", "events", "views", "comments", "ratings", "server",
    "search", "search_videos", "abuses",
)  # fmt: skip


def setup_api(app: web.Application) -> None:
    """Import every route module (they register on :data:`api`) and add the routes to ``app``."""
    for name in ROUTE_MODULES:
        importlib.import_module(f"{__name__}.{name}")
    api.setup(app)

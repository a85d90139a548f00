"""The app's and the request's keys, and who is asking."""

from __future__ import annotations

from aiohttp import web

from ..core import Shoal
from ..errors import Unauthorized
from ..models import User

SHOAL = web.AppKey("shoal", Shoal)


USER = web.RequestKey("user", User)


SESSION_TOKEN = web.RequestKey("session_token", str)


def shoal_of(request: web.Request) -> Shoal:
    return request.app[SHOAL]


def current_user(request: web.Request) -> User | None:
    """The authenticated user, or None."""
    return request.get(USER)


def require_user(request: web.Request) -> User:
    user = request.get(USER)
    if user is None:
        raise Unauthorized("Authentication is required.", code="authentication_required")
    return user


def client_ip(request: web.Request) -> str:
    """The client's address, from X-Forwarded-For when the proxy is trusted."""
    if request.app[SHOAL].settings.trust_proxy:
        forwarded = request.headers.get("X-Forwarded-For")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.remote or "unknown"

"""Routes: web sessions — ``POST /login`` sets the session cookie, ``POST /logout`` ends it.

The cookie (``shoal_session``) is HttpOnly, SameSite=Lax, Secure when the public URL is
https, and lives as long as a refresh token. Requests it authenticates must carry a CSRF
token when they change state (enforced in :mod:`instance.web`); the login form needs
none, but a login posted from another origin is refused.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import ConfigDict, Field

from ..services import sessions
from ..web.context import SESSION_TOKEN, shoal_of
from ..web.middleware import SESSION_COOKIE
from . import api
from .oauth import TextBody
from .registry import BODY


class LoginForm(TextBody):
    model_config = ConfigDict(alias_generator=None)

    username: str = Field(max_length=320)
    password: str = Field(max_length=1000)
    next: str | None = Field(None, max_length=2000)
    # A form rendered inside a session may carry one; the login itself needs none.
    csrf_token: str | None = Field(None, max_length=200)


class LogoutForm(TextBody):
    model_config = ConfigDict(alias_generator=None)

    next: str | None = Field(None, max_length=2000)
    csrf_token: str | None = Field(None, max_length=200)


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


@api.route(
    "POST",
    "/login",
    summary="Log in to the web UI (sets the session cookie)",
    auth="none",
    body=LoginForm,
    form=True,
    rate="login",
    tags=("session",),
    allow_pending_password=True,
    responses={"303": {"description": "Logged in: redirect to `next` (a local path) or `/`"}},
)
async def post_login(request: web.Request) -> web.Response:
    """Form fields ``username`` (or e-mail), ``password`` and an optional ``next``. Bad
    credentials answer 400 ``invalid_grant`` (``user_blocked``, ``registration_pending``);
    an ``Origin`` other than the instance's answers 403 ``csrf_failed``."""
    shoal = shoal_of(request)
    sessions.check_origin(shoal, request.headers.get("Origin"))
    body: LoginForm = request[BODY]  # type: ignore[assignment]
    token = await sessions.web_login(
        shoal, username=body.username, password=body.password, previous=request.cookies.get(SESSION_COOKIE)
    )
    response = _redirect(sessions.safe_next(body.next))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=shoal.settings.refresh_token_ttl,
        path="/",
        secure=shoal.settings.secure_cookies,
        httponly=True,
        samesite="Lax",
    )
    return response


@api.route(
    "POST",
    "/logout",
    summary="Log out of the web UI (ends the session, clears the cookie)",
    auth="none",
    body=LogoutForm,
    form=True,
    tags=("session",),
    allow_pending_password=True,
    responses={"303": {"description": "Logged out: redirect to `next` (a local path) or `/`"}},
)
async def post_logout(request: web.Request) -> web.Response:
    """Needs the session's CSRF token (header ``X-CSRF-Token`` or field ``csrf_token``)."""
    body: LogoutForm = request[BODY]  # type: ignore[assignment]
    await sessions.web_logout(shoal_of(request), request.get(SESSION_TOKEN))
    response = _redirect(sessions.safe_next(body.next))
    response.del_cookie(SESSION_COOKIE, path="/")
    return response

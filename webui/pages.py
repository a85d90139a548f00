"""Page handlers: each parses the request, calls instance services, and renders one template.

Pages work without JavaScript for reading; the scripts (player, uploads, forms) talk to
the REST API with the session cookie and its CSRF token (``<meta name=csrf-token>``).
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp_jinja2
from aiohttp import web

from instance import jobs
from instance.api import serializers
from instance.errors import ApiError, NotFound
from instance.models import Privacy, Role, User
from instance.services import channels, options, p2p_stats, users, video_lists, videos
from instance.services.registrations import list_registrations
from instance.services.sessions import safe_next, session_csrf_token
from instance.services.video_lists import VideoFilters
from instance.web.context import SESSION_TOKEN, current_user, shoal_of

from . import render
from .pagecache import shared_for_anonymous
from .security import EMBED_PREFIX, content_security_policy, origin_of

PAGE_SIZE = 24
routes = web.RouteTableDef()


async def context(request: web.Request, **values: Any) -> dict[str, Any]:
    """What every template sees: the instance, the viewer, the CSRF token, the current path."""
    shoal = shoal_of(request)
    user = current_user(request)
    token = request.get(SESSION_TOKEN)
    opts = await options.get_options(shoal)
    return {
        "instance_name": opts["instance_name"],
        "instance_description": opts["instance_description"],
        "registration": opts["registration"],
        "user": user,
        "is_moderator": user is not None and user.role in (Role.ADMIN, Role.MODERATOR),
        "is_admin": user is not None and user.role == Role.ADMIN,
        "csrf": session_csrf_token(shoal, token) if token else "",
        "path": request.path_qs,
        "public_url": shoal.settings.public_url,
        **values,
    }


# Pages a user with a temporary password (an accepted invite) may still open.
PASSWORD_PENDING_TEMPLATES = frozenset({"settings.html", "error.html"})


async def page(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:
    """Render ``template`` with the common context.

    A user who must change a temporary password (invited by an admin) is sent to the
    "choose your password" form first, wherever the login's ``next`` pointed.
    """
    user = current_user(request)
    if user is not None and user.must_change_password and template not in PASSWORD_PENDING_TEMPLATES:
        raise web.HTTPSeeOther("/settings", headers={"Cache-Control": "no-store"})
    values = await context(request, **values)
    response = aiohttp_jinja2.render_template(template, request, values, status=status)
    response.headers.setdefault("Cache-Control", "no-store" if current_user(request) else "no-cache")
    return response


def _login_redirect(request: web.Request) -> web.HTTPFound:
    return web.HTTPFound("/login?" + urlencode({"next": request.path_qs}))


def _require_user(request: web.Request) -> User:
    user = current_user(request)
    if user is None:
        raise _login_redirect(request)
    return user


def _page_number(request: web.Request) -> int:
    try:
        return max(1, min(10_000, int(request.query.get("page", "1"))))
    except ValueError:
        return 1


def _pagination(request: web.Request, number: int, total: int) -> dict[str, Any]:
    pages = max(1, math.ceil(total / PAGE_SIZE))
    query = {k: v for k, v in request.query.items() if k != "page"}

    def link(n: int) -> str:
        return request.path + "?" + urlencode({**query, "page": n})

    return {
        "number": number,
        "pages": pages,
        "previous": link(number - 1) if number > 1 else None,
        "next": link(number + 1) if number < pages else None,
    }


def _cards(request: web.Request, items: list[Any]) -> list[dict[str, Any]]:
    shoal = shoal_of(request)
    return [serializers.video(shoal, item) for item in items]


# ---------------------------------------------------------------- browsing


@routes.get("/")
@shared_for_anonymous
async def home(request: web.Request) -> web.Response:
    """Recent or trending videos, local only or including followed instances, paginated."""
    from instance.services import views

    shoal = shoal_of(request)
    tab = "trending" if request.query.get("sort") == "trending" else "recent"
    scope = "all" if request.query.get("scope") == "all" else "local"
    number = _page_number(request)
    filters = VideoFilters(
        start=(number - 1) * PAGE_SIZE,
        count=PAGE_SIZE,
        sort="-publishedAt",
        is_local=True if scope == "local" else None,
    )
    if tab == "trending":
        result = await views.trending_videos(shoal, current_user(request), filters)
    else:
        result = await video_lists.search_videos(shoal, current_user(request), filters)
    return await page(
        request,
        "home.html",
        videos=_cards(request, result.data),
        tab=tab,
        scope=scope,
        pagination=_pagination(request, number, result.total),
    )


@routes.get("/search")
async def search_page(request: web.Request) -> web.Response:
    """Full-text search over titles, descriptions and tags of local and known remote videos."""
    from instance.services import search

    terms = request.query.get("q", "").strip()[:200]
    number = _page_number(request)
    found: list[dict[str, Any]] = []
    total = 0
    if terms:
        result = await search.search_videos(
            shoal_of(request), current_user(request), terms, start=(number - 1) * PAGE_SIZE, count=PAGE_SIZE
        )
        found, total = _cards(request, result.data), result.total
    return await page(
        request,
        "search.html",
        q=terms,
        videos=found,
        total=total,
        pagination=_pagination(request, number, total),
    )


def _player_config(
    request: web.Request, details: dict[str, Any], video: Any, *, embed: bool
) -> dict[str, Any]:
    """What the player script needs, embedded as JSON in the page."""
    shoal = shoal_of(request)
    playlists = details.get("streamingPlaylists") or []
    storyboard = None
    board = video.storyboard if isinstance(video.storyboard, dict) else None
    if board and isinstance(board.get("key"), str) and video.is_local:
        storyboard = "/lazy-static/" + quote(board["key"])
    start = request.query.get("start") or request.query.get("t")
    try:
        start_at = max(0.0, float(start)) if start else 0.0
    except ValueError:
        start_at = 0.0
    return {
        "id": details["id"],
        "uuid": details["uuid"],
        "shortUUID": details["shortUUID"],
        "name": details["name"],
        "duration": details["duration"],
        "playlistUrl": playlists[0]["playlistUrl"] if playlists else None,
        "needsToken": serializers.needs_file_token(video),
        "poster": details["previewPath"] or details["thumbnailPath"],
        "storyboard": storyboard,
        "start": start_at,
        "embed": embed,
        "autoplay": request.query.get("autoplay") == "1",
        "muted": request.query.get("muted") == "1",
        "watchUrl": shoal.url(f"/w/{details['shortUUID']}"),
        "p2p": _p2p_config(shoal, details, video),
    }


def _p2p_config(shoal: Any, details: dict[str, Any], video: Any) -> dict[str, Any] | bool:
    """What the player needs to share segments with other viewers, or False for HTTP only.

    Only when the instance has P2P on, for videos whose files need no token (never private or
    internal ones), with our WebSocket tracker (the only one players announce to) and the
    SHA-256 manifest every segment from a peer is checked against.
    """
    playlists = details.get("streamingPlaylists") or []
    if not shoal.settings.p2p_enabled or serializers.needs_file_token(video) or not playlists:
        return False
    trackers = [url for url in details.get("trackerUrls") or [] if url.startswith(("ws://", "wss://"))]
    manifest = playlists[0].get("segmentsSha256Url")
    if not trackers or not manifest:
        return False
    return {
        "trackers": trackers,
        "segmentsSha256Url": manifest,
        "stunServer": shoal.settings.seeder_stun_server or None,
    }


async def _video(request: web.Request, ident: str) -> tuple[dict[str, Any], Any]:
    shoal = shoal_of(request)
    view = await videos.video_details(shoal, ident, current_user(request))
    return serializers.video_details(shoal, view), view.video


@routes.get("/w/{ident}")
@shared_for_anonymous
async def watch(request: web.Request) -> web.Response:
    """The watch page: player, details, share box, downloads and comments."""
    shoal = shoal_of(request)
    try:
        details, video = await _video(request, request.match_info["ident"])
    except ApiError as exc:
        return await page(request, "error.html", status=exc.status, message=exc.detail)
    user = current_user(request)
    can_manage = user is not None and (
        user.role in (Role.ADMIN, Role.MODERATOR) or details["account"].get("userId") == user.id
    )
    watch_url = shoal.url(f"/w/{details['shortUUID']}")
    embed_url = shoal.url(f"{EMBED_PREFIX}{details['uuid']}")
    oembed = shoal.url("/services/oembed?" + urlencode({"url": watch_url}))
    response = await page(
        request,
        "watch.html",
        video=details,
        description=render.markdown(details.get("description")),
        excerpt=render.plain_excerpt(details.get("description")),
        player=_player_config(request, details, video, embed=False),
        watch_url=watch_url,
        embed_url=embed_url,
        oembed_url=oembed,
        thumbnail_url=shoal.url(details["previewPath"] or details["thumbnailPath"] or "/static/icon.svg"),
        can_manage=can_manage,
        is_public=video.privacy == Privacy.PUBLIC and not video.hidden,
        files=details["streamingPlaylists"][0]["files"] if details["streamingPlaylists"] else [],
    )
    return _allow_remote_media(request, response, details, video, embed=False)


@routes.get(EMBED_PREFIX + "{ident}")
@shared_for_anonymous
async def embed(request: web.Request) -> web.Response:
    """Just the player, for other sites' iframes."""
    try:
        details, video = await _video(request, request.match_info["ident"])
    except ApiError as exc:
        return await page(request, "error.html", status=exc.status, message=exc.detail, bare=True)
    response = await page(
        request, "embed.html", video=details, player=_player_config(request, details, video, embed=True)
    )
    return _allow_remote_media(request, response, details, video, embed=True)


def _allow_remote_media(
    request: web.Request, response: web.Response, details: dict[str, Any], video: Any, *, embed: bool
) -> web.Response:
    """A remote video plays from its instance (or that instance's storage/CDN) and shares through
    its tracker: the page's CSP lets the player fetch from exactly those origins."""
    if video.is_local:
        return response
    urls: list[Any] = list(details.get("trackerUrls") or [])
    for playlist in details.get("streamingPlaylists") or []:
        urls += [playlist.get("playlistUrl"), playlist.get("segmentsSha256Url")]
        urls += [f.get(key) for f in playlist.get("files") or [] for key in ("fileUrl", "playlistUrl")]
    origins = [origin for origin in map(origin_of, (u for u in urls if isinstance(u, str))) if origin]
    policy = content_security_policy(shoal_of(request).settings, embed=embed, remote=origins)
    response.headers["Content-Security-Policy"] = policy
    return response


async def _actor_page(request: web.Request, kind: str) -> web.Response:
    shoal = shoal_of(request)
    handle = request.match_info["name"]
    number = _page_number(request)
    filters = VideoFilters(start=(number - 1) * PAGE_SIZE, count=PAGE_SIZE, sort="-publishedAt")
    user = current_user(request)
    try:
        if kind == "channel":
            view = await channels.channel_view(shoal, handle)
            actor = serializers.channel(shoal, view.actor, view.stats)
            result = await channels.list_channel_videos(shoal, handle, user, filters)
            owned: list[dict[str, Any]] = []
        else:
            view = await channels.account_view(shoal, handle)
            actor = serializers.account(shoal, view.actor, view.stats)
            result = await channels.list_account_videos(shoal, handle, user, filters)
            owned_page = await channels.list_account_channels(shoal, handle, start=0, count=50, sort="name")
            owned = [serializers.channel(shoal, c, owned_page.stats) for c in owned_page.data]
    except ApiError as exc:
        return await page(request, "error.html", status=exc.status, message=exc.detail)
    return await page(
        request,
        "actor.html",
        kind=kind,
        actor=actor,
        handle=f"{actor['name']}@{actor['host']}",
        description=render.markdown(actor.get("description")),
        channels=owned,
        videos=_cards(request, result.data),
        pagination=_pagination(request, number, result.total),
    )


@routes.get("/c/{name}")
async def channel_page(request: web.Request) -> web.Response:
    """A channel and its videos."""
    return await _actor_page(request, "channel")


@routes.get("/a/{name}")
async def account_page(request: web.Request) -> web.Response:
    """An account, its channels and its videos."""
    return await _actor_page(request, "account")


# ---------------------------------------------------------------- accounts


@routes.get("/login")
async def login_page(request: web.Request) -> web.Response:
    """The login form (posts to ``/login``)."""
    return await page(request, "login.html", next=safe_next(request.query.get("next")))


@routes.get("/signup")
async def signup_page(request: web.Request) -> web.Response:
    """The registration form (the script posts to ``/api/v1/users/register``)."""
    return await page(request, "signup.html")


@routes.get("/settings")
async def settings_page(request: web.Request) -> web.Response:
    """Profile, e-mail and password; the forced password change lands here."""
    user = _require_user(request)
    details = await users.user_details(shoal_of(request), user.id)
    return await page(request, "settings.html", account=details.account, forced=user.must_change_password)


@routes.get("/upload")
async def upload_page(request: web.Request) -> web.Response:
    """Drag and drop or pick a file; resumable upload, then live processing progress."""
    user = _require_user(request)
    details = await users.user_details(shoal_of(request), user.id)
    return await page(request, "upload.html", channels=details.channels)


@routes.get("/my-library")
async def library_page(request: web.Request) -> web.Response:
    """My videos in every state, and my channels."""
    user = _require_user(request)
    shoal = shoal_of(request)
    number = _page_number(request)
    filters = VideoFilters(start=(number - 1) * PAGE_SIZE, count=PAGE_SIZE, sort="-createdAt")
    result = await video_lists.search_videos(shoal, user, filters, owner=True)
    details = await users.user_details(shoal, user.id)
    return await page(
        request,
        "library.html",
        videos=_cards(request, result.data),
        channels=[serializers.channel(shoal, c, details.stats) for c in details.channels],
        pagination=_pagination(request, number, result.total),
    )


@routes.get("/videos/edit/{ident}")
async def edit_page(request: web.Request) -> web.Response:
    """Edit a video's title, description, tags and privacy."""
    _require_user(request)
    try:
        details, _ = await _video(request, request.match_info["ident"])
    except ApiError as exc:
        return await page(request, "error.html", status=exc.status, message=exc.detail)
    return await page(request, "edit.html", video=details)


# ---------------------------------------------------------------- admin


def _require_admin(request: web.Request) -> User:
    user = _require_user(request)
    if user.role != Role.ADMIN:
        raise NotFound("No such page.", code="not_found")
    return user


@routes.get("/admin")
async def admin_page(request: web.Request) -> web.Response:
    """Users, sign-ups awaiting approval, invites, registration, instance, P2P ratio, job queues."""
    _require_admin(request)
    shoal = shoal_of(request)
    total, people = await users.list_users(shoal, start=0, count=100, sort="-createdAt")
    stats = await jobs.queue_stats(shoal)
    _, failed = await jobs.list_work(shoal, "failed", start=0, count=50, kind=None, newest_first=True)
    pending_total, pending = await list_registrations(shoal, start=0, count=100, sort="createdAt")
    return await page(
        request,
        "admin.html",
        p2p=await p2p_stats.totals(shoal),
        p2p_enabled=shoal.settings.p2p_enabled,
        registrations=pending,
        total_registrations=pending_total,
        people=people,
        total_users=total,
        roles=[(role.value, role.label) for role in Role],
        options=await options.get_options(shoal),
        job_stats=stats,
        failed_jobs=failed,
        registration_modes=options.EDITABLE["registration"],
    )


@routes.post("/admin/instance")
async def admin_instance(request: web.Request) -> web.Response:
    """Save the registration mode and the instance's name and description (a plain form)."""
    _require_admin(request)
    form = await request.post()
    changes = {
        key: str(form[key]).strip()
        for key in ("registration", "instance_name", "instance_description")
        if key in form and str(form[key]).strip()
    }
    await options.set_options(shoal_of(request), changes)
    raise web.HTTPSeeOther("/admin#instance")

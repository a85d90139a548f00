"""Routes: users — one's own profile, invitations and the admin API (sign-up: :mod:`.registrations`).

Shapes follow PeerTube's ``User``, ``Account`` and ``VideoChannel``.
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from ..core import Shoal
from ..errors import BadRequest
from ..models import Role, User, UserState
from ..services import account_deletion
from ..services import users as service
from ..services.invites import invite_user
from ..services.sessions import session_csrf_token
from ..services.users import MAX_QUOTA, UserDetails, UserSort
from ..web.context import SESSION_TOKEN, require_user, shoal_of
from ..web.responses import iso, json_response, no_content
from . import api, serializers
from .oauth import TextBody, TextQuery, calling_token
from .registry import BODY, MAX_ID, QUERY, path_id

# Request models ---------------------------------------------------------------


class UpdateMeBody(TextBody):
    display_name: str | None = Field(None, min_length=1, max_length=120)
    description: str | None = Field(None, max_length=1000)
    nsfw_policy: Literal["display", "blur", "do_not_list"] | None = None
    email: str | None = Field(None, max_length=320)
    current_password: str | None = Field(None, max_length=1000)
    password: str | None = Field(None, max_length=255)


class PasswordBody(TextBody):
    password: str = Field(max_length=1000)


class InviteBody(TextBody):
    email: str = Field(max_length=320)
    username: str | None = Field(None, max_length=50)
    role: Role = Role.USER


class CreateUserBody(TextBody):
    username: str = Field(max_length=50)
    password: str = Field(max_length=255)
    email: str = Field(max_length=320)
    role: Role = Role.USER
    video_quota: int | None = Field(None, ge=-1, le=MAX_QUOTA)
    # Shoal has no daily quota; PeerTube's clients send -1 (unlimited), the only value accepted.
    video_quota_daily: Literal[-1] | None = None
    channel_name: str | None = Field(None, max_length=50)


class UpdateUserBody(TextBody):
    email: str | None = Field(None, max_length=320)
    role: Role | None = None
    video_quota: int | None = Field(None, ge=-1, le=MAX_QUOTA)
    video_quota_daily: Literal[-1] | None = None
    password: str | None = Field(None, max_length=255)


class BlockBody(TextBody):
    reason: str | None = Field(None, max_length=250)


class UserListQuery(TextQuery):
    start: int = Field(0, ge=0, le=MAX_ID)
    count: int = Field(15, ge=0, le=100)
    sort: UserSort = "-createdAt"
    search: str | None = Field(None, max_length=200)
    blocked: bool | None = None


# Representations --------------------------------------------------------------


def user_json(shoal: Shoal, details: UserDetails) -> dict[str, Any]:
    """PeerTube's ``User``, plus Shoal's ``mustChangePassword`` and ``registrationPending``."""
    user = details.user
    role = Role(user.role)
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "pendingEmail": None,
        "emailVerified": None,
        "emailPublic": False,
        "nsfwPolicy": user.nsfw_policy,
        "adminFlags": 0,
        "role": {"id": int(role), "label": role.label},
        "videoQuota": user.video_quota,
        "videoQuotaDaily": -1,
        "account": serializers.account(shoal, details.account, details.stats),
        "videoChannels": [serializers.channel(shoal, c, details.stats) for c in details.channels],
        "blocked": user.blocked,
        "blockedReason": user.blocked_reason,
        "createdAt": iso(user.created_at),
        "lastLoginDate": iso(user.last_login_at),
        "twoFactorEnabled": False,
        "pluginAuth": None,
        "mustChangePassword": user.must_change_password,
        "registrationPending": user.state == UserState.PENDING,
    }


def _me(request: web.Request) -> User:
    return require_user(request)


# One's own account ------------------------------------------------------------


@api.route(
    "GET",
    "/api/v1/users/me",
    summary="The calling user",
    auth="user",
    tags=("users",),
    allow_pending_password=True,
)
async def get_me(request: web.Request) -> web.Response:
    """PeerTube's ``User`` with ``account`` and ``videoChannels``."""
    details = await service.user_details(shoal_of(request), _me(request).id)
    return json_response(user_json(shoal_of(request), details))


@api.route(
    "PUT",
    "/api/v1/users/me",
    summary="Change one's profile, e-mail or password",
    auth="user",
    body=UpdateMeBody,
    tags=("users",),
    allow_pending_password=True,
    responses={"204": {"description": "Updated"}},
)
async def put_me(request: web.Request) -> web.Response:
    """Changing ``email`` or ``password`` needs ``currentPassword`` (else 400 ``invalid_password``).
    A new password clears the forced change of a temporary password and revokes every other
    token and session of the user."""
    body: UpdateMeBody = request[BODY]  # type: ignore[assignment]
    await service.update_me(
        shoal_of(request),
        _me(request).id,
        calling_token=calling_token(request),
        display_name=body.display_name,
        description=body.description,
        nsfw_policy=body.nsfw_policy,
        email=body.email,
        current_password=body.current_password,
        password=body.password,
    )
    return no_content()


@api.route(
    "DELETE",
    "/api/v1/users/me",
    summary="Delete one's own account",
    auth="user",
    body=PasswordBody,
    tags=("users",),
    responses={"204": {"description": "Deleted"}},
)
async def delete_me(request: web.Request) -> web.Response:
    """Needs ``{password}``. Deletes the user, its account, channels and their videos.
    The last administrator cannot delete themselves (409 ``last_admin``)."""
    body: PasswordBody = request[BODY]  # type: ignore[assignment]
    await account_deletion.delete_me(shoal_of(request), _me(request).id, body.password)
    return no_content()


@api.route(
    "GET",
    "/api/v1/users/me/csrf-token",
    summary="The CSRF token of the calling web session",
    auth="user",
    tags=("users",),
    allow_pending_password=True,
)
async def get_csrf_token(request: web.Request) -> web.Response:
    """``{csrfToken}``: send it as ``X-CSRF-Token`` (or form field ``csrf_token``) with every
    POST/PUT/PATCH/DELETE authenticated by the session cookie. Bearer-token clients need
    none (400 ``no_session``)."""
    session_token = request.get(SESSION_TOKEN)
    if session_token is None:
        raise BadRequest(
            "CSRF tokens belong to cookie sessions; bearer-token clients need none.", code="no_session"
        )
    return json_response({"csrfToken": session_csrf_token(shoal_of(request), session_token)})


# Invitations and the admin API --------------------------------------------------


@api.route(
    "POST",
    "/api/v1/users/invites",
    summary="Invite a user with a temporary password",
    auth="admin",
    body=InviteBody,
    tags=("users",),
)
async def post_invite(request: web.Request) -> web.Response:
    """Creates an active user who must change the temporary password at first login. The
    password is in this answer only: ``{user: {id, username, email}, temporaryPassword}``."""
    body: InviteBody = request[BODY]  # type: ignore[assignment]
    user, password = await invite_user(
        shoal_of(request), email=body.email, username=body.username, role=body.role
    )
    return json_response(
        {
            "user": {"id": user.id, "username": user.username, "email": user.email},
            "temporaryPassword": password,
        },
        headers={"Cache-Control": "no-store"},
    )


@api.route(
    "GET",
    "/api/v1/users",
    summary="List users",
    auth="moderator",
    query=UserListQuery,
    tags=("users",),
)
async def get_users(request: web.Request) -> web.Response:
    """``{total, data}``; ``search`` matches the name or the e-mail; ``blocked`` filters."""
    q: UserListQuery = request[QUERY]  # type: ignore[assignment]
    total, page = await service.list_users(
        shoal_of(request), start=q.start, count=q.count, sort=q.sort, search=q.search, blocked=q.blocked
    )
    shoal = shoal_of(request)
    return json_response({"total": total, "data": [user_json(shoal, d) for d in page]})


@api.route(
    "POST",
    "/api/v1/users",
    summary="Create a user",
    auth="admin",
    body=CreateUserBody,
    tags=("users",),
)
async def post_user(request: web.Request) -> web.Response:
    """PeerTube's answer ``{user: {id, account: {id}}}``; ``channelName`` names the first channel."""
    body: CreateUserBody = request[BODY]  # type: ignore[assignment]
    user = await service.admin_create_user(
        shoal_of(request),
        username=body.username,
        email=body.email,
        password=body.password,
        role=body.role,
        video_quota=body.video_quota,
        channel_name=body.channel_name,
    )
    return json_response({"user": {"id": user.id, "account": {"id": user.account_id}}})


@api.route("GET", "/api/v1/users/{id}", summary="Get a user", auth="admin", tags=("users",))
async def get_user(request: web.Request) -> web.Response:
    """PeerTube's ``User``."""
    details = await service.user_details(shoal_of(request), path_id(request))
    return json_response(user_json(shoal_of(request), details))


@api.route(
    "PUT",
    "/api/v1/users/{id}",
    summary="Change a user",
    auth="admin",
    body=UpdateUserBody,
    tags=("users",),
    responses={"204": {"description": "Updated"}},
)
async def put_user(request: web.Request) -> web.Response:
    """``email``, ``role``, ``videoQuota``, ``password`` (which revokes the user's tokens).
    Admins cannot change their own role."""
    body: UpdateUserBody = request[BODY]  # type: ignore[assignment]
    await service.update_user(
        shoal_of(request),
        _me(request),
        path_id(request),
        email=body.email,
        role=body.role,
        video_quota=body.video_quota,
        password=body.password,
    )
    return no_content()


@api.route(
    "DELETE",
    "/api/v1/users/{id}",
    summary="Delete a user",
    auth="admin",
    tags=("users",),
    responses={"204": {"description": "Deleted"}},
)
async def delete_user(request: web.Request) -> web.Response:
    """Deletes the user, its account, channels and their videos (not oneself: use /users/me)."""
    await account_deletion.delete_user(shoal_of(request), _me(request), path_id(request))
    return no_content()


@api.route(
    "POST",
    "/api/v1/users/{id}/block",
    summary="Block a user",
    auth="moderator",
    body=BlockBody,
    tags=("users",),
    responses={"204": {"description": "Blocked"}},
)
async def post_block(request: web.Request) -> web.Response:
    """Revokes every token and session of the user; they cannot log in until unblocked.
    A moderator may block only users with the User role; an admin anyone but themselves."""
    body: BlockBody = request[BODY]  # type: ignore[assignment]
    await service.set_blocked(
        shoal_of(request), _me(request), path_id(request), blocked=True, reason=body.reason
    )
    return no_content()


@api.route(
    "POST",
    "/api/v1/users/{id}/unblock",
    summary="Unblock a user",
    auth="moderator",
    body=BlockBody,
    tags=("users",),
    responses={"204": {"description": "Unblocked"}},
)
async def post_unblock(request: web.Request) -> web.Response:
    """Lifts a block (same powers as blocking); the user logs in again to get a token."""
    await service.set_blocked(shoal_of(request), _me(request), path_id(request), blocked=False)
    return no_content()

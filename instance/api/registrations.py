"""Routes: sign-up and its moderation (PeerTube's ``UserRegistration``).

Shoal keeps a registration as a user in the ``pending`` state, so a registration's id is
the id of that user.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field

from ..models import UserState
from ..services import registrations
from ..services.users import UserDetails, UserSort
from ..web.context import require_user, shoal_of
from ..web.responses import iso, json_response, no_content
from . import api
from .oauth import TextBody, TextQuery
from .registry import BODY, MAX_ID, QUERY, path_id

# Request models ---------------------------------------------------------------


class ChannelIn(TextBody):
    name: str = Field(max_length=50)
    display_name: str = Field(min_length=1, max_length=120)


class RegisterBody(TextBody):
    username: str = Field(max_length=50)
    password: str = Field(max_length=255)
    email: str = Field(max_length=320)
    display_name: str | None = Field(None, min_length=1, max_length=120)
    channel: ChannelIn | None = None
    registration_reason: str | None = Field(None, max_length=3000)


class ModerationBody(TextBody):
    # Accepted for PeerTube compatibility; Shoal sends no e-mail and keeps no response.
    moderation_response: str | None = Field(None, max_length=3000)
    prevent_email_delivery: bool | None = None


class RegistrationListQuery(TextQuery):
    start: int = Field(0, ge=0, le=MAX_ID)
    count: int = Field(15, ge=0, le=100)
    sort: UserSort = "-createdAt"
    search: str | None = Field(None, max_length=200)



# Representations --------------------------------------------------------------


# PeerTube's UserRegistrationState: 1 pending, 2 rejected, 3 accepted.
_REGISTRATION_STATES = {UserState.PENDING: (1, "Pending"), UserState.ACTIVE: (3, "Accepted")}


def registration_json(details: UserDetails) -> dict[str, Any]:
    """PeerTube's ``UserRegistration`` of a sign-up (``id`` is the user's id)."""
    user = details.user
    state_id, label = _REGISTRATION_STATES[UserState(user.state)]
    channel = details.channels[0] if details.channels else None
    return {
        "id": user.id,
        "state": {"id": state_id, "label": label},
        "registrationReason": user.registration_reason,
        "moderationResponse": None,
        "username": user.username,
        "email": user.email,
        "emailVerified": None,
        "accountDisplayName": details.account.display_name,
        "channelHandle": channel.preferred_username if channel else None,
        "channelDisplayName": channel.display_name if channel else None,
        "createdAt": iso(user.created_at),
        "updatedAt": iso(user.created_at),
        "user": {"id": user.id},
    }



# Routes -----------------------------------------------------------------------


@api.route(
    "POST",
    "/api/v1/users/register",
    summary="Sign up",
    auth="none",
    body=RegisterBody,
    rate="register",
    tags=("users",),
    responses={
        "204": {"description": "Registered (open mode): the user can log in"},
        "200": {"description": "Registration waiting for approval (approval mode): a UserRegistration"},
    },
)
async def post_register(request: web.Request) -> web.Response:
    """Open mode answers 204 and the user can log in at once. Approval mode answers 200 with
    the registration (``state`` ``{id: 1, label: "Pending"}``); the user cannot log in
    (400 ``registration_pending``) until a moderator accepts. Closed mode answers 403
    ``registration_closed``. A taken name or e-mail answers 409 naming the field. Without
    ``channel`` the first channel is ``<username>_channel``."""
    body: RegisterBody = request[BODY]  # type: ignore[assignment]
    details = await registrations.register_user(
        shoal_of(request),
        username=body.username,
        email=body.email,
        password=body.password,
        display_name=body.display_name,
        channel_name=body.channel.name if body.channel else None,
        channel_display_name=body.channel.display_name if body.channel else None,
        registration_reason=body.registration_reason,
    )
    if details.user.state == UserState.PENDING:
        return json_response(registration_json(details))
    return no_content()


@api.route(
    "GET",
    "/api/v1/users/registrations",
    summary="Sign-ups waiting for approval",
    auth="moderator",
    query=RegistrationListQuery,
    tags=("users",),
)
async def get_registrations(request: web.Request) -> web.Response:
    """``{total, data}`` of PeerTube ``UserRegistration`` objects, all pending."""
    q: RegistrationListQuery = request[QUERY]  # type: ignore[assignment]
    total, page = await registrations.list_registrations(
        shoal_of(request), start=q.start, count=q.count, sort=q.sort, search=q.search
    )
    return json_response({"total": total, "data": [registration_json(d) for d in page]})


@api.route(
    "POST",
    "/api/v1/users/registrations/{id}/accept",
    summary="Accept a sign-up",
    auth="moderator",
    body=ModerationBody,
    tags=("users",),
    responses={"204": {"description": "Accepted: the user can log in"}},
)
async def post_accept_registration(request: web.Request) -> web.Response:
    """The pending user becomes active. 404 ``registration_not_found`` when none is pending."""
    await registrations.accept_registration(shoal_of(request), require_user(request), path_id(request))
    return no_content()


@api.route(
    "POST",
    "/api/v1/users/registrations/{id}/reject",
    summary="Reject a sign-up",
    auth="moderator",
    body=ModerationBody,
    tags=("users",),
    responses={"204": {"description": "Rejected: the user and its actors are deleted"}},
)
async def post_reject_registration(request: web.Request) -> web.Response:
    """The pending user, its account and its channels are deleted; the names are free again."""
    await registrations.reject_registration(shoal_of(request), require_user(request), path_id(request))
    return no_content()

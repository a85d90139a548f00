"""Routes: OAuth2 as PeerTube speaks it — the local client, token grants and revocation.

Also the input bases the user and session routes share: :class:`TextBody` and
:class:`TextQuery` refuse text a database cannot store (NUL characters, lone UTF-16
surrogates), so such input answers 400 naming the field instead of 500.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ConfigDict, Field, field_validator

from ..auth import local_client
from ..errors import BadRequest
from ..services import sessions
from ..services.video_fields import storable_text
from ..web.context import SESSION_TOKEN, shoal_of
from ..web.responses import json_response
from ..web.validation import Body, Query
from . import api
from .registry import BODY


def _storable(value: Any) -> Any:
    return storable_text(value) if isinstance(value, str) else value


class TextBody(Body):
    """A request body whose text fields a database can store."""

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        return _storable(value)


class TextQuery(Query):
    """A query string whose text parameters a database can store."""

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        return _storable(value)


def calling_token(request: web.Request) -> str | None:
    """The secret that authenticated this request: the bearer token or the session cookie."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.get(SESSION_TOKEN)


class TokenForm(TextBody):
    """RFC 6749 token request; field names are snake_case, as OAuth2 and PeerTube send them."""

    model_config = ConfigDict(alias_generator=None)

    client_id: str = Field(max_length=200)
    client_secret: str = Field(max_length=200)
    # Checked by the handler (400 unsupported_grant_type, as RFC 6749 §5.2 says); the enum tells
    # clients and the API fuzz test which values mean something.
    grant_type: str = Field(max_length=100, json_schema_extra={"enum": ["password", "refresh_token"]})
    username: str | None = Field(None, max_length=320)
    password: str | None = Field(None, max_length=1000)
    refresh_token: str | None = Field(None, max_length=200)
    # Sent by PeerTube's own clients; accepted and ignored.
    response_type: str | None = Field(None, max_length=100)
    scope: str | None = Field(None, max_length=200)


@api.route(
    "GET",
    "/api/v1/oauth-clients/local",
    summary="The instance's OAuth client credentials",
    auth="none",
    tags=("oauth",),
    allow_pending_password=True,
)
async def get_local_client(request: web.Request) -> web.Response:
    """PeerTube's ``{client_id, client_secret}``: public by design, every client uses them."""
    client = await local_client(shoal_of(request))
    return json_response({"client_id": client.client_id, "client_secret": client.client_secret})


@api.route(
    "POST",
    "/api/v1/users/token",
    summary="Get an access token (password or refresh_token grant)",
    auth="none",
    body=TokenForm,
    form=True,
    rate="login",
    tags=("oauth",),
    allow_pending_password=True,
)
async def post_token(request: web.Request) -> web.Response:
    """``grant_type=password`` takes ``username`` (or the e-mail) and ``password``;
    ``grant_type=refresh_token`` takes ``refresh_token`` and rotates the pair (the old one dies).
    Errors: 400 ``invalid_client``, ``invalid_grant``, ``user_blocked``, ``registration_pending``,
    ``unsupported_grant_type``."""
    body: TokenForm = request[BODY]  # type: ignore[assignment]
    shoal = shoal_of(request)
    client = {"client_id": body.client_id, "client_secret": body.client_secret}
    if body.grant_type == "password":
        if body.username is None or body.password is None:
            missing = "username" if body.username is None else "password"
            raise BadRequest(f"The password grant needs '{missing}'.", code="invalid_request", field=missing)
        issued = await sessions.grant_password(
            shoal, **client, username=body.username, password=body.password
        )
    elif body.grant_type == "refresh_token":
        if body.refresh_token is None:
            raise BadRequest(
                "The refresh_token grant needs 'refresh_token'.",
                code="invalid_request",
                field="refresh_token",
            )
        issued = await sessions.grant_refresh(shoal, **client, refresh_token=body.refresh_token)
    else:
        raise BadRequest(
            "grant_type must be 'password' or 'refresh_token'.",
            code="unsupported_grant_type",
            field="grant_type",
        )
    # RFC 6749 §5.1: token responses must not be cached.
    return json_response(issued.to_json(), headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@api.route(
    "POST",
    "/api/v1/users/revoke-token",
    summary="Revoke the calling access token",
    auth="user",
    tags=("oauth",),
    allow_pending_password=True,
)
async def post_revoke_token(request: web.Request) -> web.Response:
    """Revokes the token pair (or web session) that authenticated this request; answers ``{}``."""
    token = calling_token(request)
    if token:
        await sessions.revoke_token(shoal_of(request), token)
    return json_response({})

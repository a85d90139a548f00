"""Logging in: OAuth2 token grants for API clients and cookie sessions for the web UI.

Both go through :func:`authenticate`, which checks the password before saying anything
about the account (blocked, pending), so a wrong guess learns nothing about a name.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from urllib.parse import urlsplit

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from .. import auth
from ..core import Shoal
from ..errors import BadRequest, Forbidden
from ..models import User, UserState

log = logging.getLogger("shoal.sessions")

MAX_NEXT = 2000


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against when the name is unknown, so both cases take as long."""
    return auth.hash_password(secrets.token_hex(16))


async def find_login(session: AsyncSession, login: str) -> User | None:
    """The user whose name or e-mail is ``login`` (both case-insensitive, as PeerTube does)."""
    lowered = login.strip().lower()
    return await session.scalar(
        select(User)
        .where(or_(func.lower(User.username) == lowered, func.lower(User.email) == lowered))
        .order_by(User.id)
        .limit(1)
    )


async def authenticate(shoal: Shoal, login: str, password: str) -> User:
    """The user these credentials belong to, or a 400 saying why they may not log in.

    ``invalid_grant`` for unknown names and wrong passwords alike; ``user_blocked`` and
    ``registration_pending`` only once the password is right.
    """
    async with shoal.db.read() as session:
        user = await find_login(session, login) if login else None
    stored = user.password_hash if user is not None else await asyncio.to_thread(_dummy_hash)
    ok = await asyncio.to_thread(auth.verify_password, stored, password or "")
    if user is None or not ok:
        raise BadRequest("Invalid grant: user credentials are invalid.", code="invalid_grant")
    if user.blocked:
        raise BadRequest("This account is blocked.", code="user_blocked")
    if user.state == UserState.PENDING:
        raise BadRequest("This registration waits for a moderator's approval.", code="registration_pending")
    return user


async def _reload(session: AsyncSession, user: User) -> User:
    """``user`` in this transaction; it may have been deleted since the password check."""
    fresh = await session.get(User, user.id)
    if fresh is None:
        raise BadRequest("Invalid grant: user credentials are invalid.", code="invalid_grant")
    return fresh


async def check_client(shoal: Shoal, client_id: str, client_secret: str) -> None:
    """Refuse anything but the instance's own OAuth client (400 ``invalid_client``)."""
    client = await auth.local_client(shoal)
    if not auth.client_matches(client, client_id, client_secret):
        raise BadRequest("Invalid client: client is invalid.", code="invalid_client", field="client_id")


async def grant_password(
    shoal: Shoal, *, client_id: str, client_secret: str, username: str, password: str
) -> auth.IssuedToken:
    """OAuth2 password grant (RFC 6749 §4.3): a new access/refresh token pair."""
    await check_client(shoal, client_id, client_secret)
    user = await authenticate(shoal, username, password)
    async with shoal.db.write() as session:
        issued = await auth.issue_token(shoal, session, await _reload(session, user))
    return issued


async def grant_refresh(
    shoal: Shoal, *, client_id: str, client_secret: str, refresh_token: str
) -> auth.IssuedToken:
    """OAuth2 refresh grant (RFC 6749 §6) with rotation: the old pair dies with the new one's birth."""
    await check_client(shoal, client_id, client_secret)
    async with shoal.db.write() as session:
        result = await auth.refresh(shoal, session, refresh_token)
        if result is None:
            raise BadRequest("Invalid grant: refresh token is invalid.", code="invalid_grant")
        user, issued = result
        if user.blocked or user.state != UserState.ACTIVE:
            # Raising rolls the rotation back; the token is useless to a blocked user anyway.
            raise BadRequest("Invalid grant: refresh token is invalid.", code="invalid_grant")
    return issued


async def revoke_token(shoal: Shoal, token: str) -> None:
    """Revoke the token pair (or web session) an access token belongs to."""
    async with shoal.db.write() as session:
        await auth.revoke(session, token)


async def web_login(shoal: Shoal, *, username: str, password: str, previous: str | None = None) -> str:
    """Open a web session (a ``web`` token whose access part lives as long as a refresh token).

    ``previous`` is the session cookie the browser still held; it is revoked so that a
    browser has one live session at a time.
    """
    user = await authenticate(shoal, username, password)
    async with shoal.db.write() as session:
        if previous:
            await auth.revoke(session, previous)
        issued = await auth.issue_token(shoal, session, await _reload(session, user), kind="web")
    log.info("web login of %s", user.username)
    return issued.access_token


async def web_logout(shoal: Shoal, session_token: str | None) -> None:
    """Close a web session (nothing to do without one)."""
    if session_token:
        await revoke_token(shoal, session_token)


def check_origin(shoal: Shoal, origin: str | None) -> None:
    """Refuse a request whose ``Origin`` header names another site (login CSRF)."""
    if origin is None:
        return
    if origin.rstrip("/").lower() != shoal.settings.public_url.lower():
        raise Forbidden("Cross-origin request refused.", code="csrf_failed")


def safe_next(value: str | None) -> str:
    """The local path to go to after login: ``value`` if it is one, else ``/`` (no open redirect)."""
    if not value or len(value) > MAX_NEXT or not value.startswith("/"):
        return "/"
    if value.startswith("//") or "\\" in value or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def session_csrf_token(shoal: Shoal, session_token: str) -> str:
    """The CSRF token a cookie session must send with every state-changing request."""
    return auth.csrf_token(shoal.secret, session_token)

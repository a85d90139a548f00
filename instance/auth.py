"""Passwords (argon2id), API tokens (OAuth2 password grant, PeerTube's shape) and web sessions.

Only SHA-256 digests of tokens are stored, so a database leak yields no usable token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .core import Shoal
from .models import AuthToken, OAuthClient, User, utcnow

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _hasher.hash(as_bytes(password))


def as_bytes(text: str) -> bytes:
    """UTF-8 bytes of any text a client can send, lone surrogates included (never raises).

    Secrets are compared and hashed as bytes: ``hmac.compare_digest`` refuses non-ASCII
    text with a TypeError, and ``str.encode()`` a lone surrogate with a UnicodeEncodeError.
    """
    return text.encode("utf-8", "surrogatepass")


def same_secret(expected: str, candidate: str | None) -> bool:
    """Constant-time comparison of a secret with what a client sent, whatever its characters."""
    return hmac.compare_digest(as_bytes(expected), as_bytes(candidate or ""))


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches; never raises on a malformed hash or odd text."""
    try:
        return _hasher.verify(password_hash, as_bytes(password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def digest(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(as_bytes(token)).hexdigest()


def new_token() -> str:
    """A fresh random token (40 hex characters, like PeerTube's)."""
    return secrets.token_hex(20)


@dataclass(frozen=True)
class IssuedToken:
    """What the token endpoint answers (the secrets exist only here)."""

    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int

    def to_json(self) -> dict[str, object]:
        return {
            "token_type": "Bearer",
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_in": self.expires_in,
            "refresh_token_expires_in": self.refresh_expires_in,
        }


async def local_client(shoal: Shoal) -> OAuthClient:
    """The instance's one OAuth client, created on first use."""
    async with shoal.db.read() as session:
        client = await session.scalar(select(OAuthClient).limit(1))
    if client is not None:
        return client
    async with shoal.db.write() as session:
        client = await session.scalar(select(OAuthClient).limit(1))
        if client is None:
            client = OAuthClient(client_id=secrets.token_hex(16), client_secret=secrets.token_hex(16))
            session.add(client)
    return client


def client_matches(client: OAuthClient, client_id: str, client_secret: str) -> bool:
    """Constant-time check of the client credentials."""
    return same_secret(client.client_id, client_id) and same_secret(client.client_secret, client_secret)


async def issue_token(shoal: Shoal, session: AsyncSession, user: User, *, kind: str = "api") -> IssuedToken:
    """Create an access/refresh token pair (or a web session when ``kind`` is ``web``)."""
    settings = shoal.settings
    now = utcnow()
    access, refresh = new_token(), new_token()
    access_ttl = settings.refresh_token_ttl if kind == "web" else settings.access_token_ttl
    session.add(
        AuthToken(
            user_id=user.id,
            kind=kind,
            access_digest=digest(access),
            refresh_digest=digest(refresh),
            access_expires_at=now + timedelta(seconds=access_ttl),
            refresh_expires_at=now + timedelta(seconds=settings.refresh_token_ttl),
        )
    )
    user.last_login_at = now
    return IssuedToken(access, refresh, access_ttl, settings.refresh_token_ttl)


async def user_for_access_token(session: AsyncSession, token: str, *, kind: str | None = None) -> User | None:
    """The user a valid, unexpired, unrevoked access token belongs to."""
    query = (
        select(User)
        .join(AuthToken, AuthToken.user_id == User.id)
        .where(
            AuthToken.access_digest == digest(token),
            AuthToken.revoked_at.is_(None),
            AuthToken.access_expires_at > utcnow(),
        )
    )
    if kind is not None:
        query = query.where(AuthToken.kind == kind)
    return await session.scalar(query)


async def refresh(shoal: Shoal, session: AsyncSession, refresh_token: str) -> tuple[User, IssuedToken] | None:
    """Trade a valid refresh token for a new pair; the old pair is revoked (rotation)."""
    row = await session.scalar(
        select(AuthToken)
        .where(
            AuthToken.refresh_digest == digest(refresh_token),
            AuthToken.revoked_at.is_(None),
            AuthToken.kind == "api",
        )
        .with_for_update()
    )
    if row is None or row.refresh_expires_at is None or row.refresh_expires_at <= utcnow():
        return None
    user = await session.get(User, row.user_id)
    if user is None:
        return None
    row.revoked_at = utcnow()
    return user, await issue_token(shoal, session, user)


async def revoke(session: AsyncSession, access_token: str) -> bool:
    """Revoke the token pair an access token belongs to."""
    result = await session.execute(
        update(AuthToken)
        .where(AuthToken.access_digest == digest(access_token), AuthToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return bool(result.rowcount)


async def revoke_all(session: AsyncSession, user_id: int, *, except_digest: str | None = None) -> None:
    """Revoke every token of a user (password change, block, delete)."""
    query = update(AuthToken).where(AuthToken.user_id == user_id, AuthToken.revoked_at.is_(None))
    if except_digest is not None:
        query = query.where(AuthToken.access_digest != except_digest)
    await session.execute(query.values(revoked_at=utcnow()))


def csrf_token(secret: bytes, session_token: str) -> str:
    """The CSRF token bound to a web session (HMAC of the session secret)."""
    return hmac.new(secret, b"csrf:" + as_bytes(session_token), hashlib.sha256).hexdigest()


def check_csrf(secret: bytes, session_token: str, candidate: str) -> bool:
    return same_secret(csrf_token(secret, session_token), candidate)


def expired(at: datetime | None) -> bool:
    return at is not None and at <= utcnow()

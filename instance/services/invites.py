"""Invitations: an admin creates an account with a one-time temporary password.

The invited user can log in with it, but every API call except reading and changing
their own profile answers 403 ``password_change_required`` until they pick a password
(``must_change_password``; the route registry enforces it).
"""

from __future__ import annotations

import logging
import re
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..core import Shoal
from ..errors import Conflict
from ..models import Role, User
from .actors import RESERVED_NAMES, check_username, name_taken
from .users import check_email, create_user, default_channel_name, email_taken, unique_write

log = logging.getLogger("shoal.invites")

TEMPORARY_PASSWORD_BYTES = 12  # 16 URL-safe characters
_NOT_NAME = re.compile(r"[^a-z0-9_.]+")


def temporary_password() -> str:
    """A random one-time password."""
    return secrets.token_urlsafe(TEMPORARY_PASSWORD_BYTES)


def name_from_email(email: str) -> str:
    """A user name made from the local part of ``email`` (``Jane.Doe+x@…`` → ``jane.doe_x``)."""
    local = email.split("@", 1)[0].lower()
    name = _NOT_NAME.sub("_", local).strip("_.")[:40]
    return name or "user"


async def _free(session: AsyncSession, name: str) -> bool:
    if name in RESERVED_NAMES:
        return False
    if await session.scalar(select(User.id).where(User.username == name)):
        return False
    return not (await name_taken(session, name) or await name_taken(session, default_channel_name(name)))


async def _pick_name(session: AsyncSession, base: str) -> str:
    """``base``, or ``base2``, ``base3``… whichever is free with its default channel name."""
    for suffix in ["", *map(str, range(2, 1000))]:
        candidate = f"{base}{suffix}"
        if await _free(session, candidate):
            return candidate
    return f"{base[:30]}{secrets.token_hex(4)}"


async def invite_user(
    shoal: Shoal, *, email: str, username: str | None = None, role: Role = Role.USER
) -> tuple[User, str]:
    """Create an active user who must change the returned temporary password at first login.

    Without ``username`` one is derived from the e-mail address (made unique); a given
    ``username`` that is taken answers 409. The password is shown once and stored hashed.
    """
    email = check_email(email)
    if username is not None:
        check_username(username)
    password = temporary_password()
    async with unique_write(shoal) as session:
        if await email_taken(session, email):
            raise Conflict("This e-mail address is already registered.", code="email_taken", field="email")
        name = username or await _pick_name(session, name_from_email(email))
        user = await create_user(
            shoal,
            session,
            username=name,
            email=email,
            password=password,
            role=role,
            must_change_password=True,
        )
    log.info("invited %s <%s> as %s", user.username, user.email, Role(user.role).label)
    return user, password

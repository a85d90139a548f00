"""Registrations: signing up under the instance's mode, and a moderator's answer to a pending one.

``open`` makes an active user; ``approval`` a ``pending`` one who cannot log in until a moderator
accepts (a refusal deletes the user, its account and channels); ``closed`` refuses.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..core import Shoal
from ..errors import Forbidden, NotFound
from ..models import User, UserState
from .account_deletion import close_leftovers, delete_account, purge_leftovers
from .options import get_options
from .users import UserDetails, create_user, details_of, page_of_users, unique_write

log = logging.getLogger("shoal.users")


async def register_user(
    shoal: Shoal,
    *,
    username: str,
    email: str,
    password: str,
    display_name: str | None = None,
    channel_name: str | None = None,
    channel_display_name: str | None = None,
    registration_reason: str | None = None,
) -> UserDetails:
    """Sign up under the instance's registration mode (database option over settings).

    ``open``: an active user; ``approval``: a ``pending`` user who cannot log in until a
    moderator accepts; ``closed``: 403 ``registration_closed`` and nothing is stored.
    """
    mode = (await get_options(shoal))["registration"]
    if mode == "closed":
        raise Forbidden("Registration is closed on this instance.", code="registration_closed")
    state = UserState.PENDING if mode == "approval" else UserState.ACTIVE
    async with unique_write(shoal) as session:
        user = await create_user(
            shoal,
            session,
            username=username,
            email=email,
            password=password,
            display_name=display_name,
            channel_name=channel_name,
            channel_display_name=channel_display_name,
            state=state,
            registration_reason=registration_reason,
        )
        details = (await details_of(session, [user]))[0]
    log.info("registration of %s (%s)", user.username, state)
    return details


async def list_registrations(
    shoal: Shoal, *, start: int = 0, count: int = 15, sort: str = "-createdAt", search: str | None = None
) -> tuple[int, list[UserDetails]]:
    """A page of sign-ups waiting for a moderator."""
    query = select(User).where(User.state == UserState.PENDING)
    async with shoal.db.read() as session:
        return await page_of_users(session, query, start=start, count=count, sort=sort, search=search)


async def _pending(session: AsyncSession, user_id: int) -> User:
    user = await session.scalar(select(User).where(User.id == user_id, User.state == UserState.PENDING))
    if user is None:
        raise NotFound(f"No pending registration with id {user_id}.", code="registration_not_found")
    return user


async def accept_registration(shoal: Shoal, by: User, user_id: int) -> None:
    """Activate a pending user: from now on they can log in."""
    async with shoal.db.write() as session:
        user = await _pending(session, user_id)
        user.state = UserState.ACTIVE
    log.info("registration of %s accepted by %s", user.username, by.username)


async def reject_registration(shoal: Shoal, by: User, user_id: int) -> None:
    """Refuse a pending user: the user, its account and channels are deleted (names free again)."""
    async with shoal.db.write() as session:
        user = await _pending(session, user_id)
        leftovers = await delete_account(session, user)
        await close_leftovers(shoal, leftovers)
    await purge_leftovers(shoal, leftovers)
    log.info("registration of %s rejected by %s", user.username, by.username)

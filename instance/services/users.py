"""Users: creation with their account and default channel, profiles, lists and moderation.

A user owns one account actor (a Person) and that account owns the channels (Groups).
Deleting one is :mod:`.account_deletion`; signing up and its approval, :mod:`.registrations`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from ..auth import digest, hash_password, revoke_all, verify_password
from ..core import Shoal
from ..errors import BadRequest, Conflict, Forbidden, NotFound
from ..models import Actor, ActorKind, Role, User, UserState
from .actors import check_channel_name, check_username, generate_keys, name_taken, new_local_actor
from .channels import add_channel
from .files import holder_changed
from .videos import ActorStats, actor_stats

log = logging.getLogger("shoal.users")

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
MIN_PASSWORD = 6
MAX_PASSWORD = 255
NSFW_POLICIES = ("display", "blur", "do_not_list")
MAX_QUOTA = 2**53

UserSort = Literal[
    "id", "-id", "username", "-username", "email", "-email", "role", "-role",
    "createdAt", "-createdAt", "lastLoginDate", "-lastLoginDate",
]  # fmt: skip
_SORT_COLUMNS = {
    "id": User.id,
    "username": User.username,
    "email": User.email,
    "role": User.role,
    "createdAt": User.created_at,
    "lastLoginDate": User.last_login_at,
}


def check_password(password: str, *, field: str = "password") -> str:
    """A password of 6 to 255 characters (PeerTube's bounds)."""
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise BadRequest(
            f"A password has {MIN_PASSWORD} to {MAX_PASSWORD} characters.",
            code="invalid_password",
            field=field,
        )
    return password


def check_email(email: str, *, field: str = "email") -> str:
    """A plausible e-mail address (one '@', no spaces, at most 320 characters)."""
    if not isinstance(email, str) or len(email) > 320 or not EMAIL_RE.match(email):
        raise BadRequest("Give a valid e-mail address.", code="invalid_email", field=field)
    return email.strip()


def default_channel_name(username: str) -> str:
    """PeerTube names the default channel ``<username>_channel``."""
    return f"{username}_channel"


@asynccontextmanager
async def unique_write(shoal: Shoal) -> AsyncIterator[AsyncSession]:
    """A write transaction where a lost race on a unique name or e-mail answers 409, not 500.

    The services check names before inserting; on PostgreSQL two concurrent requests can
    both pass that check, and the unique constraint then decides.
    """
    try:
        async with shoal.db.write() as session:
            yield session
    except IntegrityError as exc:
        text = str(exc.orig).lower()
        if "email" in text:
            raise Conflict(
                "This e-mail address is already registered.", code="email_taken", field="email"
            ) from None
        if "username" in text:
            raise Conflict(
                "This name is already taken on this instance.", code="username_taken", field="username"
            ) from None
        raise Conflict("This change conflicts with another one; try again.") from None


async def email_taken(session: AsyncSession, email: str, *, except_user: int | None = None) -> bool:
    """True when another user already registered ``email`` (case-insensitive)."""
    query = select(User.id).where(func.lower(User.email) == email.lower())
    if except_user is not None:
        query = query.where(User.id != except_user)
    return await session.scalar(query.limit(1)) is not None


async def create_user(
    shoal: Shoal,
    session: AsyncSession,
    *,
    username: str,
    email: str,
    password: str,
    role: Role = Role.USER,
    display_name: str | None = None,
    channel_name: str | None = None,
    channel_display_name: str | None = None,
    must_change_password: bool = False,
    state: UserState = UserState.ACTIVE,
    video_quota: int | None = None,
    registration_reason: str | None = None,
    channel_field: str = "channel.name",
) -> User:
    """Create a user, its account (Person) and its first channel (Group) in one transaction.

    Every check happens before anything is written, so a refusal stores nothing; a
    taken name answers 409 naming the field the client sent (``channel_field`` for the
    channel, whose name differs between sign-up and the admin API).
    """
    check_username(username)
    email = check_email(email)
    check_password(password)
    channel_name = channel_name or default_channel_name(username)
    check_channel_name(channel_name, field=channel_field)
    if channel_name.lower() == username.lower():
        raise BadRequest(
            "The channel name must differ from the user name.",
            code="invalid_channel_name",
            field=channel_field,
        )
    if await email_taken(session, email):
        raise Conflict("This e-mail address is already registered.", code="email_taken", field="email")
    if await session.scalar(select(User.id).where(User.username == username)) or await name_taken(
        session, username
    ):
        raise Conflict(f"The name '{username}' is already taken.", code="username_taken", field="username")
    if await name_taken(session, channel_name):
        raise Conflict(
            f"The name '{channel_name}' is already taken on this instance.",
            code="name_taken",
            field=channel_field,
        )
    account_keys, channel_keys, password_hash = await asyncio.gather(
        generate_keys(), generate_keys(), asyncio.to_thread(hash_password, password)
    )
    account = await new_local_actor(
        shoal,
        session,
        kind=ActorKind.PERSON,
        name=username,
        display_name=display_name or username,
        keys=account_keys,
    )
    user = User(
        account_id=account.id,
        username=username,
        email=email,
        password_hash=password_hash,
        role=int(role),
        state=state,
        must_change_password=must_change_password,
        video_quota=shoal.settings.user_video_quota if video_quota is None else video_quota,
        registration_reason=registration_reason,
    )
    session.add(user)
    await add_channel(
        shoal,
        session,
        account,
        name=channel_name,
        display_name=channel_display_name or f"Main {username} channel",
        keys=channel_keys,
    )
    await session.flush()
    user.account = account
    return user


async def admin_exists(shoal: Shoal) -> bool:
    """True when the instance has at least one administrator."""
    async with shoal.db.read() as session:
        return await session.scalar(select(User.id).where(User.role == Role.ADMIN).limit(1)) is not None


async def ensure_admin(shoal: Shoal) -> None:
    """Create the admin from ``SHOAL_ADMIN_USER``/``SHOAL_ADMIN_PASSWORD`` if missing, or say how to."""
    settings = shoal.settings
    if settings.admin_password is None:
        if not await admin_exists(shoal):
            log.warning(
                "no admin yet: create one with `shoal user create --admin NAME` "
                "(or set SHOAL_ADMIN_PASSWORD and restart)"
            )
        return
    async with shoal.db.write() as session:
        if await session.scalar(select(User.id).where(User.username == settings.admin_user)):
            return
        await create_user(
            shoal,
            session,
            username=settings.admin_user,
            email=settings.admin_email,
            password=settings.admin_password.get_secret_value(),
            role=Role.ADMIN,
        )
    log.info("created admin %s", settings.admin_user)


# Reading users ---------------------------------------------------------------


@dataclass
class UserDetails:
    """A user with what its API representation shows: account, channels and their counts."""

    user: User
    account: Actor
    channels: list[Actor] = field(default_factory=list)
    stats: ActorStats = field(default_factory=ActorStats)


async def details_of(session: AsyncSession, users: Sequence[User]) -> list[UserDetails]:
    """Load channels (with their owner) and follow counts of ``users`` (accounts already joined)."""
    if not users:
        return []
    account_ids = [u.account_id for u in users]
    channels = list(
        await session.scalars(
            select(Actor)
            .options(joinedload(Actor.owner))
            .where(Actor.owner_id.in_(account_ids), Actor.kind == ActorKind.GROUP)
            .order_by(Actor.id)
        )
    )
    stats = await actor_stats(session, [u.account for u in users] + channels)
    by_owner: dict[int, list[Actor]] = {}
    for channel in channels:
        by_owner.setdefault(channel.owner_id or 0, []).append(channel)
    return [UserDetails(u, u.account, by_owner.get(u.account_id, []), stats) for u in users]


def _with_account(query: Select) -> Select:
    return query.options(joinedload(User.account))


async def load_user(session: AsyncSession, user_id: int) -> User:
    """The user ``user_id`` with its account; 404 ``user_not_found`` when there is none."""
    user = await session.scalar(_with_account(select(User).where(User.id == user_id)))
    if user is None:
        raise NotFound(f"No user with id {user_id}.", code="user_not_found")
    return user


async def user_details(shoal: Shoal, user_id: int) -> UserDetails:
    """One user with account, channels and counts; 404 when there is none."""
    async with shoal.db.read() as session:
        user = await load_user(session, user_id)
        return (await details_of(session, [user]))[0]


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


async def page_of_users(
    session: AsyncSession,
    query: Select,
    *,
    start: int,
    count: int,
    sort: str,
    search: str | None,
) -> tuple[int, list[UserDetails]]:
    """One page of the users ``query`` selects, matching ``search``, with their details."""
    if search:
        pattern = _like(search)
        query = query.where(
            or_(
                func.lower(User.username).like(pattern, escape="\\"),
                func.lower(User.email).like(pattern, escape="\\"),
            )
        )
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    column = _SORT_COLUMNS[sort.lstrip("-")]
    order = column.desc() if sort.startswith("-") else column.asc()
    users = list(
        await session.scalars(_with_account(query).order_by(order, User.id.asc()).offset(start).limit(count))
    )
    return total, await details_of(session, users)


async def list_users(
    shoal: Shoal,
    *,
    start: int = 0,
    count: int = 15,
    sort: str = "-createdAt",
    search: str | None = None,
    blocked: bool | None = None,
) -> tuple[int, list[UserDetails]]:
    """A page of users (active and pending), matching ``search`` in the name or e-mail."""
    query = select(User)
    if blocked is not None:
        query = query.where(User.blocked.is_(blocked))
    async with shoal.db.read() as session:
        return await page_of_users(session, query, start=start, count=count, sort=sort, search=search)


# Changing users --------------------------------------------------------------


async def check_current_password(user: User, password: str | None, *, field: str) -> None:
    """400 ``invalid_password`` naming ``field`` unless ``password`` is the user's."""
    if not password or not await asyncio.to_thread(verify_password, user.password_hash, password):
        raise BadRequest("The current password is wrong.", code="invalid_password", field=field)


async def _set_email(session: AsyncSession, user: User, email: str) -> None:
    email = check_email(email)
    if await email_taken(session, email, except_user=user.id):
        raise Conflict("This e-mail address is already registered.", code="email_taken", field="email")
    user.email = email


async def update_me(
    shoal: Shoal,
    user_id: int,
    *,
    calling_token: str | None,
    display_name: str | None = None,
    description: str | None = None,
    nsfw_policy: str | None = None,
    email: str | None = None,
    current_password: str | None = None,
    password: str | None = None,
) -> None:
    """Change one's own profile; e-mail and password changes need the current password.

    A password change clears ``must_change_password`` and revokes every other token and
    session of the user (the calling one stays valid). ``None`` leaves a value unchanged.
    """
    if password is not None:
        check_password(password)
    if nsfw_policy is not None and nsfw_policy not in NSFW_POLICIES:
        raise BadRequest("Unknown NSFW policy.", code="invalid_field", field="nsfwPolicy")
    async with unique_write(shoal) as session:
        user = await load_user(session, user_id)
        if password is not None or email is not None:
            await check_current_password(user, current_password, field="currentPassword")
        if password is not None:
            if user.must_change_password and password == current_password:
                raise BadRequest(
                    "Choose a password different from the temporary one.",
                    code="password_unchanged",
                    field="password",
                )
            user.password_hash = await asyncio.to_thread(hash_password, password)
            user.must_change_password = False
            keep = digest(calling_token) if calling_token else None
            await revoke_all(session, user.id, except_digest=keep)
        if email is not None:
            await _set_email(session, user, email)
        if nsfw_policy is not None:
            user.nsfw_policy = nsfw_policy
        if display_name is not None:
            user.account.display_name = display_name
        if description is not None:
            user.account.summary = description


def check_can_moderate(by: User, target: User) -> None:
    """An admin may act on anyone but themselves; a moderator only on plain users."""
    if by.id == target.id:
        raise Forbidden("You cannot do this to your own account.", code="cannot_moderate_self")
    if by.is_at_least(Role.ADMIN):
        return
    if by.is_at_least(Role.MODERATOR) and target.role == Role.USER:
        return
    raise Forbidden("Moderators may only act on users with the User role.", code="insufficient_role")


async def other_admins(session: AsyncSession, user_id: int) -> int:
    """How many active, unblocked admins there are besides ``user_id``."""
    return (
        await session.scalar(
            select(func.count()).where(
                User.role == Role.ADMIN,
                User.id != user_id,
                User.blocked.is_(False),
                User.state == UserState.ACTIVE,
            )
        )
        or 0
    )


async def admin_create_user(
    shoal: Shoal,
    *,
    username: str,
    email: str,
    password: str,
    role: Role = Role.USER,
    video_quota: int | None = None,
    channel_name: str | None = None,
) -> User:
    """Create an active user from the admin API (``channelName`` names the first channel)."""
    async with unique_write(shoal) as session:
        return await create_user(
            shoal,
            session,
            username=username,
            email=email,
            password=password,
            role=role,
            video_quota=video_quota,
            channel_name=channel_name,
            channel_field="channelName",
        )


async def update_user(
    shoal: Shoal,
    by: User,
    user_id: int,
    *,
    email: str | None = None,
    role: Role | None = None,
    video_quota: int | None = None,
    password: str | None = None,
) -> None:
    """An admin changes a user; a new password revokes that user's tokens. ``None`` = unchanged."""
    if password is not None:
        check_password(password)
    async with unique_write(shoal) as session:
        user = await load_user(session, user_id)
        if role is not None and role != user.role:
            if user.id == by.id:
                raise Forbidden("You cannot change your own role.", code="cannot_moderate_self")
            user.role = int(role)
        if email is not None:
            await _set_email(session, user, email)
        if video_quota is not None:
            user.video_quota = video_quota
        if password is not None:
            user.password_hash = await asyncio.to_thread(hash_password, password)
            await revoke_all(session, user.id)
    await holder_changed(shoal, user_id)


async def set_blocked(
    shoal: Shoal, by: User, user_id: int, *, blocked: bool, reason: str | None = None
) -> None:
    """Block (revoking every token and session) or unblock a user, within ``by``'s powers."""
    async with shoal.db.write() as session:
        user = await load_user(session, user_id)
        check_can_moderate(by, user)
        user.blocked = blocked
        user.blocked_reason = reason if blocked else None
        if blocked:
            await revoke_all(session, user.id)
    await holder_changed(shoal, user_id)
    log.info("user %s %s by %s", user.username, "blocked" if blocked else "unblocked", by.username)



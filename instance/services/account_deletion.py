"""Deleting a user: by an admin, by themselves, or a refused registration.

Deleting the account actor removes, through the foreign keys' ``ON DELETE CASCADE``, the
user row, its tokens, its channels and their videos: every deletion goes through
:func:`delete_account`, and the videos' files leave storage once it has committed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..core import Shoal
from ..errors import Conflict, Forbidden
from ..models import Actor, Rendition, Role, User, Video
from .files import access_changed, holder_changed
from .public_links import drop_public_link
from .users import check_current_password, load_user, other_admins
from .videos import StoredFiles, purge_files, stored_files

log = logging.getLogger("shoal.users")


@dataclass
class Leftovers:
    """What a deleted account's videos kept in storage, removed once the deletion is committed."""

    video_uuids: list[str] = field(default_factory=list)
    files: list[StoredFiles] = field(default_factory=list)


async def delete_account(session: AsyncSession, user: User) -> Leftovers:
    """Delete a user's account actor; the foreign keys cascade to the user, tokens, channels, videos.

    Returns the storage files of the deleted videos: pass them to :func:`purge_leftovers`
    after the transaction commits.
    """
    channel_ids = select(Actor.id).where(Actor.owner_id == user.account_id)
    videos = list(await session.scalars(select(Video).where(Video.channel_id.in_(channel_ids))))
    by_video: dict[int, list[Rendition]] = {}
    if videos:
        renditions = await session.scalars(
            select(Rendition).where(Rendition.video_id.in_([video.id for video in videos]))
        )
        for rendition in renditions:
            by_video.setdefault(rendition.video_id, []).append(rendition)
    await session.execute(
        delete(Actor).where(Actor.id == user.account_id).execution_options(synchronize_session=False)
    )
    return Leftovers(
        [video.uuid for video in videos], [stored_files(v, by_video.get(v.id, [])) for v in videos]
    )


async def close_leftovers(shoal: Shoal, leftovers: Leftovers) -> None:
    """Take the deleted videos' public links away before the deletion commits (see
    :func:`instance.services.public_links.drop_public_link`)."""
    for video_uuid in leftovers.video_uuids:
        await drop_public_link(shoal, video_uuid)


async def purge_leftovers(shoal: Shoal, leftovers: Leftovers) -> None:
    """Remove a deleted account's video files from storage (failures are logged)."""
    for video_uuid in leftovers.video_uuids:
        await access_changed(shoal, video_uuid)
    await purge_files(shoal, leftovers.files)


async def delete_user(shoal: Shoal, by: User, user_id: int) -> None:
    """An admin deletes another user and everything the user owns."""
    async with shoal.db.write() as session:
        user = await load_user(session, user_id)
        if user.id == by.id:
            raise Forbidden(
                "Delete your own account with DELETE /api/v1/users/me.", code="cannot_moderate_self"
            )
        leftovers = await delete_account(session, user)
        await close_leftovers(shoal, leftovers)
    await holder_changed(shoal, user_id)
    await purge_leftovers(shoal, leftovers)
    log.info("user %s (id %s) deleted by %s", user.username, user.id, by.username)


async def delete_me(shoal: Shoal, user_id: int, password: str) -> None:
    """Delete one's own account after checking the password; the last admin cannot leave."""
    async with shoal.db.write() as session:
        user = await load_user(session, user_id)
        await check_current_password(user, password, field="password")
        if user.role == Role.ADMIN and not await other_admins(session, user.id):
            raise Conflict("You are the last administrator; name another one first.", code="last_admin")
        leftovers = await delete_account(session, user)
        await close_leftovers(shoal, leftovers)
    await holder_changed(shoal, user_id)
    await purge_leftovers(shoal, leftovers)
    log.info("user %s (id %s) deleted their account", user.username, user.id)

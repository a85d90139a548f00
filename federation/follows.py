"""Follows on the wire: Follow → Accept / Reject, Undo Follow, for channels, accounts and instances.

:func:`follow` stores a pending :class:`Follow` and sends Follow to the target; the target's
Accept (:mod:`federation.follow_handlers`, with every incoming follow activity) makes it
accepted. :func:`unfollow` deletes it and sends Undo. :data:`REMOTE` answers the core's
``remote_actors`` port.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from instance.models import Actor, Follow, FollowState
from instance.services.subscriptions import RemoteActors

from .actors import CONTEXT, resolve_actor
from .delivery import deliver
from .errors import FetchError, Invalid
from .instance_actor import application_actor

if TYPE_CHECKING:
    from instance.core import Shoal

log = logging.getLogger("shoal.federation.follows")


def follow_activity(follow_id: str, follower: Actor, target: Actor) -> dict[str, Any]:
    """A Follow activity."""
    return {
        "@context": CONTEXT,
        "id": follow_id,
        "type": "Follow",
        "actor": follower.ap_id,
        "object": target.ap_id,
        "to": [target.ap_id],
    }


async def follow(shoal: Shoal, follower: Actor, target: Actor) -> Follow:
    """``follower`` (local) follows ``target``: accepted at once when local, else Follow is sent.

    Idempotent: an existing follow is kept (a pending one is sent again).
    """
    async with shoal.db.write() as session:
        row = await session.scalar(
            select(Follow).where(Follow.follower_id == follower.id, Follow.target_id == target.id)
        )
        if target.is_local:
            if row is None:
                row = Follow(follower_id=follower.id, target_id=target.id, state=FollowState.ACCEPTED)
                session.add(row)
            row.state = FollowState.ACCEPTED
            return row
        if row is not None and row.state == FollowState.ACCEPTED:
            return row
        if row is None:
            row = Follow(
                follower_id=follower.id,
                target_id=target.id,
                state=FollowState.PENDING,
                ap_id=f"{follower.ap_id}/follows/{secrets.token_hex(8)}",
            )
            session.add(row)
            await session.flush()
        assert row.ap_id is not None
        await deliver(
            shoal, session, follow_activity(row.ap_id, follower, target), signer=follower, recipients=[target]
        )
        return row


async def unfollow(shoal: Shoal, follower: Actor, target: Actor) -> bool:
    """Stop following; sends Undo Follow to a remote target. False when there was no follow."""
    async with shoal.db.write() as session:
        row = await session.scalar(
            select(Follow).where(Follow.follower_id == follower.id, Follow.target_id == target.id)
        )
        if row is None:
            return False
        await session.delete(row)
        if not target.is_local:
            follow_id = row.ap_id or f"{follower.ap_id}/follows/{row.id}"
            undo = {
                "@context": CONTEXT,
                "id": follow_id + "/undo",
                "type": "Undo",
                "actor": follower.ap_id,
                "object": {
                    k: v for k, v in follow_activity(follow_id, follower, target).items() if k != "@context"
                },
                "to": [target.ap_id],
            }
            await deliver(shoal, session, undo, signer=follower, recipients=[target])
    return True


# ---------------------------------------------------------------- instance follows


async def follow_instance(shoal: Shoal, host: str) -> Follow:
    """Our Application actor follows ``peertube@host`` (PeerTube's instance follow)."""
    target = await resolve_actor(shoal, f"{PEERTUBE}@{host}")
    if target.is_local:
        raise Invalid(host, "an instance cannot follow itself")
    return await follow(shoal, await application_actor(shoal), target)


async def unfollow_instance(shoal: Shoal, host: str) -> bool:
    """Undo our Application actor's follow of ``host``; False when not following it."""
    me = await application_actor(shoal)
    async with shoal.db.read() as session:
        target = await session.scalar(
            select(Actor)
            .join(Follow, Follow.target_id == Actor.id)
            .where(Follow.follower_id == me.id, func.lower(Actor.host) == host.lower())
        )
        if target is not None:
            session.expunge(target)
    if target is None:
        return False
    return await unfollow(shoal, me, target)


PEERTUBE = "peertube"


async def instance_follows(
    shoal: Shoal, *, direction: str, start: int, count: int, state: str | None = None
) -> tuple[int, list[Follow]]:
    """Follows from (``following``) or to (``followers``) our Application actor, newest first."""
    me = await application_actor(shoal)
    column = Follow.follower_id if direction == "following" else Follow.target_id
    where = [column == me.id]
    if state:
        where.append(Follow.state == state)
    async with shoal.db.read() as session:
        total = await session.scalar(select(func.count(Follow.id)).where(*where))
        rows = list(
            await session.scalars(
                select(Follow)
                .options(joinedload(Follow.follower), joinedload(Follow.target))
                .where(*where)
                .order_by(Follow.created_at.desc(), Follow.id.desc())
                .offset(start)
                .limit(count)
            )
        )
        session.expunge_all()
    return int(total or 0), rows


# ---------------------------------------------------------------- the core's hooks


def _as_api_error(exc: FetchError, what: str) -> Exception:
    from instance.errors import BadRequest, NotFound

    from .errors import Gone, Refused

    if isinstance(exc, Gone):
        return NotFound(f"No {what} at {exc.url[:200]}.", code=f"{what}_not_found")
    if isinstance(exc, Refused):
        return BadRequest(
            f"{exc.url[:200]} is not an address this instance may fetch.", code="remote_refused"
        )
    return BadRequest(f"{exc.url[:200]} could not be fetched: {exc.reason[:200]}", code="remote_unavailable")


async def _resolve(shoal: Shoal, uri: str) -> Actor:
    try:
        return await resolve_actor(shoal, uri)
    except FetchError as exc:
        raise _as_api_error(exc, "channel") from None


async def _follow(shoal: Shoal, follower: Actor, target: Actor) -> None:
    await follow(shoal, follower, target)


async def _follow_instance(shoal: Shoal, host: str) -> None:
    from instance.errors import BadRequest

    try:
        await follow_instance(shoal, host)
    except Invalid as exc:
        if exc.url == host:
            raise BadRequest(exc.reason, code="cannot_follow_self") from None
        raise _as_api_error(exc, "instance") from None
    except FetchError as exc:
        raise _as_api_error(exc, "instance") from None


REMOTE = RemoteActors(
    resolve=_resolve,
    follow=_follow,
    unfollow=unfollow,
    follow_instance=_follow_instance,
    unfollow_instance=unfollow_instance,
    instance_follows=instance_follows,
)

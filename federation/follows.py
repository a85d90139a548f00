"""Follows on the wire: Follow → Accept / Reject, Undo Follow, for channels, accounts and instances.

Outgoing: :func:`follow` stores a pending :class:`Follow` and sends Follow to the target;
the target's Accept makes it accepted and runs the Shoal's follow-accepted hooks (:mod:`.tables`).
:func:`unfollow` deletes it and sends Undo. Incoming: a remote Follow of a local actor
(account, channel, or the Application actor for instance follows) is accepted at once.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import joinedload

from instance.models import Actor, Follow, FollowState
from instance.services.subscriptions import RemoteActors

from .actors import CONTEXT, resolve_actor
from .ap import id_of, is_local_url
from .delivery import deliver, own_inbox
from .errors import FetchError, Invalid
from .instance_actor import application_actor
from .tables import Tables, tables_of

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


# ---------------------------------------------------------------- incoming


async def _local_target(shoal: Shoal, url: str | None) -> Actor | None:
    if not url or not is_local_url(shoal, url):
        return None
    async with shoal.db.read() as session:
        actor = await session.scalar(select(Actor).where(Actor.ap_id == url, Actor.host.is_(None)))
        if actor is not None:
            session.expunge(actor)
        return actor


async def on_follow(shoal: Shoal, activity: dict[str, Any], actor: Actor) -> None:
    """A remote actor follows one of ours: store it accepted and answer Accept."""
    target = await _local_target(shoal, id_of(activity.get("object")))
    if target is None:
        log.info("Follow %s of an unknown local actor ignored", activity.get("id"))
        return
    follow_id = id_of(activity) or f"{actor.ap_id}/follows/{target.id}"
    async with shoal.db.write() as session:
        row = await session.scalar(
            select(Follow).where(Follow.follower_id == actor.id, Follow.target_id == target.id)
        )
        if row is None:
            row = Follow(follower_id=actor.id, target_id=target.id)
            session.add(row)
        other = await session.scalar(select(Follow).where(Follow.ap_id == follow_id, Follow.id != row.id))
        if other is not None:
            other.ap_id = None
            await session.flush()
        row.ap_id = follow_id
        row.state = FollowState.ACCEPTED
        await session.flush()
        accept = {
            "@context": CONTEXT,
            "id": shoal.url(f"/accepts/follows/{row.id}/{secrets.token_hex(4)}"),
            "type": "Accept",
            "actor": target.ap_id,
            "object": {"id": follow_id, "type": "Follow", "actor": actor.ap_id, "object": target.ap_id},
            "to": [actor.ap_id],
        }
        await deliver(shoal, session, accept, signer=target, recipients=[own_inbox(actor)])
    log.info("%s now follows %s", actor.ap_id, target.ap_id)


async def _our_follow(shoal: Shoal, activity: dict[str, Any], actor: Actor) -> tuple[Follow, Actor] | None:
    """The Follow of ours an Accept/Reject answers, checked to target the answering actor."""
    obj = activity.get("object")
    follow_id = id_of(obj)
    async with shoal.db.read() as session:
        row = None
        if follow_id:
            row = await session.scalar(select(Follow).where(Follow.ap_id == follow_id))
        if row is None and isinstance(obj, dict):
            follower = await _local_target(shoal, id_of(obj.get("actor")))
            if follower is not None:
                row = await session.scalar(
                    select(Follow).where(Follow.follower_id == follower.id, Follow.target_id == actor.id)
                )
        if row is None or row.target_id != actor.id:
            return None
        follower = await session.get(Actor, row.follower_id)
        if follower is None or not follower.is_local:
            return None
        session.expunge_all()
        return row, follower


async def on_accept(shoal: Shoal, activity: dict[str, Any], actor: Actor) -> None:
    """Our Follow was accepted: mark it and run the follow-accepted hooks (backfill)."""
    found = await _our_follow(shoal, activity, actor)
    if found is None:
        log.info("Accept %s matches no follow of ours", activity.get("id"))
        return
    row, follower = found
    async with shoal.db.write() as session:
        stored = await session.get(Follow, row.id)
        if stored is None:
            return
        already = stored.state == FollowState.ACCEPTED
        stored.state = FollowState.ACCEPTED
    if already:
        return
    log.info("%s accepted the follow of %s", actor.ap_id, follower.ap_id)
    for hook in tables_of(shoal).on_follow_accepted:
        try:
            await hook(shoal, follower, actor)
        except FetchError as exc:
            log.warning("follow-accepted hook %s failed: %s", getattr(hook, "__name__", hook), exc.reason)


async def on_reject(shoal: Shoal, activity: dict[str, Any], actor: Actor) -> None:
    """Our Follow was refused (or a remote actor removed us as follower): drop it."""
    found = await _our_follow(shoal, activity, actor)
    if found is None:
        return
    async with shoal.db.write() as session:
        await session.execute(delete(Follow).where(Follow.id == found[0].id))
    log.info("%s rejected the follow of %s", actor.ap_id, found[1].ap_id)


async def on_undo_follow(shoal: Shoal, activity: dict[str, Any], actor: Actor) -> None:
    """A remote follower stops following one of ours."""
    obj = activity.get("object")
    follow_id = id_of(obj)
    target = await _local_target(shoal, id_of(obj.get("object")) if isinstance(obj, dict) else None)
    async with shoal.db.write() as session:
        where = [Follow.follower_id == actor.id]
        if target is not None:
            where.append(Follow.target_id == target.id)
        elif follow_id:
            where.append(Follow.ap_id == follow_id)
        else:
            return
        result = await session.execute(delete(Follow).where(*where))
    if result.rowcount:
        log.info("%s unfollowed %s", actor.ap_id, target.ap_id if target else follow_id)


async def on_undo_reference(shoal: Shoal, activity: dict[str, Any], actor: Actor) -> None:
    """An Undo whose object is only a URL: undo the sender's follow with that id, if any."""
    follow_id = id_of(activity.get("object"))
    if follow_id is None:
        return
    async with shoal.db.write() as session:
        result = await session.execute(
            delete(Follow).where(Follow.follower_id == actor.id, Follow.ap_id == follow_id)
        )
    if not result.rowcount:
        log.info("Undo %s of %s matches nothing we know", activity.get("id"), follow_id)


def install_routes(tables: Tables) -> None:
    """Route Follow, Accept, Reject and the Undo of a Follow (embedded, or by URL only) here."""
    tables.route("Follow", on_follow)
    tables.route("Accept", on_accept)
    tables.route("Reject", on_reject)
    tables.route("Undo", on_undo_follow, object_type="Follow")
    tables.route("Undo", on_undo_reference)


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

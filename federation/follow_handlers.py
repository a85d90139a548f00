"""Incoming follow activities: Follow, Accept, Reject, and the Undo of a Follow.

A remote Follow of a local actor (account, channel, or the Application actor for instance
follows) is stored accepted and answered with Accept at once. The Accept of a Follow we sent
makes it accepted and runs the Shoal's follow-accepted hooks (:mod:`.tables`); a Reject or
an Undo removes it. Sending follows is :mod:`federation.follows`.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from instance.models import Actor, Follow, FollowState

from .actors import CONTEXT
from .ap import id_of, is_local_url
from .delivery import deliver, own_inbox
from .errors import FetchError
from .tables import Tables, tables_of

if TYPE_CHECKING:
    from instance.core import Shoal

log = logging.getLogger("shoal.federation.follows")


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

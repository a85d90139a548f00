"""The instance's own actor: the ``Application`` ``/accounts/peertube`` (PeerTube's name for it).

It signs what the instance itself sends (fetches, instance follows, views, reports) and is what
other instances follow to follow the instance. Its own module, imported by the HTTP client
(:mod:`federation.http` signs its GETs with it) and by the actor code alike, with no import
of either.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from instance.errors import Conflict
from instance.models import Actor, ActorKind

if TYPE_CHECKING:
    from instance.core import Shoal

log = logging.getLogger("shoal.federation.actors")

APPLICATION_NAME = "peertube"

async def ensure_application_actor(shoal: Shoal, _app: object = None) -> Actor:
    """Create the instance's Application actor with its keys if missing (a startup hook)."""
    from instance.services.actors import new_local_actor

    existing = await _load_application(shoal)
    if existing is not None:
        return existing
    try:
        async with shoal.db.write() as session:
            await new_local_actor(
                shoal,
                session,
                kind=ActorKind.APPLICATION,
                name=APPLICATION_NAME,
                display_name=shoal.settings.instance_name,
                summary=shoal.settings.instance_description,
            )
    except (IntegrityError, Conflict):
        log.info("another process created the Application actor first")
    actor = await _load_application(shoal)
    if actor is None:
        raise RuntimeError("the Application actor could not be created")
    log.info("Application actor is %s", actor.ap_id)
    return actor


async def _load_application(shoal: Shoal) -> Actor | None:
    async with shoal.db.read() as session:
        actor = await session.scalar(
            select(Actor).where(
                Actor.host.is_(None),
                Actor.kind == ActorKind.APPLICATION,
                Actor.preferred_username == APPLICATION_NAME,
            )
        )
        if actor is not None:
            session.expunge(actor)
    if actor is not None:
        shoal.extras["federation.application"] = actor
    return actor


async def application_actor(shoal: Shoal) -> Actor:
    """The instance's Application actor (``/accounts/peertube``), detached, with its keys."""
    cached = shoal.extras.get("federation.application")
    if cached is not None:
        return cached
    return await ensure_application_actor(shoal)

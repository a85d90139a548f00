"""Delivery: one durable ``deliver`` work row per target inbox (STYLE 8).

:func:`deliver` adds the rows in the caller's transaction (shared inboxes deduplicated,
this instance excluded), with the activity's body stored once, and rings the queue once that
transaction commits. Sending them is :mod:`federation.sender` (batches, signatures, retries
with backoff from a minute up to a day, given up after about four days); pausing and probing
a remote host that keeps failing is :mod:`federation.hosts`. The rows survive any restart.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, event, select
from sqlalchemy.ext.asyncio import AsyncSession

from instance.jobs import add_work, add_work_many
from instance.models import Actor, DeliveryBody, Follow, FollowState, WorkItem, WorkState, utcnow

from .actors import AS_PUBLIC, CONTEXT
from .ap import host_of, is_local_url

if TYPE_CHECKING:
    from instance.core import Shoal

log = logging.getLogger("shoal.federation.delivery")

KIND = "deliver"
BATCH_KIND = "deliver_batch"
MAX_ATTEMPTS = 16  # waits of 1, 2, 4 … 1024 min, then a day each (jittered): 3 to 5 days in all
# A body outlives every retry of its rows (MAX_ATTEMPTS ends within 5 days), then is pruned.
BODY_RETENTION = timedelta(days=7)
PRUNE_EVERY = 3600.0  # seconds between two prunes by one process
BODY_CACHE = 32  # recent bodies a process keeps in memory (a fan-out reads its body per batch)


@dataclass(frozen=True)
class FollowersOf:
    """A recipient marker: every (remote, accepted) follower of a local actor."""

    actor_id: int


def followers_of(actor: Actor) -> FollowersOf:
    """Address the followers of ``actor`` (a local actor) in :func:`deliver`."""
    return FollowersOf(actor.id)


@dataclass(frozen=True)
class OwnInbox:
    """A recipient marker: a remote actor's own inbox, never its shared one."""

    inbox_url: str


def own_inbox(actor: Actor) -> OwnInbox:
    """Address ``actor``'s own inbox in :func:`deliver`. PeerTube applies an Accept or Reject
    of a follow only when it arrives there ("Need to accept on explicit inbox",
    process-accept.ts); sent to its shared inbox the follow stays pending forever."""
    return OwnInbox(actor.inbox_url)


def _inbox(actor: Actor) -> str:
    return actor.shared_inbox_url or actor.inbox_url


async def _follower_inboxes(session: AsyncSession, target_ids: list[int]) -> set[str]:
    if not target_ids:
        return set()
    rows = await session.execute(
        select(Actor.shared_inbox_url, Actor.inbox_url)
        .join(Follow, Follow.follower_id == Actor.id)
        .where(
            Follow.target_id.in_(target_ids),
            Follow.state == FollowState.ACCEPTED,
            Actor.host.is_not(None),
        )
        .distinct()
    )
    return {shared or inbox for shared, inbox in rows}


async def inboxes_for(
    shoal: Shoal, session: AsyncSession, recipients: Iterable[str | Actor | FollowersOf | OwnInbox]
) -> list[str]:
    """The distinct remote inboxes the recipients stand for (shared inboxes preferred)."""
    inboxes: set[str] = set()
    followers: list[int] = []
    urls: list[str] = []
    for recipient in recipients:
        if isinstance(recipient, FollowersOf):
            followers.append(recipient.actor_id)
        elif isinstance(recipient, OwnInbox):
            inboxes.add(recipient.inbox_url)
        elif isinstance(recipient, Actor):
            if not recipient.is_local:
                inboxes.add(_inbox(recipient))
        elif isinstance(recipient, str) and recipient not in (AS_PUBLIC, "as:Public", "Public"):
            urls.append(recipient)
    if urls:
        rows = await session.execute(
            select(
                Actor.id,
                Actor.host,
                Actor.ap_id,
                Actor.followers_url,
                Actor.shared_inbox_url,
                Actor.inbox_url,
            ).where((Actor.ap_id.in_(urls)) | (Actor.followers_url.in_(urls)))
        )
        for actor_id, host, ap_id, followers_url, shared, inbox in rows:
            if ap_id in urls and host is not None:
                inboxes.add(shared or inbox)
            if followers_url in urls and host is None:
                followers.append(actor_id)
    inboxes |= await _follower_inboxes(session, followers)
    return sorted(url for url in inboxes if url and not is_local_url(shoal, url))


async def deliver(
    shoal: Shoal,
    session: AsyncSession,
    activity: dict[str, Any],
    *,
    signer: Actor,
    recipients: Iterable[str | Actor | FollowersOf | OwnInbox],
    skip_hosts: Iterable[str] = (),
) -> list[WorkItem]:
    """Queue ``activity`` for every inbox of ``recipients``, in the caller's transaction.

    ``recipients`` may hold remote :class:`Actor` rows, actor URLs, followers collection
    URLs of local actors, :func:`followers_of` and :func:`own_inbox` markers; inboxes on
    ``skip_hosts`` are left out. The queue is rung after the transaction commits; the rows
    are returned too (ringing twice is harmless).
    """
    if "@context" not in activity:
        activity = {"@context": CONTEXT, **activity}
    inboxes = await inboxes_for(shoal, session, recipients)
    skipped = {host.lower() for host in skip_hosts}
    if skipped:
        inboxes = [inbox for inbox in inboxes if host_of(inbox) not in skipped]
    if not inboxes:
        return []
    # The activity is serialised and stored once; each inbox's row names it.
    activity_id = activity.get("id") if isinstance(activity.get("id"), str) else None
    body = DeliveryBody(
        activity_id=activity_id, body=json.dumps(activity, separators=(",", ":")).encode()
    )
    session.add(body)
    await session.flush()
    about = {"signer": signer.id, "body": body.id, "activity_id": activity_id, "type": activity.get("type")}
    items = await add_work_many(
        shoal,
        session,
        KIND,
        [(inbox, {"inbox": inbox, **about}) for inbox in inboxes],
        max_attempts=MAX_ATTEMPTS,
    )
    if items:
        # A batch job takes them (and any other due delivery); the rows are not rung one by
        # one. Each fan-out has its own batch job: one that is already running may have looked
        # for due rows before these were committed. The sweeper rings any row left behind.
        batch = await add_work(shoal, session, BATCH_KIND, "", max_attempts=3)
        _ring_after_commit(shoal, session, [batch])
    return items


_pending_rings: set[asyncio.Task[None]] = set()


def _ring_after_commit(shoal: Shoal, session: AsyncSession, items: list[WorkItem]) -> None:
    ids = [(item.id, item.attempts) for item in items]

    def rang(_session: Any) -> None:
        if shoal.jobs is None:
            return
        task = asyncio.get_running_loop().create_task(_ring_ids(shoal, ids))
        _pending_rings.add(task)
        task.add_done_callback(_pending_rings.discard)

    event.listen(session.sync_session, "after_commit", rang, once=True)


async def _ring_ids(shoal: Shoal, ids: list[tuple[int, int]]) -> None:
    if shoal.jobs is None:
        return
    for item_id, attempts in ids:
        await shoal.jobs.ring(item_id, attempts=attempts)


async def ring_pending(shoal: Shoal) -> int:
    """Ring every due ``deliver`` row (after a commit whose rows were not kept)."""
    async with shoal.db.read() as session:
        rows = (
            await session.execute(
                select(WorkItem.id, WorkItem.attempts).where(
                    WorkItem.kind == KIND,
                    WorkItem.state == WorkState.PENDING,
                    WorkItem.next_attempt_at <= utcnow(),
                )
            )
        ).all()
    if shoal.jobs is not None:
        for item_id, attempts in rows:
            await shoal.jobs.ring(item_id, attempts=attempts)
    return len(rows)


# ---------------------------------------------------------------- bodies


async def bodies_of(shoal: Shoal, payloads: list[dict[str, Any]]) -> list[bytes | None]:
    """The POST bodies of rows, in order: their fan-out's stored body (None once pruned), or
    the activity a row written before bodies were stored carries itself.

    Bodies never change, so a process keeps the last few it read: the batches of one
    fan-out read its body once.
    """
    cache: collections.OrderedDict[int, bytes] = shoal.extras.setdefault(
        "federation.delivery_bodies", collections.OrderedDict()
    )
    wanted = {p["body"] for p in payloads if "body" in p and p["body"] not in cache}
    found: dict[int, bytes] = {}
    if wanted:
        async with shoal.db.read() as session:
            rows = await session.execute(
                select(DeliveryBody.id, DeliveryBody.body).where(DeliveryBody.id.in_(list(wanted)))
            )
            found = {row_id: bytes(body) for row_id, body in rows}
    for row_id, body in found.items():
        cache[row_id] = body
        while len(cache) > BODY_CACHE:
            cache.popitem(last=False)
    out: list[bytes | None] = []
    for payload in payloads:
        if "body" in payload:
            out.append(cache.get(payload["body"]) or found.get(payload["body"]))
        else:
            out.append(json.dumps(payload["activity"], separators=(",", ":")).encode())
    return out


async def activity_of(shoal: Shoal, payload: dict[str, Any]) -> dict[str, Any] | None:
    """The activity a ``deliver`` row sends (None once its body is pruned)."""
    body = (await bodies_of(shoal, [payload]))[0]
    return None if body is None else json.loads(body)


async def prune_bodies(shoal: Shoal, *, older_than: timedelta = BODY_RETENTION) -> int:
    """Delete bodies older than every retry of their rows; returns how many went."""
    async with shoal.db.write() as session:
        done = await session.execute(
            delete(DeliveryBody).where(DeliveryBody.created_at < utcnow() - older_than)
        )
    return done.rowcount or 0


async def prune_now_and_then(shoal: Shoal) -> None:
    """:func:`prune_bodies`, at most once per :data:`PRUNE_EVERY` seconds in this Shoal."""
    now = asyncio.get_running_loop().time()
    last = shoal.extras.get("federation.bodies_pruned_at")
    if last is not None and now - last < PRUNE_EVERY:
        return
    shoal.extras["federation.bodies_pruned_at"] = now
    pruned = await prune_bodies(shoal)
    if pruned:
        log.info("pruned %d delivery bodies older than %s", pruned, BODY_RETENTION)

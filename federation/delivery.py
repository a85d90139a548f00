"""Delivery: one durable ``deliver`` work row per target inbox (STYLE 8).

:func:`deliver` adds the rows in the caller's transaction (shared inboxes deduplicated,
this instance excluded) and rings the queue once that transaction commits. The
``deliver`` job POSTs the signed activity; failures are retried with exponential backoff
from a minute up to a day, and given up after about four days. A remote host that keeps
failing is paused (:class:`RemoteHost`), and at most :data:`PER_HOST` deliveries run at
once per host and process. The rows survive any restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from instance.jobs import PermanentFailure, TryAgainLater, add_work, register_job, ring_item
from instance.models import Actor, Follow, FollowState, RemoteHost, WorkItem, WorkState, utcnow

from .actors import AS_PUBLIC, CONTEXT, is_local_url
from .errors import FetchError, Refused
from .http import post_signed
from .signatures import key_id_of

if TYPE_CHECKING:
    from instance.core import Shoal

log = logging.getLogger("shoal.federation.delivery")

KIND = "deliver"
PER_HOST = 8
MAX_ATTEMPTS = 16  # waits of 1, 2, 4 … 1024 min, then a day each (jittered): 3 to 5 days in all
PAUSE_AFTER = 3  # consecutive failures before a host is paused
MAX_PAUSE = timedelta(days=1)

_host_slots: dict[str, asyncio.Semaphore] = {}
_troubled: set[str] = set()


@dataclass(frozen=True)
class FollowersOf:
    """A recipient marker: every (remote, accepted) follower of a local actor."""

    actor_id: int


def followers_of(actor: Actor) -> FollowersOf:
    """Address the followers of ``actor`` (a local actor) in :func:`deliver`."""
    return FollowersOf(actor.id)


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
    shoal: Shoal, session: AsyncSession, recipients: Iterable[str | Actor | FollowersOf]
) -> list[str]:
    """The distinct remote inboxes the recipients stand for (shared inboxes preferred)."""
    inboxes: set[str] = set()
    followers: list[int] = []
    urls: list[str] = []
    for recipient in recipients:
        if isinstance(recipient, FollowersOf):
            followers.append(recipient.actor_id)
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
    recipients: Iterable[str | Actor | FollowersOf],
) -> list[WorkItem]:
    """Queue ``activity`` for every inbox of ``recipients``, in the caller's transaction.

    ``recipients`` may hold remote :class:`Actor` rows, actor URLs, followers collection
    URLs of local actors, and :func:`followers_of` markers. The queue is rung after the
    transaction commits; the rows are returned too (ringing twice is harmless).
    """
    if "@context" not in activity:
        activity = {"@context": CONTEXT, **activity}
    items = []
    for inbox in await inboxes_for(shoal, session, recipients):
        items.append(
            await add_work(
                session,
                KIND,
                inbox,
                payload={"inbox": inbox, "signer": signer.id, "activity": activity},
                max_attempts=MAX_ATTEMPTS,
            )
        )
    if items:
        _ring_after_commit(shoal, session, items)
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


async def ring_items(shoal: Shoal, items: Iterable[WorkItem]) -> None:
    """Ring the queue for rows :func:`deliver` returned (after the commit)."""
    for item in items:
        await ring_item(shoal, item)


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


# ---------------------------------------------------------------- the job


async def _host_state(shoal: Shoal, host: str) -> RemoteHost | None:
    async with shoal.db.read() as session:
        row = await session.get(RemoteHost, host)
        if row is not None:
            session.expunge(row)
        return row


async def _record_failure(shoal: Shoal, host: str, error: str) -> None:
    _troubled.add(host)
    async with shoal.db.write() as session:
        row = await session.get(RemoteHost, host)
        if row is None:
            row = RemoteHost(host=host, failures=0)
            session.add(row)
        row.failures = (row.failures or 0) + 1
        row.last_error = error[:2000]
        if row.failures >= PAUSE_AFTER:
            pause = min(timedelta(minutes=2 ** (row.failures - PAUSE_AFTER)), MAX_PAUSE)
            row.paused_until = utcnow() + pause


async def _record_success(shoal: Shoal, host: str) -> None:
    if host not in _troubled:
        return
    async with shoal.db.write() as session:
        await session.execute(
            update(RemoteHost)
            .where(RemoteHost.host == host)
            .values(failures=0, paused_until=None, last_success_at=utcnow(), last_error=None)
        )
    _troubled.discard(host)


async def resume_host(shoal: Shoal, host: str) -> None:
    """Lift the pause of a host and make its waiting deliveries due now (admin, tests)."""
    async with shoal.db.write() as session:
        await session.execute(
            update(RemoteHost).where(RemoteHost.host == host).values(paused_until=None, failures=0)
        )
        rows = (
            await session.execute(
                select(WorkItem).where(WorkItem.kind == KIND, WorkItem.state == WorkState.PENDING)
            )
        ).scalars()
        due = [row for row in rows if urlsplit(row.subject).netloc.lower() == host.lower()]
        for row in due:
            row.next_attempt_at = utcnow()
    _troubled.add(host)
    if shoal.jobs is not None:
        for row in due:
            # The backed-off attempt already has a deferred doorbell under the name of its
            # attempt count (arq keeps one job per name); an early ring needs another name.
            # The claim still decides, so the later doorbell finds nothing left to do.
            await shoal.jobs.ring(row.id, attempts=-row.attempts - 1)


async def _signer(shoal: Shoal, actor_id: int) -> Actor:
    cache: dict[int, Actor] = shoal.extras.setdefault("federation.signers", {})
    actor = cache.get(actor_id)
    if actor is None:
        async with shoal.db.read() as session:
            actor = await session.get(Actor, actor_id)
            if actor is None or not actor.private_key_pem:
                raise PermanentFailure(f"signer {actor_id} is gone or has no private key")
            session.expunge(actor)
        cache[actor_id] = actor
    return actor


async def handle_deliver(shoal: Shoal, item: WorkItem) -> None:
    """POST one activity to one inbox, signed by its sender; retry or give up by the answer."""
    inbox = item.payload["inbox"]
    host = urlsplit(inbox).netloc.lower()
    state = await _host_state(shoal, host)
    now = utcnow()
    if state is not None and state.failures:
        _troubled.add(host)
    if state is not None and state.paused_until is not None and state.paused_until > now:
        raise TryAgainLater(f"{host} is paused after {state.failures} failures", state.paused_until - now)
    signer = await _signer(shoal, item.payload["signer"])
    body = json.dumps(item.payload["activity"], separators=(",", ":")).encode()
    slot = _host_slots.setdefault(host, asyncio.Semaphore(PER_HOST))
    async with slot:
        try:
            status, headers, text = await post_signed(
                shoal, inbox, body, key_id=key_id_of(signer.ap_id), private_pem=signer.private_key_pem or ""
            )
        except Refused as exc:
            raise PermanentFailure(exc.reason) from None
        except FetchError as exc:
            await _record_failure(shoal, host, exc.reason)
            raise TryAgainLater(f"{inbox}: {exc.reason}") from None
    if 200 <= status < 300:
        await _record_success(shoal, host)
        return
    reason = f"{inbox} answered {status}: {text[:200]}"
    if status == 429:
        retry = headers.get("Retry-After", "")
        raise TryAgainLater(reason, float(retry) if retry.isdigit() else None)
    if status >= 500 or status == 408:
        await _record_failure(shoal, host, reason)
        raise TryAgainLater(reason)
    # Any other 4xx is the remote refusing this activity: retrying would not change it.
    raise PermanentFailure(reason)


register_job(
    KIND,
    handle_deliver,
    max_attempts=MAX_ATTEMPTS,
    lease=timedelta(minutes=2),
    backoff_base=timedelta(minutes=1),
    backoff_cap=timedelta(days=1),
)

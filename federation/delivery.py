"""Delivery: one durable ``deliver`` work row per target inbox (STYLE 8).

:func:`deliver` adds the rows in the caller's transaction (shared inboxes deduplicated,
this instance excluded) and rings the queue once that transaction commits. One
``deliver_batch`` job POSTs the signed activities of every due row, in batches claimed in
one statement and settled in one transaction; the ``deliver`` job sends a single row when
the sweeper, a retry or an admin rings it. Failures are retried with exponential backoff
from a minute up to a day, and given up after about four days. A remote host that keeps
failing is paused (:class:`RemoteHost`) for as long as it has been failing, up to a day;
one delivery a minute probes it, and once one gets through its backlog goes at once. At
most :data:`PER_HOST` deliveries run at once per host and process. The rows survive any
restart.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import delete, event, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from instance.jobs import (
    PermanentFailure,
    TryAgainLater,
    add_work,
    add_work_many,
    claim_due,
    settle_claimed,
)
from instance.models import (
    Actor,
    DeliveryBody,
    Follow,
    FollowState,
    RemoteHost,
    WorkItem,
    WorkState,
    utcnow,
)

from .actors import AS_PUBLIC, CONTEXT
from .ap import is_local_url
from .errors import FetchError, Refused
from .http import post_signed
from .signatures import body_digest, key_id_of, sign_posts

if TYPE_CHECKING:
    from instance.core import Shoal

log = logging.getLogger("shoal.federation.delivery")

KIND = "deliver"
BATCH_KIND = "deliver_batch"
BATCH_SIZE = 100  # rows one batch claims (and settles) in one transaction each
BATCH_LEASE = timedelta(minutes=10)
IN_FLIGHT = 96  # POSTs open at once, all hosts and batches together
BATCHES_SENDING = 3  # batches whose POSTs may run at once (a new one starts as the last ends)
PER_HOST = 8
MAX_ATTEMPTS = 16  # waits of 1, 2, 4 … 1024 min, then a day each (jittered): 3 to 5 days in all
PAUSE_AFTER = 3  # rounds with failures, in a row, before a host is paused
ROUND = timedelta(minutes=1)  # failures this close together count once; one probe per round
MAX_PAUSE = timedelta(days=1)
# A body outlives every retry of its rows (MAX_ATTEMPTS ends within 5 days), then is pruned.
BODY_RETENTION = timedelta(days=7)
PRUNE_EVERY = 3600.0  # seconds between two prunes by one process
BODY_CACHE = 32  # recent bodies a process keeps in memory (a fan-out reads its body per batch)

_host_slots: dict[str, asyncio.Semaphore] = {}
_troubled: set[str] = set()
_probed: dict[str, datetime] = {}


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
        inboxes = [inbox for inbox in inboxes if urlsplit(inbox).netloc.lower() not in skipped]
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


# ---------------------------------------------------------------- the job


async def _host_state(shoal: Shoal, host: str) -> RemoteHost | None:
    async with shoal.db.read() as session:
        row = await session.get(RemoteHost, host)
        if row is not None:
            session.expunge(row)
        return row


def pause_for(downtime: timedelta) -> timedelta:
    """How long a failing host rests: as long as it has been failing, from :data:`ROUND` to
    :data:`MAX_PAUSE`. A probe (:func:`probe_paused_hosts`) ends it early once it answers."""
    return min(max(downtime, ROUND), MAX_PAUSE)


async def _record_failure(shoal: Shoal, host: str, error: str, *, now: datetime | None = None) -> None:
    """One failed POST to ``host``. Failures within one :data:`ROUND` count once (a batch fails
    all its rows to a down host at once): the count, and so the pause, follow the downtime."""
    _troubled.add(host)
    now = now or utcnow()
    async with shoal.db.write() as session:
        row = await session.get(RemoteHost, host)
        if row is None:
            row = RemoteHost(host=host, failures=0)
            session.add(row)
        row.last_error = error[:2000]
        if row.failing_since is None:
            row.failing_since = now
        if row.failed_at is not None and now - row.failed_at < ROUND:
            return
        row.failed_at = now
        row.failures = (row.failures or 0) + 1
        if row.failures >= PAUSE_AFTER:
            row.paused_until = now + pause_for(now - row.failing_since)


async def _record_success(shoal: Shoal, host: str) -> None:
    if host not in _troubled:
        return
    async with shoal.db.write() as session:
        was_paused = await session.scalar(
            select(RemoteHost.paused_until).where(
                RemoteHost.host == host, RemoteHost.paused_until.is_not(None)
            )
        )
        await session.execute(
            update(RemoteHost)
            .where(RemoteHost.host == host)
            .values(failures=0, paused_until=None, failing_since=None, failed_at=None,
                    last_success_at=utcnow(), last_error=None)  # fmt: skip
        )
    _troubled.discard(host)
    if was_paused is not None:
        # The host is back (a probe got through): its backlog goes now, not at each row's
        # own backed-off time, which may be hours away.
        log.info("%s answers again: its waiting deliveries go now", host)
        await resume_host(shoal, host)


def _of_host(host: str) -> Any:
    return WorkItem.subject.like(f"http://{host}/%") | WorkItem.subject.like(f"https://{host}/%")


async def resume_host(shoal: Shoal, host: str) -> None:
    """Lift the pause of a host and make its waiting deliveries due now (a probe got through,
    an admin, tests)."""
    host = host.lower()
    async with shoal.db.write() as session:
        await session.execute(
            update(RemoteHost)
            .where(RemoteHost.host == host)
            .values(paused_until=None, failures=0, failing_since=None, failed_at=None)
        )
        rows = (
            await session.execute(
                select(WorkItem).where(
                    WorkItem.kind == KIND, WorkItem.state == WorkState.PENDING, _of_host(host)
                )
            )
        ).scalars()
        due = [row for row in rows if urlsplit(row.subject).netloc.lower() == host]
        for row in due:
            row.next_attempt_at = utcnow()
    _troubled.add(host)
    await _ring_early(shoal, due)


async def _ring_early(shoal: Shoal, rows: list[WorkItem]) -> None:
    if shoal.jobs is None:
        return
    for row in rows:
        # The backed-off attempt already has a deferred doorbell under the name of its
        # attempt count (arq keeps one job per name); an early ring needs another name.
        # The claim still decides, so the later doorbell finds nothing left to do.
        await shoal.jobs.ring(row.id, attempts=-row.attempts - 1)


async def probe_paused_hosts(shoal: Shoal) -> int:
    """Every :data:`ROUND`, one waiting delivery per paused host is made due: it goes out as a
    probe (:func:`attempt` lets one through per host and round), and when it gets through the
    host's whole backlog follows (:func:`_record_success`). A host that came back is served
    again within about a round, however long its pause. Returns how many probes were rung."""
    now = utcnow()
    async with shoal.db.write() as session:
        hosts = list(await session.scalars(select(RemoteHost.host).where(RemoteHost.paused_until > now)))
        probes = []
        for host in hosts:
            row = await session.scalar(
                select(WorkItem)
                .where(WorkItem.kind == KIND, WorkItem.state == WorkState.PENDING, _of_host(host))
                .order_by(WorkItem.next_attempt_at, WorkItem.id)
                .limit(1)
            )
            if row is not None and row.next_attempt_at > now:
                row.next_attempt_at = now
                probes.append(row)
    await _ring_early(shoal, probes)
    return len(probes)


def _may_probe(host: str, now: datetime) -> bool:
    """One delivery per paused host and :data:`ROUND` goes out anyway, in this process."""
    last = _probed.get(host)
    if last is not None and now - last < ROUND:
        return False
    _probed[host] = now
    return True


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


async def _prune_now_and_then(shoal: Shoal) -> None:
    now = asyncio.get_running_loop().time()
    last = shoal.extras.get("federation.bodies_pruned_at")
    if last is not None and now - last < PRUNE_EVERY:
        return
    shoal.extras["federation.bodies_pruned_at"] = now
    pruned = await prune_bodies(shoal)
    if pruned:
        log.info("pruned %d delivery bodies older than %s", pruned, BODY_RETENTION)


_BODY_GONE = "the activity's stored body is gone (pruned after its retention)"


async def _send(
    shoal: Shoal,
    item: WorkItem,
    state: RemoteHost | None,
    body: bytes | None,
    in_flight: asyncio.Semaphore,
    signed: dict[str, str] | None,
) -> Exception | None:
    """One row of a batch: None when delivered, else the exception that decides its fate."""
    if body is None:
        return PermanentFailure(_BODY_GONE)
    try:
        await attempt(shoal, item.payload, state, body, in_flight, signed)
    except (TryAgainLater, PermanentFailure) as exc:
        return exc
    except Exception as exc:  # a bug must not lose the batch's other outcomes
        log.warning("delivery %d raised an unexpected error", item.id, exc_info=True)
        return exc
    return None


async def attempt(
    shoal: Shoal,
    payload: dict[str, Any],
    state: RemoteHost | None,
    body: bytes,
    gate: asyncio.Semaphore | None = None,
    signed: dict[str, str] | None = None,
) -> None:
    """POST one activity to one inbox, signed by its sender; raises :class:`TryAgainLater` or
    :class:`PermanentFailure` by the answer (or the host's pause). ``gate``: a limit shared
    with other hosts, taken once this host's slot is held (so a busy host holds none)."""
    inbox = payload["inbox"]
    host = urlsplit(inbox).netloc.lower()
    now = utcnow()
    if state is not None and state.failures:
        _troubled.add(host)
    if state is not None and state.paused_until is not None and state.paused_until > now:
        if not _may_probe(host, now):
            raise TryAgainLater(f"{host} is paused after {state.failures} failures", state.paused_until - now)
    signer = await _signer(shoal, payload["signer"])
    slot = _host_slots.setdefault(host, asyncio.Semaphore(PER_HOST))
    async with slot, gate or contextlib.nullcontext():
        try:
            status, headers, text = await post_signed(
                shoal,
                inbox,
                body,
                key_id=key_id_of(signer.ap_id),
                private_pem=signer.private_key_pem or "",
                signed=signed,
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


async def handle_deliver(shoal: Shoal, item: WorkItem) -> None:
    """Job ``deliver``: one row, alone (rung by the sweeper, a retry, or an admin)."""
    host = urlsplit(item.payload["inbox"]).netloc.lower()
    body = (await bodies_of(shoal, [item.payload]))[0]
    if body is None:
        raise PermanentFailure(_BODY_GONE)
    await attempt(shoal, item.payload, await _host_state(shoal, host), body)


async def _host_states(shoal: Shoal, hosts: set[str]) -> dict[str, RemoteHost]:
    async with shoal.db.read() as session:
        rows = list(await session.scalars(select(RemoteHost).where(RemoteHost.host.in_(list(hosts)))))
        session.expunge_all()
    return {row.host: row for row in rows}


@dataclass
class _Batch:
    """Claimed rows, ready to send: bodies, signature headers and their hosts' states."""

    items: list[WorkItem]
    bodies: list[bytes | None]
    signed: list[dict[str, str] | None]
    states: dict[str, RemoteHost]


async def _prepare(shoal: Shoal, worker_id: str) -> _Batch | None:
    """Claim the next batch and sign it; None when nothing is due."""
    items = await claim_due(shoal, KIND, worker_id, limit=BATCH_SIZE, lease=BATCH_LEASE)
    if not items:
        return None
    states = await _host_states(shoal, {urlsplit(item.subject).netloc.lower() for item in items})
    bodies = await bodies_of(shoal, [item.payload for item in items])
    return _Batch(items, bodies, await _sign_batch(shoal, items, bodies), states)


async def deliver_due(shoal: Shoal, worker_id: str) -> int:
    """Send every due delivery, :data:`BATCH_SIZE` rows at a time; returns how many were tried.

    Each batch is claimed in one statement and signed at once (in the signing process), its
    POSTs run concurrently (:data:`IN_FLIGHT` in all, :data:`PER_HOST` per host) and its
    outcomes are written in one transaction: a few writes per batch instead of two per row.
    The next batch is claimed and signed while the current one is sent, and starts sending
    as soon as it is ready (up to :data:`BATCHES_SENDING` batches at once, within the same
    :data:`IN_FLIGHT`), so a batch's slowest POSTs do not leave the connections idle.
    """
    done = 0
    in_flight = asyncio.Semaphore(IN_FLIGHT)
    upcoming = asyncio.create_task(_prepare(shoal, worker_id))
    sending: set[asyncio.Task[int]] = set()
    try:
        while True:
            batch = await upcoming
            if batch is None:
                break
            sending.add(asyncio.create_task(_send_batch(shoal, worker_id, batch, in_flight)))
            if len(sending) >= BATCHES_SENDING:
                finished, sending = await asyncio.wait(sending, return_when=asyncio.FIRST_COMPLETED)
                done += sum(task.result() for task in finished)
            upcoming = asyncio.create_task(_prepare(shoal, worker_id))
        if sending:
            done += sum(await asyncio.gather(*sending))
            sending = set()
        await _prune_now_and_then(shoal)
        return done
    finally:
        # Stopping mid-way: claimed rows not settled go back when their lease ends.
        for task in (upcoming, *sending):
            if not task.done():
                task.cancel()
        await asyncio.gather(upcoming, *sending, return_exceptions=True)


async def _send_batch(shoal: Shoal, worker_id: str, batch: _Batch, in_flight: asyncio.Semaphore) -> int:
    """POST a prepared batch and settle its outcomes in one transaction; how many rows it held."""
    results = await asyncio.gather(
        *(
            _send(
                shoal,
                item,
                batch.states.get(urlsplit(item.subject).netloc.lower()),
                body,
                in_flight,
                headers,
            )
            for item, body, headers in zip(batch.items, batch.bodies, batch.signed, strict=True)
        )
    )
    outcomes = list(zip(batch.items, results, strict=True))
    await settle_claimed(
        shoal,
        worker_id,
        succeeded=[item for item, exc in outcomes if exc is None],
        retry=[
            (item, describe(exc), exc.delay if isinstance(exc, TryAgainLater) else None)
            for item, exc in outcomes
            if exc is not None and not isinstance(exc, PermanentFailure)
        ],
        failed=[(item, describe(exc)) for item, exc in outcomes if isinstance(exc, PermanentFailure)],
        queue=shoal.jobs,
    )
    return len(batch.items)


async def _sign_batch(
    shoal: Shoal, items: list[WorkItem], bodies: list[bytes | None]
) -> list[dict[str, str] | None]:
    """Signature headers of a batch's POSTs, signer by signer, at once (None: signed at send)."""
    signed: list[dict[str, str] | None] = [None] * len(items)
    digests: dict[int, str] = {}
    by_signer: dict[int, list[int]] = {}
    for index, item in enumerate(items):
        if bodies[index] is not None:
            by_signer.setdefault(item.payload["signer"], []).append(index)
    for signer_id, indexes in by_signer.items():
        try:
            signer = await _signer(shoal, signer_id)
        except PermanentFailure:
            continue  # each of these rows fails alone, with the reason
        posts = []
        for index in indexes:
            body = bodies[index]
            assert body is not None
            digest = digests.get(id(body)) or digests.setdefault(id(body), body_digest(body))
            posts.append((items[index].payload["inbox"], digest))
        headers = await sign_posts(key_id_of(signer.ap_id), signer.private_key_pem or "", posts)
        for index, header in zip(indexes, headers, strict=True):
            signed[index] = header
    return signed


def describe(exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or str(exc)
    return f"{type(exc).__name__}: {reason}"


async def handle_deliver_batch(shoal: Shoal, item: WorkItem) -> None:
    """Job ``deliver_batch``: :func:`deliver_due` under this job's worker id."""
    sent = await deliver_due(shoal, item.locked_by or "deliver-batch")
    log.debug("delivery batch %d tried %d deliveries", item.id, sent)


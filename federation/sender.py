"""Sending deliveries: batches claimed at once, signed at once, POSTed concurrently and
settled in one transaction; a single row when the sweeper, a retry or an admin rings it.

The ``deliver_batch`` job POSTs the signed activities of every due ``deliver`` row
(:func:`deliver_due`); the ``deliver`` job sends one (:func:`handle_deliver`). The answer
decides: 2xx delivered, 429/5xx/408 or no answer retried with the kind's backoff, any other
4xx refused for good. At most :data:`PER_HOST` deliveries run at once per host and process;
a paused host (:mod:`federation.hosts`) gets one probe per round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from instance.jobs import PermanentFailure, TryAgainLater, claim_due, settle_claimed
from instance.models import Actor, RemoteHost, WorkItem, utcnow

from .ap import host_of
from .delivery import KIND, bodies_of, prune_now_and_then
from .errors import FetchError, Refused
from .hosts import (
    host_state,
    host_states,
    may_probe,
    memory,
    record_failure,
    record_success,
    seen_failing,
)
from .http import post_signed
from .signatures import body_digest, key_id_of, sign_posts

if TYPE_CHECKING:
    from instance.core import Shoal

log = logging.getLogger("shoal.federation.delivery")

BATCH_SIZE = 100  # rows one batch claims (and settles) in one transaction each
BATCH_LEASE = timedelta(minutes=10)
IN_FLIGHT = 96  # POSTs open at once, all hosts and batches together
BATCHES_SENDING = 3  # batches whose POSTs may run at once (a new one starts as the last ends)
PER_HOST = 8


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
    host = host_of(inbox)
    now = utcnow()
    if state is not None and state.failures:
        seen_failing(shoal, host)
    if state is not None and state.paused_until is not None and state.paused_until > now:
        if not may_probe(shoal, host, now):
            raise TryAgainLater(f"{host} is paused after {state.failures} failures", state.paused_until - now)
    signer = await _signer(shoal, payload["signer"])
    slot = memory(shoal).slots.setdefault(host, asyncio.Semaphore(PER_HOST))
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
            await record_failure(shoal, host, exc.reason)
            raise TryAgainLater(f"{inbox}: {exc.reason}") from None
    if 200 <= status < 300:
        await record_success(shoal, host)
        return
    reason = f"{inbox} answered {status}: {text[:200]}"
    if status == 429:
        retry = headers.get("Retry-After", "")
        raise TryAgainLater(reason, float(retry) if retry.isdigit() else None)
    if status >= 500 or status == 408:
        await record_failure(shoal, host, reason)
        raise TryAgainLater(reason)
    # Any other 4xx is the remote refusing this activity: retrying would not change it.
    raise PermanentFailure(reason)


async def handle_deliver(shoal: Shoal, item: WorkItem) -> None:
    """Job ``deliver``: one row, alone (rung by the sweeper, a retry, or an admin)."""
    host = host_of(item.payload["inbox"])
    body = (await bodies_of(shoal, [item.payload]))[0]
    if body is None:
        raise PermanentFailure(_BODY_GONE)
    await attempt(shoal, item.payload, await host_state(shoal, host), body)


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
    states = await host_states(shoal, {host_of(item.subject) for item in items})
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
        await prune_now_and_then(shoal)
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
                batch.states.get(host_of(item.subject)),
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

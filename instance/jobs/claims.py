"""Claims: taking rows atomically, the fence on every later write, and finding rows to ring.

A claim is one conditional ``UPDATE … RETURNING`` (:func:`_claim`) that only succeeds on a
due pending row or a running row whose lease expired, so two workers never hold the same
row. Every later write is fenced on the claim (:func:`_held`: state running, ``locked_by``
and ``attempts`` unchanged): a worker that lost its lease cannot overwrite the outcome of
the worker that took the row over.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Collection
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from ..models import WorkItem, WorkState, utcnow
from .kinds import JobKind
from .rows import MAX_ERROR_LENGTH

if TYPE_CHECKING:
    from datetime import datetime

    from ..core import Shoal
    from .queue import JobQueue

log = logging.getLogger("shoal.jobs")

SWEEP_BATCH = 500


def _claimable(row: Any, now: datetime) -> ColumnElement[bool]:
    """Due pending rows and running rows whose lease expired, with attempts left."""
    return and_(
        row.attempts < row.max_attempts,
        or_(
            and_(row.state == WorkState.PENDING, row.next_attempt_at <= now),
            and_(row.state == WorkState.RUNNING, row.locked_until < now),
        ),
    )


def _held(worker_id: str, items: Collection[WorkItem]) -> ColumnElement[bool]:
    """The fence: ``items`` are still running under the claims ``worker_id`` made on them
    (same worker, same attempt). A row taken over since then no longer matches."""
    by_attempt: dict[int, list[int]] = {}
    for item in items:
        by_attempt.setdefault(item.attempts, []).append(item.id)
    return and_(
        WorkItem.state == WorkState.RUNNING,
        WorkItem.locked_by == worker_id,
        or_(*(and_(WorkItem.attempts == tries, WorkItem.id.in_(ids)) for tries, ids in by_attempt.items())),
    )


async def _claim(
    shoal: Shoal,
    worker_id: str,
    lease: timedelta,
    which: Callable[[Any], ColumnElement[bool]],
    *,
    limit: int | None = None,
) -> list[WorkItem]:
    """The claim: one ``UPDATE … WHERE <claimable> AND which(row) … RETURNING`` that sets the
    rows running, counts the attempt and leases them until now + ``lease`` (with ``limit``:
    that many at most, the most overdue first).

    On PostgreSQL the rows are picked ``FOR UPDATE SKIP LOCKED``, so a losing worker returns
    at once instead of waiting for the winner's commit.
    """
    now = utcnow()
    candidate = aliased(WorkItem)
    pick = select(candidate.id).where(which(candidate), _claimable(candidate, now))
    if limit is not None:
        pick = pick.order_by(candidate.next_attempt_at, candidate.id).limit(limit)
    stmt = (
        update(WorkItem)
        .where(WorkItem.id.in_(pick.with_for_update(skip_locked=True)))
        .values(
            state=WorkState.RUNNING,
            attempts=WorkItem.attempts + 1,
            locked_until=now + lease,
            locked_by=worker_id,
            state_changed_at=now,
        )
        .returning(WorkItem)
        .execution_options(synchronize_session=False)
    )
    async with shoal.db.write() as session:
        items = list((await session.execute(stmt)).scalars())
        session.expunge_all()
    return items


async def claim_work(
    shoal: Shoal, item_id: int, worker_id: str, *, lease: timedelta | None = None
) -> WorkItem | None:
    """Take row ``item_id`` for ``worker_id`` if it is claimable; None if someone else has it.

    The claim (:func:`_claim`) leases it for ``lease``, the kind's lease by default.
    """
    if lease is None:
        async with shoal.db.read() as session:
            kind = await session.scalar(select(WorkItem.kind).where(WorkItem.id == item_id))
        if kind is None:
            return None
        lease = shoal.ext.jobs.kind(kind).lease
    items = await _claim(shoal, worker_id, lease, lambda row: row.id == item_id)
    return items[0] if items else None


async def claim_due(
    shoal: Shoal, kind: str, worker_id: str, *, limit: int, lease: timedelta
) -> list[WorkItem]:
    """Take up to ``limit`` claimable rows of ``kind`` at once, the most overdue first.

    For kinds whose rows are many and cheap (deliveries): the same claim as
    :func:`claim_work`, on many rows. The caller settles every row with :func:`settle_claimed`.
    """
    return await _claim(shoal, worker_id, lease, lambda row: row.kind == kind, limit=limit)


async def fenced_update(shoal: Shoal, item: WorkItem, worker_id: str, **values: Any) -> bool:
    """Update a row we claimed, only if the claim still holds; False when it was lost."""
    stmt = (
        update(WorkItem)
        .where(_held(worker_id, [item]))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    async with shoal.db.write() as session:
        result = await session.execute(stmt)
    return result.rowcount == 1


async def settle_claimed(
    shoal: Shoal,
    worker_id: str,
    *,
    succeeded: Collection[WorkItem] = (),
    retry: Collection[tuple[WorkItem, str, float | None]] = (),
    failed: Collection[tuple[WorkItem, str]] = (),
    queue: JobQueue | None = None,
) -> None:
    """Record the outcomes of rows taken with :func:`claim_due`, in one transaction.

    ``retry`` holds ``(row, error, delay)`` (None: the kind's backoff); a row past its last
    attempt fails instead. Writes are fenced on the claim like :func:`fenced_update`; rows
    whose claim was lost keep the other worker's outcome. Retries ring ``queue`` for later.
    """
    now = utcnow()
    rings: list[tuple[int, int, float]] = []

    async with shoal.db.write() as session:
        if succeeded:
            await session.execute(
                update(WorkItem)
                .where(_held(worker_id, succeeded))
                .values(state=WorkState.SUCCEEDED, locked_until=None, last_error=None, state_changed_at=now)
                .execution_options(synchronize_session=False)
            )
        failures = list(failed)
        for item, error, delay in retry:
            wait = shoal.ext.jobs.kind(item.kind).retry_after(item, delay)
            if wait is None:
                failures.append((item, error))
                continue
            await session.execute(
                update(WorkItem)
                .where(_held(worker_id, [item]))
                .values(
                    state=WorkState.PENDING,
                    next_attempt_at=now + timedelta(seconds=wait),
                    locked_until=None,
                    last_error=error[:MAX_ERROR_LENGTH],
                    state_changed_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            rings.append((item.id, item.attempts, wait))
            log.warning("work %d (%s) attempt %d/%d failed, retrying in %.2fs: %s", item.id, item.kind,
                        item.attempts, item.max_attempts, wait, error)  # fmt: skip
        for item, error in failures:
            await session.execute(
                update(WorkItem)
                .where(_held(worker_id, [item]))
                .values(
                    state=WorkState.FAILED,
                    locked_until=None,
                    last_error=error[:MAX_ERROR_LENGTH],
                    state_changed_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            log.error("work %d (%s) failed on attempt %d/%d: %s", item.id, item.kind, item.attempts,
                      item.max_attempts, error)  # fmt: skip
    for item, error in failures:
        await give_up(shoal, item, error)
    if queue is not None:
        for item_id, attempts, wait in rings:
            await queue.ring(item_id, delay=wait, attempts=attempts)


def lease_for(shoal: Shoal, job: JobKind) -> timedelta:
    """The kind's lease, capped by ``jobs_max_lease``: how soon a dead worker's row is retaken."""
    return min(job.lease, timedelta(seconds=shoal.settings.jobs_max_lease))


async def give_up(shoal: Shoal, item: WorkItem, error: str) -> None:
    """Run the kind's :attr:`~.kinds.JobKind.on_give_up` for a row that failed for good; its
    own failure is logged (the row stays failed; ``shoal doctor`` shows what is left)."""
    job = shoal.ext.jobs.get(item.kind)
    if job is None or job.on_give_up is None:
        return
    try:
        await job.on_give_up(shoal, item, error)
    except Exception:
        log.exception("work %d (%s): settling its domain row after giving up failed", item.id, item.kind)


# Sweeping ------------------------------------------------------------------


def _process_gone(worker_id: str | None) -> bool:
    """True when ``worker_id`` (``host:pid:random``) names a process of this host that is dead."""
    if not worker_id:
        return False
    host, _, rest = worker_id.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


async def release_dead(shoal: Shoal) -> int:
    """Put back to pending the running rows held by a dead process of this host.

    A worker killed with SIGKILL cannot release its rows; when it ran on this machine we
    know it is gone and need not wait for its lease to expire. The attempt stays counted,
    so work that kills its process every time still ends failed.
    """
    async with shoal.db.read() as session:
        rows = (
            await session.execute(
                select(WorkItem.id, WorkItem.locked_by).where(
                    WorkItem.state == WorkState.RUNNING, WorkItem.attempts < WorkItem.max_attempts
                )
            )
        ).all()
    dead = [(row.id, row.locked_by) for row in rows if _process_gone(row.locked_by)]
    for item_id, locked_by in dead:
        async with shoal.db.write() as session:
            await session.execute(
                update(WorkItem)
                .where(
                    WorkItem.id == item_id,
                    WorkItem.state == WorkState.RUNNING,
                    WorkItem.locked_by == locked_by,
                )
                .values(
                    state=WorkState.PENDING,
                    locked_until=None,
                    locked_by=None,
                    next_attempt_at=utcnow(),
                    state_changed_at=utcnow(),
                )
            )
        log.info("work %d: its worker %s is gone; released", item_id, locked_by)
    return len(dead)


_ABANDONED = "LeaseExpired: the worker stopped answering during the last attempt"


async def fail_abandoned(shoal: Shoal) -> int:
    """Fail running rows whose lease expired with no attempt left (their worker died each time),
    and settle their domain rows (:func:`give_up`)."""
    now = utcnow()
    abandoned = and_(
        WorkItem.state == WorkState.RUNNING,
        WorkItem.locked_until < now,
        WorkItem.attempts >= WorkItem.max_attempts,
    )
    failed: list[WorkItem] = []
    async with shoal.db.write() as session:
        for item in await session.scalars(select(WorkItem).where(abandoned)):
            result = await session.execute(
                update(WorkItem)
                .where(WorkItem.id == item.id, abandoned)
                .values(
                    state=WorkState.FAILED, locked_until=None, last_error=_ABANDONED, state_changed_at=now
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount:
                failed.append(item)
        session.expunge_all()
    if failed:
        log.error("%d work rows failed: their worker vanished during the last attempt", len(failed))
    for item in failed:
        await give_up(shoal, item, _ABANDONED)
    return len(failed)


async def due_work(
    shoal: Shoal, kinds: Collection[str], *, limit: int = SWEEP_BATCH
) -> list[tuple[int, int]]:
    """``(id, attempts)`` of rows of ``kinds`` that may be claimed now, the most overdue first."""
    if not kinds:
        return []
    now = utcnow()
    query = (
        select(WorkItem.id, WorkItem.attempts)
        .where(WorkItem.kind.in_(list(kinds)), _claimable(WorkItem, now))
        .order_by(WorkItem.next_attempt_at, WorkItem.id)
        .limit(limit)
    )
    async with shoal.db.read() as session:
        return [(row.id, row.attempts) for row in await session.execute(query)]


async def busy_work(shoal: Shoal, kinds: Collection[str]) -> int:
    """How many rows of ``kinds`` are due now or running: zero means the queue is idle."""
    if not kinds:
        return 0
    now = utcnow()
    query = select(func.count(WorkItem.id)).where(
        WorkItem.kind.in_(list(kinds)),
        or_(WorkItem.state == WorkState.RUNNING, _claimable(WorkItem, now)),
    )
    async with shoal.db.read() as session:
        return int(await session.scalar(query) or 0)

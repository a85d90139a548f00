"""Work rows: adding them, claiming them atomically, running their job, recording the outcome.

The row is the truth (DESIGN principle 1). A claim is one conditional ``UPDATE … RETURNING``
that only succeeds on a due pending row or a running row whose lease expired, so two
workers never hold the same row. Every later write is fenced on the claim (state running,
``locked_by`` and ``attempts`` unchanged): a worker that lost its lease cannot overwrite
the outcome of the worker that took the row over.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Collection
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from ..errors import Conflict, NotFound
from ..models import WorkItem, WorkState, utcnow
from .kinds import KINDS, JobError, JobKind, PermanentFailure, TryAgainLater, UnknownJobKind, job_kind

if TYPE_CHECKING:
    from datetime import datetime

    from ..core import Shoal
    from .queue import JobQueue

log = logging.getLogger("shoal.jobs")

OPEN_STATES = (WorkState.PENDING, WorkState.RUNNING)
LIST_STATES = ("pending", "running", "succeeded", "failed", "all")
SWEEP_BATCH = 500
MAX_ERROR_LENGTH = 2000


def describe_error(exc: BaseException) -> str:
    """One line for ``last_error`` and the log: the exception type and its message's first line."""
    text = exc.reason if isinstance(exc, JobError) else str(exc)
    lines = text.strip().splitlines()
    line = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return line[:MAX_ERROR_LENGTH]


# Adding work ---------------------------------------------------------------


async def add_work(
    session: AsyncSession,
    kind: str,
    subject: str = "",
    *,
    payload: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    delay: float = 0.0,
    max_attempts: int | None = None,
) -> WorkItem:
    """Insert a work row in the caller's transaction, so it commits with the domain row it serves.

    With ``dedupe_key`` an open (pending or running) row with that key is returned instead
    of a second one; a finished row gives its key up to the new row. Ring the queue after
    the commit (``await ring_item(shoal, item)``, which also times a delayed row), or use
    :func:`submit` for both.
    """
    job = job_kind(kind)
    now = utcnow()
    item = WorkItem(
        kind=kind,
        subject=subject,
        dedupe_key=dedupe_key,
        payload=payload or {},
        state=WorkState.PENDING,
        attempts=0,
        max_attempts=max_attempts or job.max_attempts,
        next_attempt_at=now + timedelta(seconds=max(delay, 0.0)),
        created_at=now,
        state_changed_at=now,
    )
    if dedupe_key is None:
        session.add(item)
        await session.flush()
        return item
    existing = await session.scalar(select(WorkItem).where(WorkItem.dedupe_key == dedupe_key))
    if existing is not None:
        if existing.state in OPEN_STATES:
            return existing
        existing.dedupe_key = None
        await session.flush()
    try:
        async with session.begin_nested():
            session.add(item)
    except IntegrityError:
        # Another transaction (PostgreSQL) inserted the same key since our read.
        existing = await session.scalar(select(WorkItem).where(WorkItem.dedupe_key == dedupe_key))
        if existing is None:
            raise
        return existing
    return item


async def add_work_many(
    session: AsyncSession,
    kind: str,
    rows: list[tuple[str, dict[str, Any]]],
    *,
    max_attempts: int | None = None,
) -> list[WorkItem]:
    """Insert many ``(subject, payload)`` rows of one kind in a few bulk statements (no dedupe
    keys): a fan-out writes thousands of rows in the caller's transaction, not one at a time."""
    job = job_kind(kind)
    now = utcnow()
    values = [
        {
            "kind": kind,
            "subject": subject,
            "dedupe_key": None,
            "payload": payload,
            "state": WorkState.PENDING,
            "attempts": 0,
            "max_attempts": max_attempts or job.max_attempts,
            "next_attempt_at": now,
            "created_at": now,
            "state_changed_at": now,
        }
        for subject, payload in rows
    ]
    items: list[WorkItem] = []
    for first in range(0, len(values), 250):
        # A bulk INSERT … RETURNING per chunk (3–4× cheaper than the unit of work), and each
        # chunk yields to the event loop, so requests are served meanwhile.
        items += await session.scalars(insert(WorkItem).returning(WorkItem), values[first : first + 250])
    return items


async def ring_item(shoal: Shoal, item: WorkItem) -> None:
    """Ring the queue for a pending row, timed for its ``next_attempt_at``.

    Without a queue (a CLI process) nothing is rung: a sweeper will find the row.
    """
    if shoal.jobs is None or item.state != WorkState.PENDING:
        return
    delay = max((item.next_attempt_at - utcnow()).total_seconds(), 0.0)
    await shoal.jobs.ring(item.id, delay=delay, attempts=item.attempts)


async def submit(
    shoal: Shoal,
    kind: str,
    subject: str = "",
    *,
    payload: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    delay: float = 0.0,
    max_attempts: int | None = None,
) -> WorkItem:
    """Add a work row in its own transaction and ring the queue: :func:`add_work` plus the ring."""
    async with shoal.db.write() as session:
        item = await add_work(
            session,
            kind,
            subject,
            payload=payload,
            dedupe_key=dedupe_key,
            delay=delay,
            max_attempts=max_attempts,
        )
    await ring_item(shoal, item)
    return item


# Claiming ------------------------------------------------------------------


def _claimable(row: Any, now: datetime) -> ColumnElement[bool]:
    """Due pending rows and running rows whose lease expired, with attempts left."""
    return and_(
        row.attempts < row.max_attempts,
        or_(
            and_(row.state == WorkState.PENDING, row.next_attempt_at <= now),
            and_(row.state == WorkState.RUNNING, row.locked_until < now),
        ),
    )


async def claim_work(
    shoal: Shoal, item_id: int, worker_id: str, *, lease: timedelta | None = None
) -> WorkItem | None:
    """Take row ``item_id`` for ``worker_id`` if it is claimable; None if someone else has it.

    One ``UPDATE … WHERE <claimable> … RETURNING``: it sets the row running, counts the
    attempt and leases it until now + ``lease`` (the kind's lease by default). On
    PostgreSQL the row is picked ``FOR UPDATE SKIP LOCKED``, so a losing worker returns
    at once instead of waiting for the winner's commit.
    """
    if lease is None:
        async with shoal.db.read() as session:
            kind = await session.scalar(select(WorkItem.kind).where(WorkItem.id == item_id))
        if kind is None:
            return None
        lease = job_kind(kind).lease
    now = utcnow()
    candidate = aliased(WorkItem)
    pick = (
        select(candidate.id)
        .where(candidate.id == item_id, _claimable(candidate, now))
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(WorkItem)
        .where(WorkItem.id.in_(pick))
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
        return (await session.execute(stmt)).scalar_one_or_none()


async def _fenced_update(shoal: Shoal, item: WorkItem, worker_id: str, **values: Any) -> bool:
    """Update a row we claimed, only if the claim still holds; False when it was lost."""
    stmt = (
        update(WorkItem)
        .where(
            WorkItem.id == item.id,
            WorkItem.state == WorkState.RUNNING,
            WorkItem.locked_by == worker_id,
            WorkItem.attempts == item.attempts,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    async with shoal.db.write() as session:
        result = await session.execute(stmt)
    return result.rowcount == 1


async def claim_due(
    shoal: Shoal, kind: str, worker_id: str, *, limit: int, lease: timedelta
) -> list[WorkItem]:
    """Take up to ``limit`` claimable rows of ``kind`` at once, the most overdue first.

    For kinds whose rows are many and cheap (deliveries): one ``UPDATE … RETURNING`` claims
    the lot, as :func:`claim_work` claims one (``SKIP LOCKED`` on PostgreSQL). The caller
    settles every row with :func:`settle_claimed`.
    """
    now = utcnow()
    candidate = aliased(WorkItem)
    pick = (
        select(candidate.id)
        .where(candidate.kind == kind, _claimable(candidate, now))
        .order_by(candidate.next_attempt_at, candidate.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(WorkItem)
        .where(WorkItem.id.in_(pick))
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
    attempt fails instead. Writes are fenced on the claim like :func:`_fenced_update`; rows
    whose claim was lost keep the other worker's outcome. Retries ring ``queue`` for later.
    """
    now = utcnow()
    rings: list[tuple[int, int, float]] = []

    def fence(item: WorkItem) -> ColumnElement[bool]:
        return and_(
            WorkItem.id == item.id,
            WorkItem.state == WorkState.RUNNING,
            WorkItem.locked_by == worker_id,
            WorkItem.attempts == item.attempts,
        )

    async with shoal.db.write() as session:
        if succeeded:
            await session.execute(
                update(WorkItem)
                .where(
                    WorkItem.id.in_([item.id for item in succeeded]),
                    WorkItem.state == WorkState.RUNNING,
                    WorkItem.locked_by == worker_id,
                )
                .values(state=WorkState.SUCCEEDED, locked_until=None, last_error=None, state_changed_at=now)
                .execution_options(synchronize_session=False)
            )
        failures = list(failed)
        for item, error, delay in retry:
            if item.attempts >= item.max_attempts:
                failures.append((item, error))
                continue
            wait = job_kind(item.kind).backoff(item.attempts) if delay is None else max(delay, 0.0)
            await session.execute(
                update(WorkItem)
                .where(fence(item))
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
                .where(fence(item))
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


# Running -------------------------------------------------------------------


class _Lease:
    """Renews the lease of a running row until the job ends; cancels the job if the lease is lost."""

    def __init__(self, shoal: Shoal, job: JobKind, item: WorkItem, worker_id: str) -> None:
        self.shoal = shoal
        self.job = job
        self.item = item
        self.worker_id = worker_id
        self.lost = False

    async def keep(self, task: asyncio.Task[None]) -> None:
        lease = lease_for(self.shoal, self.job)
        while not task.done():
            await asyncio.sleep(max(lease.total_seconds() / 3, 0.05))
            try:
                held = await _fenced_update(
                    self.shoal, self.item, self.worker_id, locked_until=utcnow() + lease
                )
            except (SQLAlchemyError, OSError) as exc:
                log.warning(
                    "work %d (%s): could not renew the lease: %s",
                    self.item.id,
                    self.item.kind,
                    describe_error(exc),
                )
                continue
            if not held:
                self.lost = True
                task.cancel()
                return


def lease_for(shoal: Shoal, job: JobKind) -> timedelta:
    """The kind's lease, capped by ``jobs_max_lease``: how soon a dead worker's row is retaken."""
    return min(job.lease, timedelta(seconds=shoal.settings.jobs_max_lease))


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


async def run_work(
    shoal: Shoal, item_id: int, *, worker_id: str, queue: JobQueue | None = None
) -> str | None:
    """Claim row ``item_id`` and run its job once; return the outcome, or None if nothing was claimed.

    Outcomes: ``succeeded``, ``retrying``, ``failed``, ``released`` (this process is
    stopping: the row goes back to pending, the attempt not counted) and ``lost`` (the
    lease expired and another worker took the row over; this run's result is dropped).
    A retry rings ``queue`` for the time of the next attempt.
    """
    async with shoal.db.read() as session:
        kind = await session.scalar(select(WorkItem.kind).where(WorkItem.id == item_id))
    if kind is None:
        return None
    job = KINDS.get(kind)
    if job is None:
        log.warning("work %d: no job kind %r in this process; left to another worker", item_id, kind)
        return None
    item = await claim_work(shoal, item_id, worker_id, lease=lease_for(shoal, job))
    if item is None:
        return None
    return await _execute(shoal, job, item, worker_id, queue)


def _fields(item: WorkItem) -> dict[str, Any]:
    return {
        "kind": item.kind,
        "work_id": item.id,
        "attempt": item.attempts,
        "max_attempts": item.max_attempts,
    }


async def _execute(shoal: Shoal, job: JobKind, item: WorkItem, worker_id: str, queue: JobQueue | None) -> str:
    started = time.monotonic()
    log.info(
        "work %d (%s) started, attempt %d/%d",
        item.id,
        item.kind,
        item.attempts,
        item.max_attempts,
        extra=_fields(item),
    )
    lease = _Lease(shoal, job, item, worker_id)
    task = asyncio.create_task(job.handler(shoal, item), name=f"shoal-job-{item.kind}-{item.id}")
    keeper = asyncio.create_task(lease.keep(task), name=f"shoal-lease-{item.id}")
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            await asyncio.shield(_release(shoal, item, worker_id))
            raise
        if lease.lost:
            log.warning(
                "work %d (%s): lease lost to another worker; this run's result is dropped",
                item.id,
                item.kind,
                extra=_fields(item),
            )
            return "lost"
        return await _retry(shoal, job, item, worker_id, queue, "CancelledError: the job cancelled itself")
    except TryAgainLater as exc:
        return await _retry(shoal, job, item, worker_id, queue, describe_error(exc), exc.delay)
    except PermanentFailure as exc:
        return await _fail(shoal, item, worker_id, describe_error(exc))
    except Exception as exc:
        log.warning("work %d (%s) raised an unexpected error", item.id, item.kind, exc_info=True)
        return await _retry(shoal, job, item, worker_id, queue, describe_error(exc))
    else:
        return await _succeed(shoal, item, worker_id, time.monotonic() - started)
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)


async def _succeed(shoal: Shoal, item: WorkItem, worker_id: str, took: float) -> str:
    now = utcnow()
    if not await _fenced_update(
        shoal,
        item,
        worker_id,
        state=WorkState.SUCCEEDED,
        locked_until=None,
        last_error=None,
        state_changed_at=now,
    ):
        return _lost(item)
    log.info("work %d (%s) succeeded in %.2fs", item.id, item.kind, took, extra=_fields(item))
    return "succeeded"


async def _retry(
    shoal: Shoal,
    job: JobKind,
    item: WorkItem,
    worker_id: str,
    queue: JobQueue | None,
    error: str,
    delay: float | None = None,
) -> str:
    if item.attempts >= item.max_attempts:
        return await _fail(shoal, item, worker_id, error)
    wait = job.backoff(item.attempts) if delay is None else max(delay, 0.0)
    now = utcnow()
    if not await _fenced_update(
        shoal,
        item,
        worker_id,
        state=WorkState.PENDING,
        next_attempt_at=now + timedelta(seconds=wait),
        locked_until=None,
        last_error=error,
        state_changed_at=now,
    ):
        return _lost(item)
    log.warning(
        "work %d (%s) attempt %d/%d failed, retrying in %.2fs: %s",
        item.id,
        item.kind,
        item.attempts,
        item.max_attempts,
        wait,
        error,
        extra={**_fields(item), "error": error},
    )
    if queue is not None:
        await queue.ring(item.id, delay=wait, attempts=item.attempts)
    return "retrying"


async def _fail(shoal: Shoal, item: WorkItem, worker_id: str, error: str) -> str:
    now = utcnow()
    if not await _fenced_update(
        shoal,
        item,
        worker_id,
        state=WorkState.FAILED,
        locked_until=None,
        last_error=error,
        state_changed_at=now,
    ):
        return _lost(item)
    log.error(
        "work %d (%s) failed on attempt %d/%d: %s",
        item.id,
        item.kind,
        item.attempts,
        item.max_attempts,
        error,
        extra={**_fields(item), "error": error},
    )
    await give_up(shoal, item, error)
    return "failed"


async def give_up(shoal: Shoal, item: WorkItem, error: str) -> None:
    """Run the kind's :attr:`~.kinds.JobKind.on_give_up` for a row that failed for good; its
    own failure is logged (the row stays failed; ``shoal doctor`` shows what is left)."""
    try:
        job = job_kind(item.kind)
    except UnknownJobKind:
        return
    if job.on_give_up is None:
        return
    try:
        await job.on_give_up(shoal, item, error)
    except Exception:
        log.exception("work %d (%s): settling its domain row after giving up failed", item.id, item.kind)


async def _release(shoal: Shoal, item: WorkItem, worker_id: str) -> None:
    """Give a row back when this process stops mid-job: pending now, the attempt not counted."""
    now = utcnow()
    try:
        released = await _fenced_update(
            shoal,
            item,
            worker_id,
            state=WorkState.PENDING,
            attempts=item.attempts - 1,
            next_attempt_at=now,
            locked_until=None,
            state_changed_at=now,
        )
    except (SQLAlchemyError, OSError) as exc:
        log.warning(
            "work %d (%s): could not release on shutdown (%s); it is retaken when its lease expires",
            item.id,
            item.kind,
            describe_error(exc),
        )
        return
    if released:
        log.info("work %d (%s) interrupted, released for another worker", item.id, item.kind)


def _lost(item: WorkItem) -> str:
    log.warning(
        "work %d (%s): the lease expired before the result was stored; another worker has the row",
        item.id,
        item.kind,
        extra=_fields(item),
    )
    return "lost"


# Sweeping ------------------------------------------------------------------


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


# Administration ------------------------------------------------------------


async def list_work(
    shoal: Shoal,
    state: str,
    *,
    start: int = 0,
    count: int = 15,
    kind: str | None = None,
    newest_first: bool = True,
) -> tuple[int, list[WorkItem]]:
    """A page of rows in ``state`` (or ``all``) with the total, for the admin."""
    if state not in LIST_STATES:
        raise ValueError(f"unknown work state {state!r}")
    conditions = []
    if state != "all":
        conditions.append(WorkItem.state == state)
    if kind:
        conditions.append(WorkItem.kind == kind)
    order = (
        (WorkItem.created_at.desc(), WorkItem.id.desc())
        if newest_first
        else (WorkItem.created_at, WorkItem.id)
    )
    async with shoal.db.read() as session:
        total = await session.scalar(select(func.count(WorkItem.id)).where(*conditions))
        rows = list(
            await session.scalars(
                select(WorkItem).where(*conditions).order_by(*order).offset(start).limit(count)
            )
        )
        session.expunge_all()
    return int(total or 0), rows


async def count_work(shoal: Shoal) -> dict[str, dict[str, int]]:
    """Row counts by kind, then by state (every state present, zeros included)."""
    counts: dict[str, dict[str, int]] = {}
    query = select(WorkItem.kind, WorkItem.state, func.count(WorkItem.id)).group_by(
        WorkItem.kind, WorkItem.state
    )
    async with shoal.db.read() as session:
        for kind, state, number in await session.execute(query):
            per_kind = counts.setdefault(kind, {str(s): 0 for s in WorkState})
            per_kind[state] = int(number)
    return counts


async def retry_work(shoal: Shoal, item_id: int) -> WorkItem:
    """Send a failed row back to pending now, with a fresh budget of attempts, and ring the queue."""
    now = utcnow()
    async with shoal.db.write() as session:
        item = await session.get(WorkItem, item_id)
        if item is None:
            raise NotFound(f"There is no job {item_id}.", code="job_not_found")
        if item.state != WorkState.FAILED:
            raise Conflict(
                f"Only failed jobs can be retried; job {item_id} is {item.state}.", code="job_not_failed"
            )
        budget = KINDS[item.kind].max_attempts if item.kind in KINDS else item.max_attempts
        item.state = WorkState.PENDING
        item.max_attempts = item.attempts + budget
        item.next_attempt_at = now
        item.locked_until = None
        item.state_changed_at = now
    log.info("work %d (%s) sent back to pending by an admin", item.id, item.kind, extra=_fields(item))
    await ring_item(shoal, item)
    return item

"""Running a claimed row: its job under a renewed lease, then the outcome, fenced on the claim.

Outcomes: ``succeeded``, ``retrying`` (backoff, or the delay a job asked for), ``failed``
(then the kind's ``on_give_up``), ``released`` (this process is stopping) and ``lost`` (the
lease expired and another worker took the row over; this run's result is dropped).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ..models import WorkItem, WorkState, utcnow
from .claims import claim_work, fenced_update, give_up, lease_for
from .kinds import JobKind, PermanentFailure, TryAgainLater
from .rows import describe_error, log_fields

if TYPE_CHECKING:
    from ..core import Shoal
    from .queue import JobQueue

log = logging.getLogger("shoal.jobs")


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
                held = await fenced_update(
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
    job = shoal.ext.jobs.get(kind)
    if job is None:
        log.warning("work %d: no job kind %r in this Shoal; left to another worker", item_id, kind)
        return None
    item = await claim_work(shoal, item_id, worker_id, lease=lease_for(shoal, job))
    if item is None:
        return None
    return await _execute(shoal, job, item, worker_id, queue)


async def _execute(shoal: Shoal, job: JobKind, item: WorkItem, worker_id: str, queue: JobQueue | None) -> str:
    started = time.monotonic()
    log.info(
        "work %d (%s) started, attempt %d/%d",
        item.id,
        item.kind,
        item.attempts,
        item.max_attempts,
        extra=log_fields(item),
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
                extra=log_fields(item),
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
    if not await fenced_update(
        shoal,
        item,
        worker_id,
        state=WorkState.SUCCEEDED,
        locked_until=None,
        last_error=None,
        state_changed_at=now,
    ):
        return _lost(item)
    log.info("work %d (%s) succeeded in %.2fs", item.id, item.kind, took, extra=log_fields(item))
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
    wait = job.retry_after(item, delay)
    if wait is None:
        return await _fail(shoal, item, worker_id, error)
    now = utcnow()
    if not await fenced_update(
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
        extra={**log_fields(item), "error": error},
    )
    if queue is not None:
        await queue.ring(item.id, delay=wait, attempts=item.attempts)
    return "retrying"


async def _fail(shoal: Shoal, item: WorkItem, worker_id: str, error: str) -> str:
    now = utcnow()
    if not await fenced_update(
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
        extra={**log_fields(item), "error": error},
    )
    await give_up(shoal, item, error)
    return "failed"


async def _release(shoal: Shoal, item: WorkItem, worker_id: str) -> None:
    """Give a row back when this process stops mid-job: pending now, the attempt not counted."""
    now = utcnow()
    try:
        released = await fenced_update(
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
        extra=log_fields(item),
    )
    return "lost"

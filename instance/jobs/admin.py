"""What the admin sees and does with work rows: pages of rows, counts, sending a failed row back."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from ..errors import Conflict, NotFound
from ..models import WorkItem, WorkState, utcnow
from .rows import log_fields, ring_item

if TYPE_CHECKING:
    from ..core import Shoal

log = logging.getLogger("shoal.jobs")

LIST_STATES = ("pending", "running", "succeeded", "failed", "all")


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
        job = shoal.ext.jobs.get(item.kind)
        budget = job.max_attempts if job is not None else item.max_attempts
        item.state = WorkState.PENDING
        item.max_attempts = item.attempts + budget
        item.next_attempt_at = now
        item.locked_until = None
        item.state_changed_at = now
    log.info("work %d (%s) sent back to pending by an admin", item.id, item.kind, extra=log_fields(item))
    await ring_item(shoal, item)
    return item

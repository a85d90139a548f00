"""Work rows: adding them in the caller's transaction, and ringing the queue for them.

The row is the truth (DESIGN principle 1): a row is committed with the domain row it serves,
and the queue is rung after the commit. Claiming and fencing are in :mod:`.claims`, running
a claimed row in :mod:`.runner`, the admin's views in :mod:`.admin`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import WorkItem, WorkState, utcnow
from .kinds import JobError

if TYPE_CHECKING:
    from ..core import Shoal

OPEN_STATES = (WorkState.PENDING, WorkState.RUNNING)
MAX_ERROR_LENGTH = 2000


def describe_error(exc: BaseException) -> str:
    """One line for ``last_error`` and the log: the exception type and its message's first line."""
    text = exc.reason if isinstance(exc, JobError) else str(exc)
    lines = text.strip().splitlines()
    line = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return line[:MAX_ERROR_LENGTH]


def log_fields(item: WorkItem) -> dict[str, Any]:
    """The structured fields of a row's log lines (``extra=``)."""
    return {
        "kind": item.kind,
        "work_id": item.id,
        "attempt": item.attempts,
        "max_attempts": item.max_attempts,
    }


async def add_work(
    shoal: Shoal,
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
    job = shoal.ext.jobs.kind(kind)
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
    shoal: Shoal,
    session: AsyncSession,
    kind: str,
    rows: list[tuple[str, dict[str, Any]]],
    *,
    max_attempts: int | None = None,
) -> list[WorkItem]:
    """Insert many ``(subject, payload)`` rows of one kind in a few bulk statements (no dedupe
    keys): a fan-out writes thousands of rows in the caller's transaction, not one at a time."""
    job = shoal.ext.jobs.kind(kind)
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
            shoal,
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

"""The registry of job kinds, the errors a job raises, and the retry schedule.

A job kind names an idempotent ``async def handler(shoal, item)`` plus how it is retried:
how many attempts, how long a claim (lease) lasts before another worker may take the row
over, and the exponential backoff between attempts.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core import Shoal
    from ..models import WorkItem

Handler = Callable[["Shoal", "WorkItem"], Awaitable[None]]
# What giving up on a row means for the domain row it serves: (shoal, row, last error).
GiveUp = Callable[["Shoal", "WorkItem", str], Awaitable[None]]

# Modules that register job kinds when imported. Every process that runs jobs (the web
# process in embedded mode, `shoal worker`) imports them through load_job_modules(), so a
# kind is known wherever its rows may be claimed.
JOB_MODULES: list[str] = [
    "instance.jobs.builtin",
    "instance.services.processing",
    "p2p.jobs",
    "federation.inbox",
    "federation.delivery",
    "federation.fanout",
]


class JobError(Exception):
    """Base of the errors a job handler raises to say how its row should go on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TryAgainLater(JobError):
    """Not now: the attempt counts, and the row is retried after ``delay`` (or the backoff)."""

    def __init__(self, reason: str, delay: float | timedelta | None = None) -> None:
        super().__init__(reason)
        self.delay = delay.total_seconds() if isinstance(delay, timedelta) else delay


class PermanentFailure(JobError):
    """Never: the row fails at once, whatever attempts are left."""


class UnknownJobKind(ValueError):
    """Work was added for a kind no module registered."""


@dataclass(frozen=True)
class JobKind:
    """One registered kind of work and its retry policy."""

    name: str
    handler: Handler
    max_attempts: int = 5
    lease: timedelta = timedelta(minutes=10)
    backoff_base: timedelta = timedelta(seconds=60)
    backoff_cap: timedelta = timedelta(hours=6)
    # Rows taken in bulk by another kind's job (deliveries): the sweeper submits one job of
    # that kind when some are due, instead of ringing each row.
    swept_by: str | None = None
    # Called once a row of this kind has failed for good (its last attempt failed, or its
    # worker vanished during it), so the domain row it served reaches a final state too.
    on_give_up: GiveUp | None = None

    def backoff(self, attempts: int) -> float:
        """Seconds to wait before the next attempt, after ``attempts`` tries."""
        return backoff_delay(attempts, self.backoff_base, self.backoff_cap)


KINDS: dict[str, JobKind] = {}


def register_job(
    kind: str,
    handler: Handler,
    *,
    max_attempts: int = 5,
    lease: timedelta = timedelta(minutes=10),
    backoff_base: timedelta = timedelta(seconds=60),
    backoff_cap: timedelta = timedelta(hours=6),
    swept_by: str | None = None,
    on_give_up: GiveUp | None = None,
) -> JobKind:
    """Register ``handler`` as the job of ``kind``; returns the kind (``swept_by``,
    ``on_give_up``: see :class:`JobKind`).

    Registering the same handler again is allowed (a module imported twice); another
    handler under a taken name is a programming error.
    """
    if not kind or len(kind) > 64:
        raise ValueError(f"job kind {kind!r} must be 1 to 64 characters")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if lease <= timedelta(0):
        raise ValueError("lease must be positive")
    existing = KINDS.get(kind)
    if existing is not None and existing.handler is not handler:
        raise ValueError(f"job kind {kind!r} is already registered to {existing.handler.__qualname__}")
    job = JobKind(kind, handler, max_attempts, lease, backoff_base, backoff_cap, swept_by, on_give_up)
    KINDS[kind] = job
    return job


def job_kind(kind: str) -> JobKind:
    """The registered kind called ``kind``, or :class:`UnknownJobKind`."""
    try:
        return KINDS[kind]
    except KeyError:
        raise UnknownJobKind(f"no job kind {kind!r} is registered") from None


def load_job_modules() -> None:
    """Import every module of :data:`JOB_MODULES` so that their kinds are registered."""
    for name in JOB_MODULES:
        importlib.import_module(name)


def backoff_delay(attempts: int, base: timedelta, cap: timedelta) -> float:
    """Exponential backoff with jitter: ``base * 2**(attempts-1)``, capped, then drawn in [d/2, d].

    The jitter spreads the retries of rows that failed together (a remote host that was
    down) so they do not all come back at the same second.
    """
    exponent = min(max(attempts - 1, 0), 32)
    ceiling = min(base.total_seconds() * 2**exponent, cap.total_seconds())
    return ceiling / 2 + random.uniform(0, ceiling / 2)

"""The job kinds of a Shoal, the errors a job raises, and the retry schedule.

A job kind names an idempotent ``async def handler(shoal, item)`` plus how it is retried:
how many attempts, how long a claim (lease) lasts before another worker may take the row
over, and the exponential backoff between attempts.

Kinds are not registered on import: each Shoal's extension surface holds its own
:class:`JobKinds` (``shoal.ext.jobs``), into which the core (:func:`instance.extensions.build_surface`)
and every package's ``install(surface)`` register theirs. A worker runs the kinds of the
Shoal it runs with.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core import Shoal
    from ..models import WorkItem

Handler = Callable[["Shoal", "WorkItem"], Awaitable[None]]
# What giving up on a row means for the domain row it serves: (shoal, row, last error).
GiveUp = Callable[["Shoal", "WorkItem", str], Awaitable[None]]

# Started when a queue of this Shoal starts consuming (e.g. delivery's signing process).
ConsumerStart = Callable[[], None]


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
    """Work was added for a kind that no package registered in this Shoal."""


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

    def retry_after(self, item: WorkItem, delay: float | None = None) -> float | None:
        """Seconds until a failed attempt of ``item`` is tried again (``delay`` when the job
        asked for one, else the backoff), or None when it has no attempt left: it fails."""
        if item.attempts >= item.max_attempts:
            return None
        return self.backoff(item.attempts) if delay is None else max(delay, 0.0)


class JobKinds(Mapping[str, JobKind]):
    """The job kinds of one Shoal, by name, and the hooks run when its queue starts consuming.

    Built per Shoal (its surface's ``jobs``): two Shoals in one process may know different
    kinds, and importing a module registers nothing.
    """

    def __init__(self) -> None:
        self._kinds: dict[str, JobKind] = {}
        self.consumer_starts: list[ConsumerStart] = []

    def __getitem__(self, name: str) -> JobKind:
        return self._kinds[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)

    def register(
        self,
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

        Registering the same handler again is allowed (a package installed twice); another
        handler under a taken name is a programming error.
        """
        if not kind or len(kind) > 64:
            raise ValueError(f"job kind {kind!r} must be 1 to 64 characters")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if lease <= timedelta(0):
            raise ValueError("lease must be positive")
        existing = self._kinds.get(kind)
        if existing is not None and existing.handler is not handler:
            raise ValueError(f"job kind {kind!r} is already registered to {existing.handler.__qualname__}")
        job = JobKind(kind, handler, max_attempts, lease, backoff_base, backoff_cap, swept_by, on_give_up)
        self._kinds[kind] = job
        return job

    def kind(self, name: str) -> JobKind:
        """The registered kind called ``name``, or :class:`UnknownJobKind`."""
        try:
            return self._kinds[name]
        except KeyError:
            raise UnknownJobKind(f"no job kind {name!r} is registered") from None

    def on_consumer_start(self, hook: ConsumerStart) -> None:
        """Call ``hook()`` when a queue of this Shoal starts consuming (once per hook)."""
        if hook not in self.consumer_starts:
            self.consumer_starts.append(hook)


def backoff_delay(attempts: int, base: timedelta, cap: timedelta) -> float:
    """Exponential backoff with jitter: ``base * 2**(attempts-1)``, capped, then drawn in [d/2, d].

    The jitter spreads the retries of rows that failed together (a remote host that was
    down) so they do not all come back at the same second.
    """
    exponent = min(max(attempts - 1, 0), 32)
    ceiling = min(base.total_seconds() * 2**exponent, cap.total_seconds())
    return ceiling / 2 + random.uniform(0, ceiling / 2)

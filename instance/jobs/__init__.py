"""Background work: durable rows advanced by idempotent jobs, rung through a queue.

A package registers its kinds in its ``install(surface)`` (``surface.jobs.register``, one
:class:`JobKinds` per Shoal); add work with :func:`add_work` inside the transaction that
creates the domain row, then ring, or call :func:`submit`. The queue
(``shoal.jobs``) is in-process in the embedded mode and arq on Redis in the scaled mode;
:func:`create_queue` picks it from the settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .admin import LIST_STATES, count_work, list_work, retry_work
from .arq_queue import ArqQueue
from .claims import claim_due, claim_work, settle_claimed
from .kinds import (
    JobError,
    JobKind,
    JobKinds,
    PermanentFailure,
    TryAgainLater,
    UnknownJobKind,
    backoff_delay,
)
from .queue import InProcessQueue, JobQueue, new_worker_id
from .rows import add_work, add_work_many, describe_error, ring_item, submit
from .runner import run_work

if TYPE_CHECKING:
    from ..core import Shoal

__all__ = [
    "LIST_STATES",
    "ArqQueue",
    "InProcessQueue",
    "JobError",
    "JobKind",
    "JobKinds",
    "JobQueue",
    "PermanentFailure",
    "TryAgainLater",
    "UnknownJobKind",
    "add_work",
    "add_work_many",
    "backoff_delay",
    "claim_due",
    "claim_work",
    "count_work",
    "create_queue",
    "describe_error",
    "list_work",
    "new_worker_id",
    "queue_stats",
    "retry_work",
    "ring_item",
    "run_work",
    "settle_claimed",
    "submit",
]


def create_queue(shoal: Shoal, *, consume: bool) -> JobQueue:
    """The queue for these settings: arq when workers are external, in-process otherwise.

    ``consume`` says whether this process runs jobs (embedded web process, `shoal worker`)
    or only rings (a web process in the scaled mode, CLI commands). Call ``start()`` next.
    """
    if shoal.settings.workers_mode == "external":
        return ArqQueue(shoal, consume=consume)
    return InProcessQueue(shoal, consume=consume)


async def queue_stats(shoal: Shoal) -> dict[str, Any]:
    """What the admin sees of the queue: counts by kind and state, totals, live workers."""
    kinds = await count_work(shoal)
    states: dict[str, int] = {}
    for per_kind in kinds.values():
        for state, number in per_kind.items():
            states[state] = states.get(state, 0) + number
    queue = shoal.jobs
    return {
        "mode": shoal.settings.workers_mode,
        "backend": queue.backend if queue is not None else None,
        "total": sum(states.values()),
        "states": states,
        "kinds": kinds,
        "workers": await queue.workers() if queue is not None else [],
    }

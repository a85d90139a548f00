"""Built-in job kinds for operations: ``noop`` checks the queue round trip, ``sleep`` holds a slot.

`shoal doctor` submits a ``noop`` and waits for it to succeed; ``sleep`` (seconds in the
payload, short lease) lets an admin or a test see a worker take, renew and lose a lease.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING

from .kinds import PermanentFailure

if TYPE_CHECKING:
    from ..core import Shoal
    from ..extensions import Surface
    from ..models import WorkItem

MAX_SLEEP = 3600.0


async def handle_noop(shoal: Shoal, item: WorkItem) -> None:
    """Do nothing: succeeding proves that a ring reached a worker and the row was advanced."""


async def handle_sleep(shoal: Shoal, item: WorkItem) -> None:
    """Sleep ``payload["seconds"]`` (at most an hour), renewing the lease meanwhile."""
    seconds = item.payload.get("seconds", 1)
    if not isinstance(seconds, int | float) or not 0 <= seconds <= MAX_SLEEP:
        raise PermanentFailure(f"payload 'seconds' must be a number from 0 to {MAX_SLEEP:.0f}")
    await asyncio.sleep(seconds)


def install(surface: Surface) -> None:
    """Register ``noop`` and ``sleep`` (installed by the core into every Surface)."""
    surface.jobs.register(
        "noop", handle_noop, max_attempts=3, lease=timedelta(minutes=1), backoff_base=timedelta(seconds=5)
    )
    surface.jobs.register(
        "sleep", handle_sleep, max_attempts=3, lease=timedelta(seconds=2), backoff_base=timedelta(seconds=5)
    )

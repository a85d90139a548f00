"""How a long-running command (``shoal serve``, ``worker``, ``seeder``) waits for its stop.

SIGTERM or SIGINT ends the wait; from then on the process has ``STOP_GRACE`` seconds to wind
down. Past that, a watchdog that needs no Python thread to run (``faulthandler``) writes every
thread's stack to stderr — what the stop waited on — and ends the process with status 1, so an
admin's ``systemctl stop`` or ``docker stop`` never waits on a wedged library.
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import signal
import sys

log = logging.getLogger("shoal.lifecycle")

# Requests in flight get 10 s, the seeder up to ~25 s (resume data, goodbyes, close), a job
# being given back waits out SQLite's 30 s busy timeout at worst.
STOP_GRACE = 50.0


async def until_stopped(name: str, grace: float = STOP_GRACE) -> None:
    """Return at SIGTERM or SIGINT, with the stop watchdog armed for ``grace`` seconds."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("%s stopping (at most %.0f s)", name, grace)
    faulthandler.dump_traceback_later(grace, exit=True, file=sys.stderr)


def stopped() -> None:
    """The stop finished: disarm the watchdog."""
    faulthandler.cancel_dump_traceback_later()

"""`shoal seeder`: the BitTorrent seeder as its own process (scaled mode, or any mode by choice)."""

from __future__ import annotations

import argparse
import logging
import sys

from instance.lifecycle import stopped, until_stopped
from instance.settings import Settings

log = logging.getLogger("shoal.p2p.seeder")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `shoal seeder` (everything else comes from the settings)."""
    parser.add_argument("--port", type=int, help="BitTorrent listen port (default: SHOAL_SEEDER_PORT)")


async def run_seeder(settings: Settings, args: argparse.Namespace) -> int:
    """Seed until SIGTERM or SIGINT. Exit 0 after a clean stop, 1 on an unmigrated database, 2 on settings."""
    from instance import migrate
    from instance.core import open_shoal
    from instance.logs import setup_logging

    from .seeder import Seeder

    setup_logging(settings.log_level, settings.log_format)
    if not settings.p2p_enabled:
        print("shoal seeder: P2P is disabled (SHOAL_P2P_ENABLED=false)", file=sys.stderr)
        return 2
    if args.port is not None:
        settings = settings.model_copy(update={"seeder_port": args.port})
    async with open_shoal(settings) as shoal:
        if await migrate.pending(shoal.db):
            print("shoal seeder: the database is not up to date: run `shoal db upgrade`", file=sys.stderr)
            return 1
        seeder = Seeder(shoal)
        await seeder.start()
        print(f"shoal seeder listening on port {seeder.listen_port}")
        sys.stdout.flush()
        try:
            await until_stopped("shoal seeder")
        finally:
            await seeder.stop()
    stopped()
    return 0

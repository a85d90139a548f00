"""The ``shoal`` command: serve, db, config, user (and worker, seeder, doctor as they land)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import secrets
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from . import __version__
from .settings import Settings, SettingsError, load_settings

Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int] | int]
COMMANDS: dict[str, Command] = {}


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from .app import create_app
    from .logs import setup_logging

    setup_logging(settings.log_level, settings.log_format)
    app = create_app(settings)

    def announce() -> None:
        print(f"Shoal {__version__} listening on http://{settings.listen} (public URL {settings.public_url})")
        database = "SQLite" if settings.is_sqlite else "PostgreSQL"
        print(f"  data dir {settings.data_dir.resolve()}, database {database}, jobs {settings.workers_mode}")
        sys.stdout.flush()

    asyncio.run(_run_server(app, settings.listen_host, settings.listen_port, announce))
    return 0


async def _run_server(app: Any, host: str, port: int, announce: Callable[[], None]) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then close gracefully (requests in flight get 10 s;
    the whole stop gets ``lifecycle.STOP_GRACE``).

    ``aiohttp.web.run_app`` with the server's handler wrapped by the hot-file short path
    (``instance/api/hotfiles.py``).
    """
    from aiohttp import web

    from .lifecycle import stopped, until_stopped
    from .web.hotfiles import ShoalRunner

    runner = ShoalRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=10)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        announce()
        await until_stopped("shoal serve")
    finally:
        await runner.cleanup()
    stopped()


async def _db(settings: Settings, args: argparse.Namespace) -> int:
    from . import migrate
    from .core import open_shoal

    async with open_shoal(settings, http=False) as shoal:
        if args.db_command == "upgrade":
            await migrate.upgrade(shoal.db, args.revision)
            print(f"database at revision {await migrate.current_revision(shoal.db)}")
        else:
            current = await migrate.current_revision(shoal.db)
            head = migrate.head_revision()
            print(f"current {current or '(empty)'}, newest {head}")
            return 0 if current == head else 1
    return 0


def _config(settings: Settings, args: argparse.Namespace) -> int:
    print(json.dumps(settings.masked(), indent=2, sort_keys=True))
    return 0


async def _user(settings: Settings, args: argparse.Namespace) -> int:
    from .app import prepare_database
    from .core import open_shoal
    from .errors import ApiError
    from .models import Role
    from .services.users import create_user

    async with open_shoal(settings, http=False) as shoal:
        await prepare_database(shoal, migrate_now=settings.is_sqlite)
        try:
            if args.user_command == "create":
                password = args.password or secrets.token_urlsafe(12)
                role = Role.ADMIN if args.admin else Role[args.role.upper()]
                async with shoal.db.write() as session:
                    user = await create_user(
                        shoal,
                        session,
                        username=args.name,
                        email=args.email or f"{args.name}@{settings.public_host.split(':')[0]}",
                        password=password,
                        role=role,
                    )
                print(f"created {role.label.lower()} {user.username}")
                if not args.password:
                    print(f"password: {password}")
            elif args.user_command == "invite":
                from .services.invites import invite_user

                invited, temporary = await invite_user(
                    shoal, email=args.email, username=args.name, role=Role[args.role.upper()]
                )
                print(f"invited {invited.username} <{invited.email}>")
                print(f"temporary password (must be changed at first login): {temporary}")
        except ApiError as exc:
            print(f"error: {exc.detail}", file=sys.stderr)
            return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shoal", description="Shoal, a federated peer-to-peer video platform"
    )
    parser.add_argument("--config", help="TOML settings file (also SHOAL_CONFIG)")
    parser.add_argument("--version", action="version", version=f"shoal {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("serve", help="run the web server (and, in embedded mode, jobs)")

    db = sub.add_parser("db", help="database migrations")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="apply pending migrations")
    up.add_argument("revision", nargs="?", default="heads")
    db_sub.add_parser("status", help="show the current and newest revisions")

    config = sub.add_parser("config", help="settings")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    config_sub.add_parser("show", help="print the effective settings, secrets masked")

    user = sub.add_parser("user", help="manage users")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    create = user_sub.add_parser("create", help="create a user")
    create.add_argument("name")
    create.add_argument("--admin", action="store_true", help="make the user an administrator")
    create.add_argument("--role", choices=["admin", "moderator", "user"], default="user")
    create.add_argument("--email")
    create.add_argument("--password", help="default: a random one, printed")
    invite = user_sub.add_parser("invite", help="invite a user with a one-time temporary password")
    invite.add_argument("email")
    invite.add_argument("--name", help="user name (default: from the e-mail address)")
    invite.add_argument("--role", choices=["admin", "moderator", "user"], default="user")

    for name, (module, _, help_text) in SUBCOMMANDS.items():
        importlib.import_module(module).add_arguments(sub.add_parser(name, help=help_text))
    return parser


COMMANDS.update({"serve": _serve, "db": _db, "config": _config, "user": _user})

# The subcommands that live in their own modules: name -> (module, command function, help).
# Each module has ``add_arguments(parser)``; it is imported when the parser is built.
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "doctor": ("instance.doctor", "run_doctor",
               "check the deployment (database, Redis, storage, ffmpeg, URL, clock, jobs)"),
    "upload": ("instance.upload_cli", "run", "upload a video to an instance, with progress"),
    "worker": ("instance.worker", "run_worker", "run background jobs from the Redis queue (scaled mode)"),
    "seeder": ("p2p.cli", "run_seeder", "seed the published videos over BitTorrent and WebTorrent"),
}  # fmt: skip


def command(name: str) -> Command:
    """The function of subcommand ``name``."""
    if name in COMMANDS:
        return COMMANDS[name]
    module, function, _ = SUBCOMMANDS[name]
    return getattr(importlib.import_module(module), function)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``shoal`` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        print(f"shoal: {exc}", file=sys.stderr)
        return 2
    result = command(args.command)(settings, args)
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())

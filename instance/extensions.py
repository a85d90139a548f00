"""One extension surface per Shoal: the events the core fires and the ports it calls out through.

The core (``instance/``) announces what happened (:data:`EVENTS`: a video published, a comment
deleted, …) and asks for what only another package can do (the ports of :class:`Surface`:
P2P swarm ids, fetching a remote image, following a remote actor, announcing a mirror). It
never imports those packages. They install themselves, explicitly, into each Surface:
:func:`build_surface` calls ``install(surface)`` of the core's own modules in :data:`CORE`,
then of every package in :data:`EXTENSIONS`. A Surface also holds the job kinds its Shoal
runs (``surface.jobs``) and each package's own per-Shoal tables (``surface.packages``:
federation's routing table, for one), so importing a module registers nothing.

Every :class:`~instance.core.Shoal` (a web app, a ``shoal worker``, the seeder, a CLI command)
gets its own surface from :func:`instance.core.open_shoal`, so two instances in one process
never share handlers. Failure policy: an event handler that raises is logged and the next one
runs; the core's own action (the publication, the comment) has already committed and stands.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .jobs.kinds import JobKinds

if TYPE_CHECKING:
    from .core import Shoal
    from .models import Rendition, Video
    from .services.subscriptions import RemoteActors

log = logging.getLogger("shoal.extensions")

# The core's own modules that install into every Surface, first: their job kinds.
CORE = ("instance.jobs.builtin", "instance.services.processing")

# Packages that install into every Surface, in order (federation first: p2p's handlers of the
# same event run after it).
EXTENSIONS = ("federation", "p2p")

# Each event and the arguments its handlers get after ``shoal``.
EVENTS: dict[str, str] = {
    "video_published": "video_id",
    "video_updated": "video_id, old_privacy",
    "video_deleted": "video (the row as it was)",
    "video_media_changed": "video_id (torrents made or removed)",
    "comment_created": "comment_id",
    "comment_deleted": "comment_id",
    "video_rated": "account_id, video_id, old rating, new rating",
    "remote_video_viewed": "video_id (a view counted here of a remote video)",
    "abuse_reported": "report_id",
}

Handler = Callable[..., Awaitable[Any]]
SwarmIds = Callable[["Shoal", "Video", list["Rendition"]], Iterable[str]]
FetchBytes = Callable[["Shoal", str, int], Awaitable[bytes]]
ResolveUrl = Callable[["Shoal", str], Awaitable[None]]
# (shoal, video, mirror, verb): tell a mirrored video's origin about our copy ("Create",
# "Update" or "Undo").
AnnounceMirror = Callable[["Shoal", "Video", Any, str], Awaitable[None]]
RefreshVideo = Callable[["Shoal", str], Awaitable[object]]


class UnknownEvent(ValueError):
    """A handler or a fire for an event not in :data:`EVENTS`."""


@dataclass
class Surface:
    """Event handlers, ports, job kinds and the packages' own tables of one Shoal."""

    handlers: dict[str, list[Handler]] = field(default_factory=dict)
    # The job kinds a worker of this Shoal runs, registered by CORE and each package's install.
    jobs: JobKinds = field(default_factory=JobKinds)
    # Per-Shoal state a package keeps for itself, under its name (``federation``: its
    # routing table, follow-accepted hooks and outbox sources).
    packages: dict[str, Any] = field(default_factory=dict)
    # Ports: None (or empty) when no package answers them; each caller says what it does then.
    swarm_ids: SwarmIds | None = None
    fetch_remote_image: FetchBytes | None = None
    resolve_video_url: ResolveUrl | None = None
    remote_actors: RemoteActors | None = None
    announce_mirror: AnnounceMirror | None = None
    refresh_remote_video: RefreshVideo | None = None

    def on(self, event: str, handler: Handler) -> None:
        """Call ``handler(shoal, *args)`` whenever ``event`` fires (once per handler)."""
        if event not in EVENTS:
            raise UnknownEvent(f"no event {event!r}")
        handlers = self.handlers.setdefault(event, [])
        if handler not in handlers:
            handlers.append(handler)

    async def fire(self, shoal: Shoal, event: str, *args: Any) -> None:
        """Run the handlers of ``event`` in order; a failing one is logged, the rest still run."""
        if event not in EVENTS:
            raise UnknownEvent(f"no event {event!r}")
        for handler in self.handlers.get(event, ()):
            try:
                await handler(shoal, *args)
            except Exception:
                log.exception("%s handler %s failed", event, getattr(handler, "__qualname__", handler))


def build_surface(extensions: Iterable[str] = EXTENSIONS) -> Surface:
    """A Surface with the core's modules (:data:`CORE`) and every package of ``extensions``
    installed (their ``install(surface)``)."""
    surface = Surface()
    for name in (*CORE, *extensions):
        install = getattr(importlib.import_module(name), "install", None)
        if install is not None:
            install(surface)
    return surface

"""Federation's own tables in one Shoal: the inbox routing table, the follow-accepted hooks and
the sources of an actor's outbox.

:func:`federation.install` builds one :class:`Tables` per Shoal surface and keeps it under
``surface.packages["federation"]``; the handler modules add their routes explicitly
(``install_routes(tables)``), so importing a module registers nothing and two Shoals in one
process never share a table. :func:`tables_of` finds a Shoal's tables.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from instance.core import Shoal
    from instance.models import Actor

    from .collections import OutboxSource

PACKAGE = "federation"

# An inbox handler: (shoal, activity, verified stored sender).
Handler = Callable[["Shoal", dict[str, Any], "Actor"], Awaitable[None]]
# Called after a Follow we sent to a remote actor is accepted: (shoal, follower, target).
FollowAccepted = Callable[["Shoal", "Actor", "Actor"], Awaitable[None]]


@dataclass
class Tables:
    """What federation looks up per Shoal (see :mod:`federation.routing` for how routes match)."""

    routes: dict[tuple[str, str | None], Handler] = field(default_factory=dict)
    on_follow_accepted: list[FollowAccepted] = field(default_factory=list)
    # Concatenated in order to make an actor's outbox.
    outbox_sources: list[OutboxSource] = field(default_factory=list)

    def route(self, activity_type: str, handler: Handler, *, object_type: str | None = None) -> None:
        """Route ``activity_type`` (with an object of ``object_type``, or any) to ``handler``."""
        self.routes[(activity_type, object_type)] = handler


def tables_of(shoal: Shoal) -> Tables:
    """The federation tables of ``shoal`` (installed into its surface by :func:`federation.install`)."""
    try:
        return shoal.ext.packages[PACKAGE]
    except KeyError:
        raise LookupError("federation is not installed in this Shoal's surface") from None

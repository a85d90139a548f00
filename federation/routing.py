"""The routing table of incoming activities: small handlers keyed by activity and object type.

``register("Create", handler, object_type="Video")``; a handler is
``async (shoal, activity, actor)`` where ``actor`` is the verified, stored sender. For
``Undo`` the object type is the undone activity's type. The most specific handler wins
(activity + object type, then activity alone); unknown types are logged and ignored.
Handlers run from the durable ``inbox`` job. A Create or Update whose object lives on
another host than its sender is refused here, for every object type.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from instance.core import Shoal
    from instance.models import Actor

log = logging.getLogger("shoal.federation.routing")

Handler = Callable[["Shoal", dict[str, Any], "Actor"], Awaitable[None]]
FollowAccepted = Callable[["Shoal", "Actor", "Actor"], Awaitable[None]]

ROUTES: dict[tuple[str, str | None], Handler] = {}

# Modules whose import registers handlers; every process that runs ``inbox`` jobs imports
# them before dispatching (append yours).
HANDLER_MODULES: list[str] = ["federation.follows", "federation.cachefile"]

# Called after a Follow we sent to a remote actor is accepted: (shoal, follower, target).
ON_FOLLOW_ACCEPTED: list[FollowAccepted] = []


def register(activity_type: str, handler: Handler, *, object_type: str | None = None) -> None:
    """Route ``activity_type`` (with an object of ``object_type``, or any) to ``handler``."""
    ROUTES[(activity_type, object_type)] = handler


def object_type_of(activity: dict[str, Any]) -> str | None:
    """The type of an activity's embedded object, or None when the object is only a URL."""
    obj = activity.get("object")
    if isinstance(obj, list) and obj:
        obj = obj[0]
    if isinstance(obj, dict):
        kind = obj.get("type")
        if isinstance(kind, list):
            kind = kind[0] if kind else None
        return kind if isinstance(kind, str) else None
    return None


def load_handlers() -> None:
    """Import :data:`HANDLER_MODULES` so their handlers are registered in this process."""
    for name in HANDLER_MODULES:
        importlib.import_module(name)


def handler_for(activity: dict[str, Any]) -> Handler | None:
    """The most specific handler of an activity, or None."""
    kind = activity.get("type")
    if isinstance(kind, list):
        kind = kind[0] if kind else None
    if not isinstance(kind, str):
        return None
    object_type = object_type_of(activity)
    return ROUTES.get((kind, object_type)) or ROUTES.get((kind, None))


def _foreign_object(activity: dict[str, Any], actor: Actor) -> str | None:
    """The id of an object a Create or Update carries when it lives on another host than its
    sender: nobody creates or edits another instance's objects (id squatting)."""
    if activity.get("type") not in ("Create", "Update"):
        return None
    obj = activity.get("object")
    ident = obj.get("id") if isinstance(obj, dict) else None
    if not isinstance(ident, str) or urlsplit(ident).netloc.lower() == urlsplit(actor.ap_id).netloc.lower():
        return None
    return ident


async def dispatch(shoal: Shoal, activity: dict[str, Any], actor: Actor) -> bool:
    """Apply one verified activity; returns False when no handler knows it (logged, ignored)."""
    load_handlers()
    squatted = _foreign_object(activity, actor)
    if squatted is not None:
        log.info("refusing %s of %s from %s: the object is not on its host", activity.get("type"),
                 squatted, actor.ap_id)  # fmt: skip
        return False
    handler = handler_for(activity)
    if handler is None:
        log.info(
            "ignoring %s (%s) from %s: no handler",
            activity.get("type"),
            object_type_of(activity),
            actor.ap_id,
        )
        return False
    await handler(shoal, activity, actor)
    return True

"""The routing table of incoming activities: small handlers keyed by activity and object type.

Each Shoal has its own table (:class:`~.tables.Tables`, filled by the handler modules'
``install_routes(tables)`` from :func:`federation.install`): ``tables.route("Create", handler,
object_type="Video")``; a handler is ``async (shoal, activity, actor)`` where ``actor`` is the
verified, stored sender. For
``Undo`` the object type is the undone activity's type. The most specific handler wins
(activity + object type, then activity alone); unknown types are logged and ignored.
Handlers run from the durable ``inbox`` job. A Create or Update whose object lives on
another host than its sender is refused here, for every object type.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from instance.core import Shoal
    from instance.models import Actor

from .ap import host_of
from .tables import Handler, Tables, tables_of

log = logging.getLogger("shoal.federation.routing")


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


def handler_for(tables: Tables, activity: dict[str, Any]) -> Handler | None:
    """The most specific handler of an activity in ``tables``, or None."""
    kind = activity.get("type")
    if isinstance(kind, list):
        kind = kind[0] if kind else None
    if not isinstance(kind, str):
        return None
    object_type = object_type_of(activity)
    return tables.routes.get((kind, object_type)) or tables.routes.get((kind, None))


def _foreign_object(activity: dict[str, Any], actor: Actor) -> str | None:
    """The id of an object a Create or Update carries when it lives on another host than its
    sender: nobody creates or edits another instance's objects (id squatting)."""
    if activity.get("type") not in ("Create", "Update"):
        return None
    obj = activity.get("object")
    ident = obj.get("id") if isinstance(obj, dict) else None
    if not isinstance(ident, str) or host_of(ident) == host_of(actor.ap_id):
        return None
    return ident


async def dispatch(shoal: Shoal, activity: dict[str, Any], actor: Actor) -> bool:
    """Apply one verified activity; returns False when no handler knows it (logged, ignored)."""
    squatted = _foreign_object(activity, actor)
    if squatted is not None:
        log.info("refusing %s of %s from %s: the object is not on its host", activity.get("type"),
                 squatted, actor.ap_id)  # fmt: skip
        return False
    handler = handler_for(tables_of(shoal), activity)
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

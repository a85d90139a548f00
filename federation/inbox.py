"""The inbox only accepts (STYLE 9): size cap, parse, verify, check actor = signer, store, 202.

:func:`authenticate` does the checks of one inbox POST and :func:`store` keeps a durable
``inbox`` work row keyed by the activity id, so a duplicate that arrives while the first is
still waiting is stored once; applied rows are pruned after two days (:func:`prune_received`). The ``inbox``
job hands the activity to :mod:`federation.routing`. Every refusal raises
:class:`~federation.errors.SignatureError` (401) or :class:`InboxRefused` (400/413) with a
reason, is logged in one line, and stores nothing.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bovine.crypto.types import CryptographicIdentifier
from sqlalchemy import delete, or_, select, true

from instance import safejson
from instance.jobs import TryAgainLater, add_work, ring_item
from instance.jobs.rows import OPEN_STATES
from instance.models import WorkItem, WorkState, utcnow
from instance.safejson import TooDeep

from .actors import actor_by_ap_id, resolve_actor
from .ap import host_of, id_of, is_local_url
from .errors import FederationError, FetchError, SignatureError
from .http import fetch_json
from .routing import dispatch
from .signatures import identity_from_pem, verify_request

if TYPE_CHECKING:
    from instance.core import Shoal
    from instance.models import Actor

log = logging.getLogger("shoal.federation.inbox")

KIND = "inbox"
MAX_BODY = 1024 * 1024
APPLIED_RETENTION = timedelta(days=2)
FAILED_RETENTION = timedelta(days=30)
PRUNE_EVERY = 3600.0


class InboxRefused(FederationError):
    """The POST is not an activity we can take (bad JSON, too large); ``status`` is 400 or 413."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class Ignored(FederationError):
    """A POST answered 202 that needs nothing stored (the Delete of an actor we never knew)."""


def dedupe_key(activity_id: str) -> str:
    """The work row key of an activity: its id, hashed to fit the column."""
    return "inbox:" + hashlib.sha256(activity_id.encode()).hexdigest()


def key_retriever(shoal: Shoal):
    """Look a keyId up: the actor (by URL without fragment, or ``acct:``), stored or fetched.

    With ``refresh`` the actor is fetched again, for keys that were rotated.
    """

    async def retrieve(key_id: str, refresh: bool) -> CryptographicIdentifier | None:
        uri = key_id.split("#", 1)[0]
        try:
            actor = await resolve_actor(shoal, uri, refresh=refresh and not is_local_url(shoal, uri))
        except FetchError as exc:
            log.info("key %s not retrieved: %s", key_id, exc.reason)
            return None
        if not actor.public_key_pem:
            return None
        return identity_from_pem(actor.public_key_pem, actor.ap_id)

    return retrieve


def parse_activity(body: bytes) -> dict[str, Any]:
    """The activity of a POST body: a JSON object with a type and an actor."""
    try:
        activity = safejson.loads(body)
    except TooDeep as exc:
        raise InboxRefused(str(exc)) from None
    except (ValueError, UnicodeDecodeError):
        raise InboxRefused("the body is not JSON") from None
    if not isinstance(activity, dict) or not isinstance(activity.get("type"), str | list):
        raise InboxRefused("the body is not an activity (a JSON object with a type)")
    if id_of(activity.get("actor")) is None:
        raise InboxRefused("the activity has no actor")
    return activity


async def authenticate(
    shoal: Shoal,
    *,
    method: str,
    path_qs: str,
    headers: Any,
    body: bytes,
    now: datetime | None = None,
) -> tuple[dict[str, Any], Actor]:
    """Verify an inbox POST; return the activity to trust and its (stored) actor.

    The signature must verify with the key of its keyId's actor. When that signer is not
    the activity's actor (a forwarded activity), the activity is fetched from its origin
    by id and trusted only if the origin serves it with the same actor.
    """
    activity = parse_activity(body)
    actor_id = id_of(activity.get("actor"))
    assert actor_id is not None
    try:
        signer = await verify_request(method, path_qs, headers, body, key_retriever(shoal), now=now)
    except SignatureError:
        # A deleted account announces its own Delete; once gone its key cannot be fetched.
        # When we never stored it there is nothing to delete: say so, so the sender stops
        # retrying (PeerTube answers such Deletes with a 2xx too).
        if activity.get("type") == "Delete" and id_of(activity.get("object")) == actor_id:
            if await actor_by_ap_id(shoal, actor_id) is None:
                raise Ignored(f"Delete of {actor_id}, an actor never known here") from None
        raise
    if actor_id != signer:
        activity = await _from_origin(shoal, activity, actor_id, signer)
    activity_id = id_of(activity)
    if activity_id is not None and host_of(activity_id) != host_of(actor_id):
        raise SignatureError("the activity id is not on its actor's host")
    if is_local_url(shoal, actor_id):
        raise SignatureError("an activity of a local actor cannot come from outside")
    actor = await actor_by_ap_id(shoal, actor_id)
    if actor is None:
        try:
            actor = await resolve_actor(shoal, actor_id)
        except FetchError as exc:
            raise SignatureError(f"the actor {actor_id} cannot be fetched: {exc.reason}") from None
    return activity, actor


async def _from_origin(shoal: Shoal, activity: dict[str, Any], actor_id: str, signer: str) -> dict[str, Any]:
    activity_id = id_of(activity)
    if activity_id is None or host_of(activity_id) != host_of(actor_id) or is_local_url(shoal, activity_id):
        raise SignatureError(f"signed by {signer}, not by the activity's actor {actor_id}")
    try:
        fetched = await fetch_json(shoal, activity_id)
    except FetchError as exc:
        raise SignatureError(
            f"signed by {signer}, not by the activity's actor, and its origin does not serve it: {exc.reason}"
        ) from None
    if id_of(fetched) != activity_id or id_of(fetched.get("actor")) != actor_id:
        raise SignatureError(f"signed by {signer}, and the origin's copy differs")
    return fetched


async def store(shoal: Shoal, activity: dict[str, Any], actor: Actor, *, signature: str = "") -> bool:
    """Store a verified activity as an ``inbox`` work row; False when the same id is still
    waiting to be applied (a sender's retry of a POST whose answer it missed), or when an
    activity without an id comes again with the same signature (a replayed request).

    An id that was already applied is taken again: ids repeat legitimately. PeerTube's Follow
    is ``<follower>/follows/<target>`` on every re-follow, its Like ``<account>/likes/<video>``
    on every like, and their Undos add ``/undo``, so Follow, Undo, Follow must all apply.
    Every handler is idempotent, and the signature's freshness bounds a replay. An activity
    without an id (a Flag, say) is known by its request's signature instead, refused again
    for as long as rows are kept (longer than any signature stays fresh).
    """
    activity_id = id_of(activity)
    if activity_id:
        key, still = dedupe_key(activity_id), WorkItem.state.in_(OPEN_STATES)
    else:
        key, still = "inbox-sig:" + hashlib.sha256(signature.encode()).hexdigest(), true()
    async with shoal.db.write() as session:
        if await session.scalar(select(WorkItem.id).where(WorkItem.dedupe_key == key, still)):
            return False
        item = await add_work(
            shoal,
            session,
            KIND,
            (activity_id or "")[:2000],
            payload={"activity": activity, "actor": actor.ap_id},
            dedupe_key=key,
        )
    await ring_item(shoal, item)
    return True


async def prune_received(shoal: Shoal, *, now: datetime | None = None) -> int:
    """Delete applied ``inbox`` rows after :data:`APPLIED_RETENTION` and failed ones after
    :data:`FAILED_RETENTION` (an admin may still look at why); returns how many went."""
    now = now or utcnow()
    async with shoal.db.write() as session:
        done = await session.execute(
            delete(WorkItem).where(
                WorkItem.kind == KIND,
                or_(
                    (WorkItem.state == WorkState.SUCCEEDED)
                    & (WorkItem.state_changed_at < now - APPLIED_RETENTION),
                    (WorkItem.state == WorkState.FAILED)
                    & (WorkItem.state_changed_at < now - FAILED_RETENTION),
                ),
            )
        )
    if done.rowcount:
        log.info("pruned %d received activities", done.rowcount)
    return done.rowcount or 0


async def handle_inbox(shoal: Shoal, item: WorkItem) -> None:
    """Apply one stored activity through the routing table."""
    actor = await actor_by_ap_id(shoal, item.payload["actor"])
    if actor is None:
        actor = await resolve_actor(shoal, item.payload["actor"])
    try:
        await dispatch(shoal, item.payload["activity"], actor)
    except FetchError as exc:
        raise TryAgainLater(f"{exc.url}: {exc.reason}") from None


"""Actors on the wire: our actor documents, and remote actors resolved, stored and refreshed.

Local actors (accounts as ``Person``, channels as ``Group``, the instance as the
``Application`` actor ``peertube``, PeerTube's name for it) are rendered by
:func:`actor_to_ap`. Remote actors are found by URL or by ``name@host`` through WebFinger,
fetched with a signed GET, checked (the id lives on the host it was fetched from, the key
belongs to the actor) and stored with their public key; a stored actor is refreshed when
older than :data:`REFRESH_AFTER`.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from instance.models import Actor, ActorKind, utcnow
from instance.models.actor import handle_key

from .ap import host_of, is_local_url
from .errors import FetchError, Gone, Invalid
from .http import fetch_json, fetch_plain_json

if TYPE_CHECKING:
    from instance.core import Shoal

log = logging.getLogger("shoal.federation.actors")

REFRESH_AFTER = timedelta(days=2)
AS_PUBLIC = "https://www.w3.org/ns/activitystreams#Public"

# The @context of every document we send: ActivityStreams, the security vocabulary and
# PeerTube's extension terms for actors (notes/peertube.md §3.4).
CONTEXT: list[Any] = [
    "https://www.w3.org/ns/activitystreams",
    "https://w3id.org/security/v1",
    {
        "RsaSignature2017": "https://w3id.org/security#RsaSignature2017",
        "pt": "https://joinpeertube.org/ns#",
        "sc": "http://schema.org/",
        "playlists": {"@id": "pt:playlists", "@type": "@id"},
        "support": {"@type": "sc:Text", "@id": "pt:support"},
        "lemmy": "https://join-lemmy.org/ns#",
        "postingRestrictedToMods": "lemmy:postingRestrictedToMods",
    },
]

_AP_KINDS = {
    "Person": ActorKind.PERSON,
    "Service": ActorKind.PERSON,
    "Organization": ActorKind.PERSON,
    "Group": ActorKind.GROUP,
    "Application": ActorKind.APPLICATION,
}


def _image(url: str | None) -> list[dict[str, Any]] | None:
    if not url:
        return None
    return [{"type": "Image", "url": url}]


def actor_to_ap(shoal: Shoal, actor: Actor) -> dict[str, Any]:
    """The ActivityPub document of a local actor (a Group's ``owner`` must be loaded)."""
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "type": str(actor.kind),
        "id": actor.ap_id,
        "url": actor.ap_id,
        "preferredUsername": actor.preferred_username,
        "name": actor.display_name or actor.preferred_username,
        "summary": actor.summary or None,
        "inbox": actor.inbox_url,
        "outbox": actor.outbox_url,
        "followers": actor.followers_url,
        "following": actor.following_url,
        "playlists": actor.ap_id + "/playlists",
        "endpoints": {"sharedInbox": actor.shared_inbox_url or shoal.url("/inbox")},
        "publicKey": {
            "id": actor.ap_id + "#main-key",
            "owner": actor.ap_id,
            "publicKeyPem": actor.public_key_pem,
        },
        "published": actor.created_at.isoformat().replace("+00:00", "Z"),
        "manuallyApprovesFollowers": False,
    }
    icon = _image(actor.avatar_url)
    if icon:
        doc["icon"] = icon
    banner = _image(actor.banner_url)
    if banner:
        doc["image"] = banner
    if actor.support:
        doc["support"] = actor.support
    if actor.kind == ActorKind.GROUP:
        owner = actor.__dict__.get("owner")
        if owner is not None:
            doc["attributedTo"] = [{"type": "Person", "id": owner.ap_id}]
        doc["postingRestrictedToMods"] = True
    return doc


# ---------------------------------------------------------------- resolving remote actors


def split_handle(uri: str) -> tuple[str, str] | None:
    """``(name, host)`` of ``name@host``, ``@name@host`` or ``acct:name@host``; None for URLs."""
    text = uri.strip()
    if text.startswith(("http://", "https://")):
        return None
    text = text.removeprefix("acct:").lstrip("@")
    name, sep, host = text.rpartition("@")
    if not sep or not name or not host or "/" in host or "@" in name:
        raise Invalid(uri, "not a handle (name@host) nor an actor URL")
    return name, host.lower()


async def _stored(
    shoal: Shoal, *, ap_id: str | None = None, handle: tuple[str, str] | None = None
) -> Actor | None:
    async with shoal.db.read() as session:
        query = select(Actor).options(joinedload(Actor.owner))
        if ap_id is not None:
            query = query.where(Actor.ap_id == ap_id)
        else:
            assert handle is not None
            query = query.where(Actor.handle_key == handle_key(*handle))
        actor = await session.scalar(query)
        if actor is not None:
            session.expunge_all()
        return actor


async def find_local(shoal: Shoal, name: str) -> Actor | None:
    """The local account, channel or Application actor called ``name`` (one name space)."""
    async with shoal.db.read() as session:
        actor = await session.scalar(
            select(Actor)
            .options(joinedload(Actor.owner))
            .where(Actor.host.is_(None), func.lower(Actor.preferred_username) == name.lower())
            .order_by(Actor.kind.desc())
        )
        if actor is not None:
            session.expunge_all()
        return actor


def _fresh(actor: Actor) -> bool:
    return actor.fetched_at is not None and utcnow() - actor.fetched_at < REFRESH_AFTER


def _schemes(shoal: Shoal, host: str) -> list[str]:
    # Allowlisted hosts are development and test peers, which usually speak plain http.
    bare = urlsplit("//" + host).hostname or host
    if bare in shoal.settings.allow_hosts or host in shoal.settings.allow_hosts:
        return ["http", "https"]
    return ["https"]


async def webfinger(shoal: Shoal, name: str, host: str) -> str:
    """The actor URL of ``name@host`` from the host's WebFinger (RFC 7033)."""
    resource = quote(f"acct:{name}@{host}", safe=":@")
    error: FetchError | None = None
    for scheme in _schemes(shoal, host):
        url = f"{scheme}://{host}/.well-known/webfinger?resource={resource}"
        try:
            jrd = await fetch_plain_json(shoal, url, accept="application/jrd+json, application/json")
        except (Gone, Invalid):
            raise  # the host answered: no other scheme will know better
        except FetchError as exc:
            error = exc
            continue
        for link in jrd.get("links") or []:
            if (
                isinstance(link, dict)
                and link.get("rel") == "self"
                and isinstance(link.get("href"), str)
                and (link.get("type") or "").split(";")[0].strip()
                in ("application/activity+json", "application/ld+json")
            ):
                return link["href"]
        raise Invalid(url, "the WebFinger answer has no ActivityPub self link")
    assert error is not None
    raise error


async def resolve_actor(shoal: Shoal, uri: str, *, refresh: bool = False) -> Actor:
    """The actor named by an actor URL or a ``name@host`` handle, detached from any session.

    Local actors come from the database. A remote actor is fetched (signed GET) and stored
    or refreshed when unknown, older than :data:`REFRESH_AFTER`, or ``refresh`` is set.
    Raises :class:`~federation.errors.FetchError` (or a subclass) when it cannot be found.
    """
    handle = split_handle(uri)
    if handle is not None:
        name, host = handle
        if host == shoal.settings.public_host.lower():
            actor = await find_local(shoal, name)
            if actor is None:
                raise _not_found(uri)
            return actor
        actor = await _stored(shoal, handle=handle)
        if actor is not None and _fresh(actor) and not refresh:
            return actor
        url = actor.ap_id if actor is not None else await webfinger(shoal, name, host)
    else:
        url = uri.strip()
        if is_local_url(shoal, url):
            actor = await _stored(shoal, ap_id=url.split("#")[0])
            if actor is None or not actor.is_local:
                raise _not_found(uri)
            return actor
        actor = await _stored(shoal, ap_id=url.split("#")[0])
        if actor is not None and _fresh(actor) and not refresh:
            return actor
    return await fetch_actor(shoal, url)


def _not_found(uri: str) -> FetchError:
    return Gone(uri, "no such actor on this instance")


async def fetch_actor(shoal: Shoal, url: str, *, depth: int = 0) -> Actor:
    """Fetch the actor document at ``url`` and store it (insert or refresh)."""
    doc = await fetch_json(shoal, url)
    fields = parse_actor(url, doc)
    owner_id = None
    if fields["kind"] == ActorKind.GROUP and fields.pop("owner_url", None) and depth == 0:
        owner_url = doc_owner(doc)
        if owner_url and owner_url != fields["ap_id"]:
            try:
                owner_id = (await fetch_or_stored(shoal, owner_url)).id
            except FetchError as exc:
                log.info("owner %s of channel %s not resolved: %s", owner_url, fields["ap_id"], exc.reason)
    fields.pop("owner_url", None)
    return await store_actor(shoal, fields, owner_id=owner_id)


async def fetch_or_stored(shoal: Shoal, url: str) -> Actor:
    """A stored actor if fresh, else fetched (one level only: no owner recursion)."""
    actor = await _stored(shoal, ap_id=url)
    if actor is not None and _fresh(actor):
        return actor
    return await fetch_actor(shoal, url, depth=1)


def doc_owner(doc: dict[str, Any]) -> str | None:
    """The account a Group is attributed to (PeerTube: a list of ``{type: Person, id}``)."""
    attributed = doc.get("attributedTo")
    items = attributed if isinstance(attributed, list) else [attributed]
    for item in items:
        if isinstance(item, str):
            return item
        if (
            isinstance(item, dict)
            and item.get("type", "Person") == "Person"
            and isinstance(item.get("id"), str)
        ):
            return item["id"]
    return None


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _url_of(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("url") or value.get("href")
        if isinstance(value, list | dict):
            return _url_of(value)
    return value if isinstance(value, str) and value.startswith(("http://", "https://")) else None


def parse_actor(fetched_from: str, doc: dict[str, Any]) -> dict[str, Any]:
    """Check a remote actor document and return the column values to store.

    The actor's id must be on the host it was fetched from; its inbox and key too; the
    key's owner must be the actor. Raises :class:`Invalid` otherwise.
    """
    ap_id = doc.get("id")
    kind = _AP_KINDS.get(doc.get("type")) if isinstance(doc.get("type"), str) else None
    if not isinstance(ap_id, str) or kind is None:
        raise Invalid(fetched_from, "not an actor document (id and a Person/Group/Application type)")
    host = host_of(ap_id)
    if host != host_of(fetched_from):
        raise Invalid(fetched_from, f"the actor id {ap_id} is not on the host it was fetched from")
    name = doc.get("preferredUsername")
    inbox = doc.get("inbox")
    if not isinstance(name, str) or not name or not isinstance(inbox, str) or host_of(inbox) != host:
        raise Invalid(fetched_from, "the actor has no preferredUsername or no inbox on its host")
    key = doc.get("publicKey")
    if isinstance(key, list):
        key = next((k for k in key if isinstance(k, dict)), None)
    pem = None
    if isinstance(key, dict) and isinstance(key.get("publicKeyPem"), str):
        if key.get("owner", ap_id) != ap_id:
            raise Invalid(fetched_from, "the actor's public key belongs to another actor")
        pem = key["publicKeyPem"]
    endpoints = doc.get("endpoints") if isinstance(doc.get("endpoints"), dict) else {}
    shared = endpoints.get("sharedInbox")

    def same_host(value: Any) -> str | None:
        return value if isinstance(value, str) and host_of(value) == host else None

    return {
        "kind": kind,
        "preferred_username": name[:100],
        "host": host,
        "ap_id": ap_id,
        "inbox_url": inbox,
        "shared_inbox_url": same_host(shared),
        "outbox_url": same_host(doc.get("outbox")),
        "followers_url": same_host(doc.get("followers")),
        "following_url": same_host(doc.get("following")),
        "display_name": _text(doc.get("name"), 120) or name[:120],
        "summary": _text(doc.get("summary"), 5000),
        "support": _text(doc.get("support"), 1000),
        "public_key_pem": pem,
        "avatar_url": _url_of(doc.get("icon")),
        "banner_url": _url_of(doc.get("image")),
        "owner_url": doc_owner(doc) if kind == ActorKind.GROUP else None,
    }


async def store_actor(shoal: Shoal, fields: dict[str, Any], *, owner_id: int | None = None) -> Actor:
    """Insert or update a remote actor by id (or by handle, when its id changed)."""
    fields = {k: v for k, v in fields.items() if k != "owner_url"}
    for _ in range(2):
        try:
            async with shoal.db.write() as session:
                actor = await session.scalar(
                    select(Actor).where(
                        or_(
                            Actor.ap_id == fields["ap_id"],
                            Actor.handle_key == handle_key(fields["preferred_username"], fields["host"]),
                        )
                    )
                )
                if actor is not None and actor.is_local:
                    raise Invalid(fields["ap_id"], "a remote document claims a local actor")
                if actor is None:
                    actor = Actor(**fields)
                    session.add(actor)
                else:
                    for name, value in fields.items():
                        setattr(actor, name, value)
                    actor.handle_key = handle_key(actor.preferred_username, actor.host)
                if owner_id is not None:
                    actor.owner_id = owner_id
                actor.fetched_at = utcnow()
                await session.flush()
                actor_id = actor.id
            break
        except IntegrityError:
            # Two processes stored the same actor at once; the second pass updates it.
            continue
    async with shoal.db.read() as session:
        stored = await session.scalar(
            select(Actor).options(joinedload(Actor.owner)).where(Actor.id == actor_id)
        )
        assert stored is not None
        session.expunge_all()
        return stored


async def actor_by_ap_id(shoal: Shoal, ap_id: str) -> Actor | None:
    """A stored actor by its ActivityPub id, detached, owner loaded."""
    return await _stored(shoal, ap_id=ap_id)

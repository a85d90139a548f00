"""WebFinger (RFC 7033) and host-meta (RFC 6415) for local accounts, channels and the instance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from .actors import find_local
from .ap import is_local_url

if TYPE_CHECKING:
    from instance.core import Shoal
    from instance.models import Actor

JRD_TYPE = "application/jrd+json"


class NotHere(LookupError):
    """The resource is not a local actor (404), or not something WebFinger answers (400)."""

    def __init__(self, reason: str, status: int = 404) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


async def _actor_of(shoal: Shoal, resource: str) -> Actor:
    host = shoal.settings.public_host.lower()
    if resource.startswith("acct:"):
        name, sep, where = resource[5:].lstrip("@").rpartition("@")
        if not sep or not name:
            raise NotHere("an acct: resource is acct:name@host", 400)
        if where.lower() != host:
            raise NotHere(f"{where} is not this instance")
        actor = await find_local(shoal, name)
    elif is_local_url(shoal, resource):
        from .actors import actor_by_ap_id

        actor = await actor_by_ap_id(shoal, resource)
        if actor is not None and not actor.is_local:
            actor = None
    else:
        raise NotHere("the resource is neither acct:name@host nor a URL of this instance", 400)
    if actor is None:
        raise NotHere(f"no actor {resource}")
    return actor


async def webfinger(shoal: Shoal, resource: str) -> dict[str, Any]:
    """The JRD of a local account, channel or the Application actor (``peertube@host``)."""
    actor = await _actor_of(shoal, resource.strip())
    return {
        "subject": f"acct:{actor.preferred_username}@{shoal.settings.public_host}",
        "aliases": [actor.ap_id],
        "links": [
            {"rel": "self", "type": "application/activity+json", "href": actor.ap_id},
            {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html", "href": actor.ap_id},
            {
                "rel": "http://ostatus.org/schema/1.0/subscribe",
                "template": shoal.url("/remote-interaction?uri={uri}"),
            },
        ],
    }


def host_meta(shoal: Shoal) -> str:
    """The XRD pointing at our WebFinger endpoint."""
    template = escape(shoal.url("/.well-known/webfinger?resource={uri}"), {'"': "&quot;"})
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
        f'  <Link rel="lrdd" type="application/jrd+json" template="{template}"/>\n'
        "</XRD>\n"
    )

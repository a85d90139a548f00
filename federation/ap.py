"""Small readings of ActivityPub values, one copy for every federation module.

Received documents are hostile until checked: a value may be a string, an object, a list, a
number or missing. These helpers never raise on any JSON shape. (bovine's ``id_for_object``
and ``as_list`` assume well-formed input: a list or a number in ``object`` raises there, and
``as_list(None)`` is ``[None]``.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from instance.core import Shoal

MAX_URL = 2000


def id_of(value: Any) -> str | None:
    """The id a value names: the string itself, or an object's string ``id``."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else None


def host_of(url: str | None) -> str:
    """``host[:port]`` of a URL, lowercased ('' for none): what a remote actor's ``host`` holds."""
    return urlsplit(url or "").netloc.lower()


def same_host(url: str | None, other: str | None) -> bool:
    """Both URLs are given and live on one host."""
    return bool(url) and bool(other) and host_of(url) == host_of(other)


def is_url(value: Any) -> bool:
    """An http(s) URL with a host, of at most :data:`MAX_URL` characters."""
    if not isinstance(value, str) or len(value) > MAX_URL:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def as_list(value: Any) -> list[Any]:
    """A value as a list: itself if a list, ``[]`` if absent, else ``[value]``."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def is_local_url(shoal: Shoal, url: str) -> bool:
    """True when ``url`` is on this instance's public origin."""
    base = shoal.settings.public_url.rstrip("/")
    return url == base or url.startswith(base + "/")

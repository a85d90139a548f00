"""Values tested as PeerTube 6.3 tests them: the generic validators its receiving code calls.

The helpers of :mod:`federation.conformance`, restated from validator.js and PeerTube's
``custom-validators`` (``misc.ts``, ``videos.ts``, ``activitypub/misc.ts``). They model
PeerTube's rules on purpose, so they are not :mod:`federation.ap`'s readings: ``url_host``
is ``new URL(url).host`` (no default port), ``is_url`` checks the host's labels, and
``list_or_empty`` takes a non-list as empty where ``ap.as_list`` wraps it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

VIDEO_FILE_TYPES = ("video/mp4", "video/ogg", "video/webm", "audio/mp4")
INTEGER = re.compile(r"[-+]?[0-9]+")
_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", re.I)
# validator.js isISO8601, not strict: a year, then optionally a calendar, week or ordinal date
# (extended or basic form), a time with a fraction, a zone. Days are not checked against months.
_DATE = re.compile(
    r"[+-]?\d{4}(?!\d{2}\b)"
    r"((?P<ds>-?)((0[1-9]|1[0-2])((?P=ds)([12]\d|0[1-9]|3[01]))?|W([0-4]\d|5[0-3])(-?[1-7])?"
    r"|(00[1-9]|0[1-9]\d|[12]\d\d|3([0-5]\d|6[1-6])))"
    r"([T\s]((([01]\d|2[0-3])((?P<ts>:?)[0-5]\d)?|24:?00)([.,]\d+(?!:))?)?((?P=ts)[0-5]\d([.,]\d+)?)?"
    r"([zZ]|[+-]([01]\d|2[0-3]):?([0-5]\d)?)?)?)?"
)
_LABEL = re.compile(r"[0-9a-z\u00a1-\uffff]([0-9a-z\u00a1-\uffff-]*[0-9a-z\u00a1-\uffff])?", re.I)


def js_length(value: str) -> int:
    """The length validator's isLength counts: code points, not the emoji presentation selectors."""
    return len(value) - value.count("\ufe0e") - value.count("\ufe0f")


def sized(low: int, high: int | None = None) -> Callable[[Any], bool]:
    """isLength; on anything but a string validator throws, which refuses the document too."""
    return lambda v: isinstance(v, str) and low <= js_length(v) and (high is None or js_length(v) <= high)


def is_url(value: Any) -> bool:
    """isActivityPubUrlValid: http(s), a host, 3–2000 characters, no blank or angle bracket."""
    if not sized(3, 2000)(value) or re.search(r"[\s<>]", value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port that is not a number in 0–65535
    except ValueError:
        return False
    host = parts.netloc.rpartition("@")[2]
    host = host if host.startswith("[") else host.split(":")[0]
    named = all(len(label) <= 63 and _LABEL.fullmatch(label) for label in host.split("."))
    return parts.scheme in ("http", "https") and bool(host) and (host.startswith("[") or named)


def url_host(url: str) -> str:
    """``new URL(url).host``: the host, and the port when not the scheme's default."""
    parts = urlsplit(url)
    port = parts.port if parts.port != {"http": 80, "https": 443}.get(parts.scheme) else None
    return (parts.hostname or "") + (f":{port}" if port else "")


def is_int(value: Any, low: int | None = None) -> bool:
    """validator's isInt of ``value + ''``: what JavaScript would print must be an integer."""
    value = int(value) if isinstance(value, float) and value.is_integer() else value
    text = value if isinstance(value, str) else str(value) if type(value) is int else ""
    return bool(INTEGER.fullmatch(text)) and (low is None or int(text) >= low)


def int_at_least(low: int) -> Callable[[Any], bool]:
    """A test: an integer (as :func:`is_int` reads it) of at least ``low``."""
    return lambda v: is_int(v, low)


def fits(pattern: re.Pattern[str], value: Any) -> bool:
    """A string that ``pattern`` matches whole."""
    return isinstance(value, str) and bool(pattern.fullmatch(value))


def is_date(value: Any) -> bool:
    """validator's isISO8601 (not strict)."""
    return fits(_DATE, value)


def is_uuid4(value: Any) -> bool:
    """validator's isUUID(4)."""
    return fits(_UUID4, value)


def is_ref(value: Any) -> bool:
    """isObjectValid: a URL, or an object whose id is one."""
    return is_url(value) or (isinstance(value, dict) and is_url(value.get("id")))


def is_duration(value: Any) -> bool:
    """isDurationValid: only the PT…S frame is checked, then its digits are read as one
    integer ("PT1M5S" → 15)."""
    return isinstance(value, str) and value[:2] == "PT" and value[-1:] == "S" and any(
        c in "0123456789" for c in value)  # fmt: skip


def optional(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """``test``, or null."""
    return lambda v: v is None or test(v)


def is_file_link(link: dict[str, Any]) -> bool:
    """A video file Link that survives the url filter (isRemoteVideoUrlValid)."""
    fps = link.get("fps")
    return link.get("type") == "Link" and link.get("mediaType") in VIDEO_FILE_TYPES and is_url(
        link.get("href")) and is_int(link.get("height"), 0) and is_int(link.get("size"), 0) and (
        not fps or is_int(fps, -1))  # fmt: skip


def is_icon(icon: Any) -> bool:
    """A JPEG Image with a URL, width and height (isActivityPubVideoThumbnailObjectValid)."""
    return isinstance(icon, dict) and icon.get("type") == "Image" and is_url(icon.get("url")) and icon.get(
        "mediaType") == "image/jpeg" and is_int(icon.get("width"), 0) and is_int(
        icon.get("height"), 0)  # fmt: skip


def file_links(links: list[tuple[int, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """The ``(index, link)`` pairs of video file links (by media type) among ``links``."""
    return [(i, f) for i, f in links if isinstance(f, dict) and f.get("mediaType") in VIDEO_FILE_TYPES]


def ident_of(value: Any) -> str | None:
    """The string ``identifier`` of a category, licence or language object, if it has one."""
    ident = value.get("identifier") if isinstance(value, dict) else None
    return ident if isinstance(ident, str) else None


def attributed_to(value: Any, kind: str) -> tuple[bool, list[str]]:
    """setValidAttributedTo keeps URLs and {type: Group/Person, id: URL}: whether any is left,
    and those that may be a ``kind`` (a bare URL may be anything: PeerTube fetches it)."""
    kept = [a for a in list_or_empty(value) if is_url(a) or (
        isinstance(a, dict) and a.get("type") in ("Group", "Person") and is_url(a.get("id")))]  # fmt: skip
    return bool(kept), [a if isinstance(a, str) else a["id"] for a in kept if (
        isinstance(a, str) or a["type"] == kind)]  # fmt: skip


def magnet_hash_ok(href: Any) -> bool | None:
    """False: no readable infohash (urn:btih: and 40 hex or 32 base32 characters, as magnet-uri
    reads it, skipping pairs with two "="); None: readable but no ``xs``; True: both."""
    pairs = [p.split("=") for p in str(href).partition("magnet:?")[2].split("&")]
    values = [(p[0], p[1]) for p in pairs if len(p) == 2]
    hashes = [v[len("urn:btih:") :] for k, v in values if k == "xt" and v.startswith("urn:btih:")]
    if not any(len(h) >= 40 or re.fullmatch(r"[A-Za-z2-7]{32}", h[:32]) for h in hashes):
        return False
    return True if any(k == "xs" and v for k, v in values) else None


def list_or_empty(value: Any) -> list[Any]:
    """A list as it is, anything else as empty (PeerTube skips what is not an array)."""
    return value if isinstance(value, list) else []

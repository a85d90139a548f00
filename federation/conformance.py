"""Does PeerTube take it? Outgoing ActivityPub documents checked against PeerTube 6.3's rules.

One place that says, field by field, why a PeerTube 6.3 instance would turn down a document
Shoal sends: :func:`problems` lists every broken rule as a sentence naming the JSON path and
what follows (PeerTube refuses the object or the activity, or takes it and then fails or
loses something); :func:`check` raises :class:`Nonconforming` with them. Tests run it on the
documents Shoal builds, so a shape PeerTube would refuse fails a test, not a delivery.

The rules are PeerTube 6.3's receiving code, restated: the inbox filter (``isActivityValid``
and the per-type checks in ``custom-validators/activitypub/activity.ts``), the objects'
sanitize-then-check functions (``activitypub/videos.ts``, ``video-comments.ts``,
``actor.ts``, ``cache-file.ts``, ``playlist.ts``, ``watch-action.ts``, helpers in
``activitypub/misc.ts``), the generic validators they call (``custom-validators/videos.ts``,
``video-channels.ts``, ``abuses.ts``, ``video-playlists.ts``, ``misc.ts``) with their limits
(``CONSTRAINTS_FIELDS`` in ``initializers/constants.ts``), and the model validations and
processing steps that fail after the check passed. Sanitizing comes first there, so what it
repairs (bad booleans, states, hashtags, captions, over-long descriptions) is not reported;
what it silently drops is reported only when the loss breaks the video (a file link).
``isUrlValid`` is taken as in PeerTube's test mode: any http(s) URL with a host (IP hosts
and ports too), at most 2000 characters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Nonconforming", "check", "problems"]

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
ACTOR_TYPES = ("Application", "Group", "Organization", "Person", "Service")
VIDEO_FILE_TYPES = ("video/mp4", "video/ogg", "video/webm", "audio/mp4")
HLS = "application/x-mpegURL"
MAGNET = "application/x-bittorrent;x-scheme-handler/magnet"
# What Create, Update and Undo may carry (activity.ts); all three need the object itself.
_CARRIES = {
    "Create": ("Video", "Note", "Tombstone", "Playlist", "CacheFile", "WatchAction", "View", "Dislike",
               "Flag"),
    "Update": ("Video", "Playlist", "CacheFile", *ACTOR_TYPES),
    "Undo": ("Follow", "Like", "Dislike", "Announce", "Create"),
}

URL = "PeerTube takes an http(s) URL of at most 2000 characters"
REF = "PeerTube takes a URL or an object whose id is one"
DATE = "PeerTube takes an ISO 8601 date"
UUID = "PeerTube takes a version 4 UUID"

_MISSING: Any = object()
_INT = re.compile(r"[-+]?[0-9]+")
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
_USERNAME = re.compile(r"[A-Za-z0-9\-_.:]+")


class Nonconforming(ValueError):
    """A document PeerTube 6.3 would refuse (or take and then fail on); the message says why."""


def problems(doc: dict[str, Any]) -> list[str]:
    """Every PeerTube 6.3 rule ``doc`` breaks, one sentence each; ``[]`` when it conforms.

    Dispatches on ``type``: activities are checked with their embedded object, a string in
    the place of a document is checked as a URL.
    """
    report = _Report()
    report.document(doc, "")
    return report.found


def check(doc: dict[str, Any]) -> None:
    """Raise :class:`Nonconforming` listing the problems of ``doc``, if it has any."""
    found = problems(doc)
    if found:
        raise Nonconforming("\n".join(found))


# ---------------------------------------------------------------- values, tested as PeerTube does


def _length(value: str) -> int:
    # validator's isLength counts code points, not the emoji presentation selectors.
    return len(value) - value.count("\ufe0e") - value.count("\ufe0f")


def _len(low: int, high: int | None = None) -> Callable[[Any], bool]:
    """isLength; on anything but a string validator throws, which refuses the document too."""
    return lambda v: isinstance(v, str) and low <= _length(v) and (high is None or _length(v) <= high)


def _is_url(value: Any) -> bool:
    """isActivityPubUrlValid: http(s), a host, 3–2000 characters, no blank or angle bracket."""
    if not _len(3, 2000)(value) or re.search(r"[\s<>]", value):
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


def _host(url: str) -> str:
    """``new URL(url).host``: the host, and the port when not the scheme's default."""
    parts = urlsplit(url)
    port = parts.port if parts.port != {"http": 80, "https": 443}.get(parts.scheme) else None
    return (parts.hostname or "") + (f":{port}" if port else "")


def _is_int(value: Any, low: int | None = None) -> bool:
    """validator's isInt of ``value + ''``: what JavaScript would print must be an integer."""
    value = int(value) if isinstance(value, float) and value.is_integer() else value
    text = value if isinstance(value, str) else str(value) if type(value) is int else ""
    return bool(_INT.fullmatch(text)) and (low is None or int(text) >= low)


def _min(low: int) -> Callable[[Any], bool]:
    return lambda v: _is_int(v, low)


def _fits(pattern: re.Pattern[str], value: Any) -> bool:
    return isinstance(value, str) and bool(pattern.fullmatch(value))


def _is_date(value: Any) -> bool:
    return _fits(_DATE, value)


def _is_uuid4(value: Any) -> bool:
    return _fits(_UUID4, value)


def _is_ref(value: Any) -> bool:
    """isObjectValid: a URL, or an object whose id is one."""
    return _is_url(value) or (isinstance(value, dict) and _is_url(value.get("id")))


def _is_duration(value: Any) -> bool:
    # Only the PT…S frame is checked, then its digits read as one integer ("PT1M5S" → 15).
    return isinstance(value, str) and value[:2] == "PT" and value[-1:] == "S" and any(
        c in "0123456789" for c in value)  # fmt: skip


def _optional(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or test(v)


def _is_file_link(link: dict[str, Any]) -> bool:
    """A video file Link that survives the url filter (isRemoteVideoUrlValid)."""
    fps = link.get("fps")
    return link.get("type") == "Link" and link.get("mediaType") in VIDEO_FILE_TYPES and _is_url(
        link.get("href")) and _is_int(link.get("height"), 0) and _is_int(link.get("size"), 0) and (
        not fps or _is_int(fps, -1))  # fmt: skip


def _is_icon(icon: Any) -> bool:
    return isinstance(icon, dict) and icon.get("type") == "Image" and _is_url(icon.get("url")) and icon.get(
        "mediaType") == "image/jpeg" and _is_int(icon.get("width"), 0) and _is_int(
        icon.get("height"), 0)  # fmt: skip


def _files(links: list[tuple[int, Any]]) -> list[tuple[int, dict[str, Any]]]:
    return [(i, f) for i, f in links if isinstance(f, dict) and f.get("mediaType") in VIDEO_FILE_TYPES]


def _ident(value: Any) -> str | None:
    """The string ``identifier`` of a category, licence or language object, if it has one."""
    ident = value.get("identifier") if isinstance(value, dict) else None
    return ident if isinstance(ident, str) else None


def _attributed(value: Any, kind: str) -> tuple[bool, list[str]]:
    """setValidAttributedTo keeps URLs and {type: Group/Person, id: URL}: whether any is left,
    and those that may be a ``kind`` (a bare URL may be anything: PeerTube fetches it)."""
    kept = [a for a in _as_list(value) if _is_url(a) or (
        isinstance(a, dict) and a.get("type") in ("Group", "Person") and _is_url(a.get("id")))]  # fmt: skip
    return bool(kept), [a if isinstance(a, str) else a["id"] for a in kept if (
        isinstance(a, str) or a["type"] == kind)]  # fmt: skip


def _magnet_hash_ok(href: Any) -> bool | None:
    """False: no readable infohash (urn:btih: and 40 hex or 32 base32 characters, as magnet-uri
    reads it, skipping pairs with two "="); None: readable but no ``xs``; True: both."""
    pairs = [p.split("=") for p in str(href).partition("magnet:?")[2].split("&")]
    values = [(p[0], p[1]) for p in pairs if len(p) == 2]
    hashes = [v[len("urn:btih:") :] for k, v in values if k == "xt" and v.startswith("urn:btih:")]
    if not any(len(h) >= 40 or re.fullmatch(r"[A-Za-z2-7]{32}", h[:32]) for h in hashes):
        return False
    return True if any(k == "xs" and v for k, v in values) else None


def _show(value: Any) -> str:
    if value is _MISSING or not isinstance(value, str | list | dict):
        return "missing" if value is _MISSING else json.dumps(value)
    if isinstance(value, dict):
        return f"a {value['type']} object" if isinstance(value.get("type"), str) else "an object"
    if not value:
        return "an empty string" if isinstance(value, str) else "an empty list"
    if isinstance(value, list):
        return "a list"
    quoted = json.dumps(value, ensure_ascii=False)
    return quoted if len(quoted) <= 60 else f"{_length(value)} characters"


def _at(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else key


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# ---------------------------------------------------------------- the checks


class _Report:
    def __init__(self) -> None:
        self.found: list[str] = []

    def add(self, path: str, value: Any, rule: str, effect: str) -> None:
        self.found.append(f"{path or '(document)'}: {_show(value)}; {rule} ({effect})")

    def field(self, doc: dict[str, Any], path: str, key: str, test: Callable[[Any], bool], rule: str,
              effect: str) -> None:  # fmt: skip
        value = doc.get(key, _MISSING)
        if not test(None if value is _MISSING else value):  # absent and null are alike to PeerTube here
            self.add(_at(path, key), value, rule, effect)

    def document(self, doc: Any, path: str) -> None:
        if isinstance(doc, str):
            if not _is_url(doc):
                self.add(path, doc, URL, "PeerTube refuses the activity")
            return
        kind = doc.get("type") if isinstance(doc, dict) else None
        checker = _CHECKERS.get(kind) if isinstance(kind, str) else None
        if checker is None:
            value = doc.get("type", _MISSING) if isinstance(doc, dict) else doc
            self.add(_at(path, "type"), value, f"PeerTube takes {', '.join(_CHECKERS)}",
                     "PeerTube refuses it")  # fmt: skip
        else:
            checker(self, doc, path)

    # ------------------------------------------------------------ activities (activity.ts)

    def base(self, act: dict[str, Any], path: str) -> str:
        """isBaseActivityValid: a URL id, an actor, and ``to``/``cc`` absent or lists of URLs."""
        refuse = f"PeerTube refuses the {act['type']}"
        self.field(act, path, "id", _is_url, URL, refuse)
        self.field(act, path, "actor", _is_ref, REF, refuse)
        for key in ("to", "cc"):
            value = act.get(key, _MISSING)
            if value is not _MISSING and not isinstance(value, list):
                self.add(_at(path, key), value, "PeerTube takes a list of URLs, or no key at all", refuse)
            for index, item in enumerate(_as_list(value)):
                if not _is_url(item):  # "as:Public" is not a URL: PeerTube wants the full IRI
                    self.add(_at(_at(path, key), index), item, URL, refuse)
        return refuse

    def carrying(self, act: dict[str, Any], path: str) -> None:
        """Create, Update, Undo: the object itself, of a type each of them takes."""
        refuse, allowed = self.base(act, path), _CARRIES[act["type"]]
        obj, where = act.get("object", _MISSING), _at(path, "object")
        if isinstance(obj, dict) and obj.get("type") in allowed:
            self.document(obj, where)
        elif isinstance(obj, dict):
            self.add(_at(where, "type"), obj.get("type"), f"it carries {', '.join(allowed)}", refuse)
        else:
            self.add(where, obj, f"a {act['type']} carries the object itself, not a reference", refuse)
        if act["type"] == "Update" and isinstance(obj, dict) and obj.get("type") == "Video":
            self.listed(act.get("to"), _at(path, "to"))  # an Update's privacy is read from its own `to`

    def reference(self, act: dict[str, Any], path: str) -> None:
        """Follow, Like, Dislike, Announce, Delete: the object is a URL or has a URL id."""
        obj, refuse = act.get("object"), self.base(act, path)
        if isinstance(obj, list) and len(obj) == 1 and _is_url(obj[0]):  # `'' + object` passes the check
            self.add(_at(path, "object"), obj, REF, "PeerTube's check passes, then it finds no URL to act on")
        else:
            self.field(act, path, "object", _is_ref, REF, refuse)

    def answer(self, act: dict[str, Any], path: str) -> None:
        """Accept, Reject: nothing but the base is checked, and the object is never read."""
        self.base(act, path)
        obj = act.get("object")
        if isinstance(obj, dict) and obj.get("type") != "Follow":
            self.add(_at(_at(path, "object"), "type"), obj.get("type", _MISSING), "only a Follow is answered",
                     f"PeerTube does not read the object: it takes any {act['type']} for the answer to the "
                     "recipient's own Follow of the sender")  # fmt: skip

    def view(self, act: dict[str, Any], path: str) -> None:
        refuse = self.base(act, path)
        if isinstance(act.get("actor"), dict):  # unlike other activities', a View's actor is a bare URL
            self.add(_at(path, "actor"), act["actor"], URL, refuse)
        self.field(act, path, "object", _is_url, URL, refuse)

    def flag(self, act: dict[str, Any], path: str) -> None:
        refuse = self.base(act, path)
        self.field(act, path, "content", _len(2, 3000), "PeerTube takes 2–3000 characters", refuse)
        # PeerTube tests `'' + object`: a list of URLs passes as their comma-joined text.
        obj = act.get("object", _MISSING)
        urls = obj if isinstance(obj, list) and obj else [obj]
        if not all(_is_url(u) for u in urls) or len(",".join(map(str, urls))) > 2000:
            self.add(_at(path, "object"), obj, "PeerTube takes the reported URL, or a list of them", refuse)

    def reply_approval(self, act: dict[str, Any], path: str) -> None:
        refuse = self.base(act, path)
        self.field(act, path, "object", _is_url, URL, refuse)
        self.field(act, path, "inReplyTo", _is_url, URL, refuse)

    # ------------------------------------------------------------ Video (activitypub/videos.ts)

    def listed(self, to: Any, path: str) -> None:
        if isinstance(to, list) and to and PUBLIC not in to:
            self.add(path, to, "PeerTube 6.3 takes a video with a non-empty `to` as public (its hasAPPublic "
                     "passes any non-empty list): an unlisted video needs an empty `to`",
                     "accepted, but listed as public")  # fmt: skip

    def video(self, v: dict[str, Any], path: str) -> None:
        refuse, save = "PeerTube refuses the Video", "PeerTube's check passes, then saving the Video fails"
        for index, tag in enumerate(_as_list(v.get("tag"))):
            name = tag.get("name") if isinstance(tag, dict) and tag.get("type") == "Hashtag" else None
            if tag is None or (name is not None and not isinstance(name, str)):
                self.add(_at(_at(path, "tag"), index), tag, "a Hashtag's name is a string", refuse)
        self.video_urls(v, path, refuse, save)
        if v.get("content") is not None:  # over 10000 characters it is cut; below 3 refused
            self.field(v, path, "content", lambda c: not isinstance(c, str) or _len(3)(c),
                       "PeerTube takes null or 3–10000 characters", refuse)  # fmt: skip
            self.field(v, path, "mediaType", lambda m: m in ("text/markdown", "text/html"),
                       "with a content PeerTube takes text/markdown or text/html", refuse)  # fmt: skip
        self.video_owner(v, path, refuse)
        subtitles = v.get("subtitleLanguage")
        if subtitles and not isinstance(subtitles, list):
            self.add(_at(path, "subtitleLanguage"), subtitles, "PeerTube takes a list", refuse)
        icons = [v["icon"]] if isinstance(v.get("icon"), dict) else _as_list(v.get("icon"))
        if not any(_is_icon(icon) for icon in icons):
            self.add(_at(path, "icon"), v.get("icon", _MISSING), "PeerTube needs a thumbnail: an Image with "
                     "an http(s) url, mediaType image/jpeg and integer width and height", refuse)  # fmt: skip
        self.storyboard(v.get("preview"), _at(path, "preview"), refuse)
        self.field(v, path, "licence", _optional(lambda x: _ident(x) is not None and (
            not _INT.fullmatch(x["identifier"]) or _is_int(x["identifier"], 0))),
            "PeerTube takes null or {identifier: digits or an SPDX name}", refuse)  # fmt: skip
        uuid = v.get("uuid") or v.get("identifier", _MISSING)  # PeerTube < 6.1 sent `identifier`
        if not _is_uuid4(uuid):
            self.add(_at(path, "uuid"), uuid, UUID, refuse)
        self.field(v, path, "id", _is_url, URL, refuse)
        self.field(v, path, "name", _len(3, 120), "PeerTube takes 3–120 characters", refuse)
        self.field(v, path, "duration", _is_duration, "PeerTube takes PT<seconds>S", refuse)
        self.field(v, path, "category", _optional(lambda x: _is_int(_ident(x), 0)),
                   "PeerTube takes null or {identifier: digits}", refuse)  # fmt: skip
        self.field(v, path, "language", _optional(lambda x: _ident(x) is not None),
                   "PeerTube takes null or {identifier: a string}", refuse)  # fmt: skip
        if len(_ident(v.get("language")) or "") > 10:
            self.add(_at(path, "language.identifier"), _ident(v["language"]), "PeerTube keeps 1–10", save)
        self.field(v, path, "views", _min(0), "PeerTube takes an integer ≥ 0", refuse)
        for key in ("published", "updated"):
            self.field(v, path, key, _is_date, DATE, refuse)
        for key in ("originallyPublishedAt", "uploadDate"):
            self.field(v, path, key, _optional(_is_date), DATE, refuse)
        if v.get("support"):  # `support || null` is saved, and the model takes 3–1000 characters
            self.field(v, path, "support", _len(3, 1000), "PeerTube takes null or 3–1000 characters", save)
        if v.get("commentsPolicy") and str(v["commentsPolicy"]) not in ("1", "2", "3"):
            self.add(_at(path, "commentsPolicy"), v["commentsPolicy"], "PeerTube takes 1, 2 or 3",
                     "accepted, but comments are turned off")  # fmt: skip
        self.listed(v.get("to"), _at(path, "to"))

    def video_owner(self, v: dict[str, Any], path: str, refuse: str) -> None:
        where, value = _at(path, "attributedTo"), v.get("attributedTo", _MISSING)
        valid, channels = _attributed(value, "Group")
        if not valid:
            self.add(where, value, "PeerTube needs a list holding a URL or {type: Group, id: URL}", refuse)
            return
        effect = "PeerTube's check passes, then it finds no channel and does not create the Video"
        if not channels:
            self.add(where, value, "PeerTube needs the channel, a Group entry", effect)
        elif _is_url(v.get("id")) and all(_host(c) != _host(v["id"]) for c in channels):
            self.add(where, value, "the channel (Group) must be on the video's host", effect)

    def video_urls(self, v: dict[str, Any], path: str, refuse: str, save: str) -> None:
        urls, where = v.get("url", _MISSING), _at(path, "url")
        if not isinstance(urls, list):
            self.add(where, urls, "PeerTube needs a list of links", refuse)
            return
        files = 0
        for index, link in enumerate(urls):
            media = (link.get("mediaType") or link.get("mimeType")) if isinstance(link, dict) else None
            if link is None:
                self.add(_at(where, index), link, "PeerTube's link filter fails on a null entry", refuse)
            elif media in VIDEO_FILE_TYPES and _is_file_link(link):
                files += 1
            elif media in VIDEO_FILE_TYPES:
                self.add(_at(where, index), link, "a file Link needs an http(s) href, integer height ≥ 0 "
                         "and size ≥ 0, and an integer fps or none", "PeerTube drops the file")  # fmt: skip
            elif media == HLS and _is_url(link.get("href")) and isinstance(link.get("tag"), list):
                files += self.hls_files(link["tag"], _at(_at(where, index), "tag"), save)
            elif media == HLS:
                self.add(_at(where, index), link, "an HLS Link needs an http(s) href and a tag list",
                         "PeerTube drops the playlist")  # fmt: skip
        # The filter has dropped bad links before files meet their magnets.
        kept = [(i, u) for i, u in enumerate(urls) if isinstance(u, dict) and (_is_file_link(u) or (
            u.get("mediaType") == MAGNET and _is_int(u.get("height"), 0) and _len(5)(u.get("href"))))]
        self.magnets(kept, where, save)
        if not files and v.get("isLiveBroadcast") is not True:
            self.add(where, urls, "a video needs a video file Link, or an HLS Link listing its files",
                     "accepted, but PeerTube has nothing to play")  # fmt: skip

    def hls_files(self, tags: list[Any], path: str, save: str) -> int:
        """The files in an HLS Link's tag are not filtered but stored as they are: each must fit."""
        files = _files(list(enumerate(tags)))
        for index, file in files:
            fps = file.get("fps")
            self.field(file, _at(path, index), "height", _is_int, "PeerTube takes an integer", save)
            self.field(file, _at(path, index), "size", _min(-1), "PeerTube takes an integer", save)
            if type(fps) in (int, float) and fps >= 0 and not _is_int(fps):  # negative means unknown
                self.add(_at(_at(path, index), "fps"), fps, "PeerTube takes an integer", save)
        self.magnets(list(enumerate(tags)), path, save)
        return len(files)

    def magnets(self, links: list[tuple[int, Any]], path: str, save: str) -> None:
        """A file's magnet (the first of its height) gives its infohash and its torrent URL (xs)."""
        for height in {file.get("height") for _, file in _files(links)}:
            first = next(((i, m) for i, m in links if isinstance(m, dict) and m.get("mediaType") == MAGNET
                          and m.get("height") == height), None)  # fmt: skip
            readable = _magnet_hash_ok(first[1].get("href")) if first else True
            if first and readable is False:
                self.add(_at(_at(path, first[0]), "href"), first[1].get("href", _MISSING),
                         "PeerTube needs xt=urn:btih:<40 hex or 32 base32 characters>", save)  # fmt: skip
            elif first and readable is None:
                self.add(_at(_at(path, first[0]), "href"), first[1]["href"], "PeerTube reads the file's "
                         "torrent URL from its xs", "accepted, but the file has no torrent")  # fmt: skip

    def storyboard(self, preview: Any, path: str, refuse: str) -> None:
        if preview and not isinstance(preview, list):
            self.add(path, preview, "PeerTube takes a list", refuse)
        for index, board in enumerate(_as_list(preview)):
            if isinstance(board, dict) and board.get("type") == "Image" and "storyboard" in _as_list(
                    board.get("rel")):  # fmt: skip
                self.field(board, _at(path, index), "url", lambda u: isinstance(u, list),
                           "PeerTube filters a list", refuse)  # fmt: skip

    # ------------------------------------------------------------ Note (activitypub/video-comments.ts)

    def note(self, n: dict[str, Any], path: str) -> None:
        refuse = f"PeerTube refuses the {n['type']}"
        if n["type"] == "Tombstone" and n.get("formerType") != "Note":
            self.field(n, path, "formerType", lambda _: False, "PeerTube takes Tombstones of Notes", refuse)
            return
        url = n.get("url")  # as normalizeComment reads it: object → href, else the id
        if not isinstance(url, str):
            url = (url.get("href") or url.get("url")) if isinstance(url, dict) else n.get("id")
        if not _is_url(url):
            self.add(_at(path, "url"), n.get("url", _MISSING), URL + " (or none: the id is taken)", refuse)
        self.field(n, path, "id", _is_url, URL, refuse)
        self.field(n, path, "published", _is_date, DATE, refuse)
        if n["type"] == "Tombstone":
            self.field(n, path, "deleted", _is_date, DATE, refuse)
            return
        self.field(n, path, "content", lambda c: c not in (_MISSING, None, "", []),
                   "PeerTube takes 1 character or more", refuse)  # fmt: skip
        self.field(n, path, "inReplyTo", _is_url, URL, refuse)
        self.field(n, path, "replyApproval", _optional(_is_url), URL, refuse)
        cc = n.get("cc")
        self.field(n, path, "to", lambda t: isinstance(t, list), "PeerTube takes a list", refuse)
        # PeerTube means "public comments only"; its hasAPPublic passes any non-empty list.
        if isinstance(n.get("to"), list) and not n["to"] and not (isinstance(cc, list) and cc):
            self.add(_at(path, "to"), n["to"], "PeerTube takes public comments, not empty to and cc", refuse)
        # The Note is then fetched again from its id, and its author from attributedTo.
        effect = "PeerTube's check passes, then it drops the Note"
        self.field(n, path, "attributedTo", _is_url, "PeerTube takes the author's URL, as a string", effect)
        author = n.get("attributedTo")
        if _is_url(author) and _is_url(n.get("id")) and _host(author) != _host(n["id"]):
            self.add(_at(path, "attributedTo"), author, "the author must be on the Note's host", effect)

    # ------------------------------------------------------------ actors (activitypub/actor.ts)

    def actor(self, a: dict[str, Any], path: str) -> None:
        refuse = f"PeerTube refuses the {a['type']}"
        save = "PeerTube's check passes, then saving the channel fails"
        for key in ("id", "inbox"):
            self.field(a, path, key, _is_url, URL, refuse)
        for key in ("outbox", "following", "followers"):
            self.field(a, path, key, lambda u: not u or _is_url(u), URL, refuse)
        url = a.get("url")  # as normalizeActor reads it: none → the id, list → its first, object → href
        if not url:
            url = a.get("id")
        elif isinstance(url, list):
            url = url[0]
        elif isinstance(url, dict):
            url = url.get("href") or url.get("url")
        if not _is_url(url):
            self.add(_at(path, "url"), a.get("url", _MISSING), URL + " (or none: the id is taken)", refuse)
        self.field(a, path, "preferredUsername", lambda n: _fits(_USERNAME, n),
                   "PeerTube takes letters, digits and - _ . : only", refuse)  # fmt: skip
        key, key_path = a.get("publicKey"), _at(path, "publicKey")
        if not isinstance(key, dict):
            self.add(key_path, a.get("publicKey", _MISSING), "PeerTube needs id, owner, publicKeyPem", refuse)
        else:
            self.field(key, key_path, "id", _is_url, URL, refuse)
            self.field(key, key_path, "owner", _is_url, URL, refuse)
            self.field(key, key_path, "publicKeyPem", lambda p: _len(10, 5000)(p) and p.startswith(
                "-----BEGIN PUBLIC KEY-----") and "-----END PUBLIC KEY-----" in p,
                "PeerTube takes a PEM (BEGIN PUBLIC KEY) of at most 5000 characters", refuse)  # fmt: skip
        endpoints = a.get("endpoints")
        if isinstance(endpoints, dict) and endpoints.get("sharedInbox"):
            self.field(endpoints, _at(path, "endpoints"), "sharedInbox", _is_url, URL, refuse)
        if a["type"] != "Group":
            return
        name = a.get("name") or a.get("preferredUsername")
        owned, people = _attributed(a.get("attributedTo"), "Person")
        if not owned:
            self.add(_at(path, "attributedTo"), a.get("attributedTo", _MISSING), "a channel needs a list "
                     "holding its account's URL or {type: Person, id: URL}", refuse)  # fmt: skip
        elif not people or (_is_url(a.get("id")) and all(_host(p) != _host(a["id"]) for p in people)):
            self.add(_at(path, "attributedTo"), a["attributedTo"], "a channel's account (a Person) must be "
                     "on its host", "PeerTube finds no account and does not create the channel")  # fmt: skip
        if not _len(1, 120)(name):
            self.add(_at(path, "name"), a.get("name", _MISSING), "a channel's name (else preferredUsername) "
                     "has 1–120 characters", save)  # fmt: skip
        self.field(a, path, "support", _optional(_len(3, 1000)), "PeerTube takes null or 3–1000 characters",
                   save)  # fmt: skip

    # ------------------------------------------------------------ CacheFile, Playlist, WatchAction

    def cache_file(self, c: dict[str, Any], path: str) -> None:
        refuse = "PeerTube refuses the CacheFile"
        self.field(c, path, "expires", lambda e: not e or _is_date(e), DATE, refuse)
        self.field(c, path, "object", _is_url, URL, refuse)

        def link_ok(u: Any) -> bool:
            if not isinstance(u, dict) or not _is_url(u.get("href")):
                return False
            if u.get("type") == "Link" and (u.get("mediaType") or u.get("mimeType")) == HLS:
                return True
            fps = u.get("fps") or u.get("_fps")  # PeerTube < 6.1 wrote `_:size`, `_fps`
            return u.get("mediaType") in VIDEO_FILE_TYPES and _is_int(u.get("height"), 0) and _is_int(
                u.get("size") or u.get("_:size"), 0) and (not fps or _is_int(fps, -1))  # fmt: skip

        self.field(c, path, "url", link_ok, "PeerTube takes one Link: an HLS playlist, or a video file with "
                   "integer height and size; both with an http(s) href", refuse)  # fmt: skip

    def playlist(self, p: dict[str, Any], path: str) -> None:
        refuse = "PeerTube refuses the Playlist"
        self.field(p, path, "totalItems", _is_int, "PeerTube takes an integer", refuse)
        self.field(p, path, "name", _len(1, 120), "PeerTube takes 1–120 characters", refuse)
        if not _is_uuid4(p.get("uuid") or p.get("identifier")):
            self.add(_at(path, "uuid"), p.get("uuid", _MISSING), UUID, refuse)
        for key in ("published", "updated"):
            self.field(p, path, key, _is_date, DATE, refuse)
        self.field(p, path, "attributedTo", lambda a: isinstance(a, list) and len(a) == 1 and _is_ref(a[0]),
                   "PeerTube takes a list of exactly one channel", "PeerTube's check passes, then it "
                   "drops the Playlist")  # fmt: skip
        self.field(p, path, "content", _optional(_len(3, 1000)), "PeerTube takes null or 3–1000 characters",
                   "PeerTube's check passes, then saving the Playlist fails")  # fmt: skip

    def watch_action(self, w: dict[str, Any], path: str) -> None:
        refuse = "PeerTube refuses the WatchAction"
        for key in ("id", "object"):
            self.field(w, path, key, _is_ref, REF, refuse)
        self.field(w, path, "duration", _is_duration, "PeerTube takes PT<seconds>S", refuse)
        for key in ("startTime", "endTime"):
            self.field(w, path, key, _is_date, DATE, refuse)
        self.field(w, path, "location", lambda x: not x or (isinstance(x, dict) and all(
            not x.get(k) or isinstance(x[k], str) for k in ("addressCountry", "addressRegion"))),
            "PeerTube takes {addressCountry, addressRegion} as strings", refuse)  # fmt: skip
        if not _is_uuid4(w.get("uuid") or w.get("identifier")):
            self.add(_at(path, "uuid"), w.get("uuid", _MISSING), UUID, refuse)
        sections = w.get("watchSections", w.get("_:watchSections", _MISSING))
        if not isinstance(sections, list) or any(not isinstance(s, dict) or any(
                type(s.get(k)) in (int, float) and s[k] < 0 for k in ("startTimestamp", "endTimestamp"))
                for s in sections):  # fmt: skip
            self.add(_at(path, "watchSections"), sections, "PeerTube takes a list of {startTimestamp, "
                     "endTimestamp} ≥ 0", refuse)  # fmt: skip


_CHECKERS: dict[str, Callable[[_Report, dict[str, Any], str], None]] = {
    **dict.fromkeys(_CARRIES, _Report.carrying), "Accept": _Report.answer, "Reject": _Report.answer,
    **dict.fromkeys(("Delete", "Follow", "Like", "Dislike", "Announce"), _Report.reference),
    "View": _Report.view, "Flag": _Report.flag, "ApproveReply": _Report.reply_approval,
    "RejectReply": _Report.reply_approval, "Video": _Report.video, "Note": _Report.note,
    "Tombstone": _Report.note, "CacheFile": _Report.cache_file, "Playlist": _Report.playlist,
    "WatchAction": _Report.watch_action, **dict.fromkeys(ACTOR_TYPES, _Report.actor),
}  # fmt: skip

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

from .conformance_values import (
    INTEGER,
    VIDEO_FILE_TYPES,
    attributed_to,
    file_links,
    fits,
    ident_of,
    int_at_least,
    is_date,
    is_duration,
    is_file_link,
    is_icon,
    is_int,
    is_ref,
    is_url,
    is_uuid4,
    js_length,
    list_or_empty,
    magnet_hash_ok,
    optional,
    sized,
    url_host,
)

__all__ = ["Nonconforming", "check", "problems"]

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
ACTOR_TYPES = ("Application", "Group", "Organization", "Person", "Service")
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


# ---------------------------------------------------------------- reporting


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
    return quoted if len(quoted) <= 60 else f"{js_length(value)} characters"


def _at(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else key


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
            if not is_url(doc):
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
        self.field(act, path, "id", is_url, URL, refuse)
        self.field(act, path, "actor", is_ref, REF, refuse)
        for key in ("to", "cc"):
            value = act.get(key, _MISSING)
            if value is not _MISSING and not isinstance(value, list):
                self.add(_at(path, key), value, "PeerTube takes a list of URLs, or no key at all", refuse)
            for index, item in enumerate(list_or_empty(value)):
                if not is_url(item):  # "as:Public" is not a URL: PeerTube wants the full IRI
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
        if isinstance(obj, list) and len(obj) == 1 and is_url(obj[0]):  # `'' + object` passes the check
            self.add(_at(path, "object"), obj, REF, "PeerTube's check passes, then it finds no URL to act on")
        else:
            self.field(act, path, "object", is_ref, REF, refuse)

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
        self.field(act, path, "object", is_url, URL, refuse)

    def flag(self, act: dict[str, Any], path: str) -> None:
        refuse = self.base(act, path)
        self.field(act, path, "content", sized(2, 3000), "PeerTube takes 2–3000 characters", refuse)
        # PeerTube tests `'' + object`: a list of URLs passes as their comma-joined text.
        obj = act.get("object", _MISSING)
        urls = obj if isinstance(obj, list) and obj else [obj]
        if not all(is_url(u) for u in urls) or len(",".join(map(str, urls))) > 2000:
            self.add(_at(path, "object"), obj, "PeerTube takes the reported URL, or a list of them", refuse)

    def reply_approval(self, act: dict[str, Any], path: str) -> None:
        refuse = self.base(act, path)
        self.field(act, path, "object", is_url, URL, refuse)
        self.field(act, path, "inReplyTo", is_url, URL, refuse)

    # ------------------------------------------------------------ Video (activitypub/videos.ts)

    def listed(self, to: Any, path: str) -> None:
        if isinstance(to, list) and to and PUBLIC not in to:
            self.add(path, to, "PeerTube 6.3 takes a video with a non-empty `to` as public (its hasAPPublic "
                     "passes any non-empty list): an unlisted video needs an empty `to`",
                     "accepted, but listed as public")  # fmt: skip

    def video(self, v: dict[str, Any], path: str) -> None:
        refuse, save = "PeerTube refuses the Video", "PeerTube's check passes, then saving the Video fails"
        for index, tag in enumerate(list_or_empty(v.get("tag"))):
            name = tag.get("name") if isinstance(tag, dict) and tag.get("type") == "Hashtag" else None
            if tag is None or (name is not None and not isinstance(name, str)):
                self.add(_at(_at(path, "tag"), index), tag, "a Hashtag's name is a string", refuse)
        self.video_urls(v, path, refuse, save)
        if v.get("content") is not None:  # over 10000 characters it is cut; below 3 refused
            self.field(v, path, "content", lambda c: not isinstance(c, str) or sized(3)(c),
                       "PeerTube takes null or 3–10000 characters", refuse)  # fmt: skip
            self.field(v, path, "mediaType", lambda m: m in ("text/markdown", "text/html"),
                       "with a content PeerTube takes text/markdown or text/html", refuse)  # fmt: skip
        self.video_owner(v, path, refuse)
        subtitles = v.get("subtitleLanguage")
        if subtitles and not isinstance(subtitles, list):
            self.add(_at(path, "subtitleLanguage"), subtitles, "PeerTube takes a list", refuse)
        icons = [v["icon"]] if isinstance(v.get("icon"), dict) else list_or_empty(v.get("icon"))
        if not any(is_icon(icon) for icon in icons):
            self.add(_at(path, "icon"), v.get("icon", _MISSING), "PeerTube needs a thumbnail: an Image with "
                     "an http(s) url, mediaType image/jpeg and integer width and height", refuse)  # fmt: skip
        self.storyboard(v.get("preview"), _at(path, "preview"), refuse)
        self.field(v, path, "licence", optional(lambda x: ident_of(x) is not None and (
            not INTEGER.fullmatch(x["identifier"]) or is_int(x["identifier"], 0))),
            "PeerTube takes null or {identifier: digits or an SPDX name}", refuse)  # fmt: skip
        uuid = v.get("uuid") or v.get("identifier", _MISSING)  # PeerTube < 6.1 sent `identifier`
        if not is_uuid4(uuid):
            self.add(_at(path, "uuid"), uuid, UUID, refuse)
        self.field(v, path, "id", is_url, URL, refuse)
        self.field(v, path, "name", sized(3, 120), "PeerTube takes 3–120 characters", refuse)
        self.field(v, path, "duration", is_duration, "PeerTube takes PT<seconds>S", refuse)
        self.field(v, path, "category", optional(lambda x: is_int(ident_of(x), 0)),
                   "PeerTube takes null or {identifier: digits}", refuse)  # fmt: skip
        self.field(v, path, "language", optional(lambda x: ident_of(x) is not None),
                   "PeerTube takes null or {identifier: a string}", refuse)  # fmt: skip
        if len(ident_of(v.get("language")) or "") > 10:
            self.add(_at(path, "language.identifier"), ident_of(v["language"]), "PeerTube keeps 1–10", save)
        self.field(v, path, "views", int_at_least(0), "PeerTube takes an integer ≥ 0", refuse)
        for key in ("published", "updated"):
            self.field(v, path, key, is_date, DATE, refuse)
        for key in ("originallyPublishedAt", "uploadDate"):
            self.field(v, path, key, optional(is_date), DATE, refuse)
        if v.get("support"):  # `support || null` is saved, and the model takes 3–1000 characters
            self.field(v, path, "support", sized(3, 1000), "PeerTube takes null or 3–1000 characters", save)
        if v.get("commentsPolicy") and str(v["commentsPolicy"]) not in ("1", "2", "3"):
            self.add(_at(path, "commentsPolicy"), v["commentsPolicy"], "PeerTube takes 1, 2 or 3",
                     "accepted, but comments are turned off")  # fmt: skip
        self.listed(v.get("to"), _at(path, "to"))

    def video_owner(self, v: dict[str, Any], path: str, refuse: str) -> None:
        where, value = _at(path, "attributedTo"), v.get("attributedTo", _MISSING)
        valid, channels = attributed_to(value, "Group")
        if not valid:
            self.add(where, value, "PeerTube needs a list holding a URL or {type: Group, id: URL}", refuse)
            return
        effect = "PeerTube's check passes, then it finds no channel and does not create the Video"
        if not channels:
            self.add(where, value, "PeerTube needs the channel, a Group entry", effect)
        elif is_url(v.get("id")) and all(url_host(c) != url_host(v["id"]) for c in channels):
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
            elif media in VIDEO_FILE_TYPES and is_file_link(link):
                files += 1
            elif media in VIDEO_FILE_TYPES:
                self.add(_at(where, index), link, "a file Link needs an http(s) href, integer height ≥ 0 "
                         "and size ≥ 0, and an integer fps or none", "PeerTube drops the file")  # fmt: skip
            elif media == HLS and is_url(link.get("href")) and isinstance(link.get("tag"), list):
                files += self.hls_files(link["tag"], _at(_at(where, index), "tag"), save)
            elif media == HLS:
                self.add(_at(where, index), link, "an HLS Link needs an http(s) href and a tag list",
                         "PeerTube drops the playlist")  # fmt: skip
        # The filter has dropped bad links before files meet their magnets.
        kept = [(i, u) for i, u in enumerate(urls) if isinstance(u, dict) and (is_file_link(u) or (
            u.get("mediaType") == MAGNET and is_int(u.get("height"), 0) and sized(5)(u.get("href"))))]
        self.magnets(kept, where, save)
        if not files and v.get("isLiveBroadcast") is not True:
            self.add(where, urls, "a video needs a video file Link, or an HLS Link listing its files",
                     "accepted, but PeerTube has nothing to play")  # fmt: skip

    def hls_files(self, tags: list[Any], path: str, save: str) -> int:
        """The files in an HLS Link's tag are not filtered but stored as they are: each must fit."""
        files = file_links(list(enumerate(tags)))
        for index, file in files:
            fps = file.get("fps")
            self.field(file, _at(path, index), "height", is_int, "PeerTube takes an integer", save)
            self.field(file, _at(path, index), "size", int_at_least(-1), "PeerTube takes an integer", save)
            if type(fps) in (int, float) and fps >= 0 and not is_int(fps):  # negative means unknown
                self.add(_at(_at(path, index), "fps"), fps, "PeerTube takes an integer", save)
        self.magnets(list(enumerate(tags)), path, save)
        return len(files)

    def magnets(self, links: list[tuple[int, Any]], path: str, save: str) -> None:
        """A file's magnet (the first of its height) gives its infohash and its torrent URL (xs)."""
        for height in {file.get("height") for _, file in file_links(links)}:
            first = next(((i, m) for i, m in links if isinstance(m, dict) and m.get("mediaType") == MAGNET
                          and m.get("height") == height), None)  # fmt: skip
            readable = magnet_hash_ok(first[1].get("href")) if first else True
            if first and readable is False:
                self.add(_at(_at(path, first[0]), "href"), first[1].get("href", _MISSING),
                         "PeerTube needs xt=urn:btih:<40 hex or 32 base32 characters>", save)  # fmt: skip
            elif first and readable is None:
                self.add(_at(_at(path, first[0]), "href"), first[1]["href"], "PeerTube reads the file's "
                         "torrent URL from its xs", "accepted, but the file has no torrent")  # fmt: skip

    def storyboard(self, preview: Any, path: str, refuse: str) -> None:
        if preview and not isinstance(preview, list):
            self.add(path, preview, "PeerTube takes a list", refuse)
        for index, board in enumerate(list_or_empty(preview)):
            if isinstance(board, dict) and board.get("type") == "Image" and "storyboard" in list_or_empty(
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
        if not is_url(url):
            self.add(_at(path, "url"), n.get("url", _MISSING), URL + " (or none: the id is taken)", refuse)
        self.field(n, path, "id", is_url, URL, refuse)
        self.field(n, path, "published", is_date, DATE, refuse)
        if n["type"] == "Tombstone":
            self.field(n, path, "deleted", is_date, DATE, refuse)
            return
        self.field(n, path, "content", lambda c: c not in (_MISSING, None, "", []),
                   "PeerTube takes 1 character or more", refuse)  # fmt: skip
        self.field(n, path, "inReplyTo", is_url, URL, refuse)
        self.field(n, path, "replyApproval", optional(is_url), URL, refuse)
        cc = n.get("cc")
        self.field(n, path, "to", lambda t: isinstance(t, list), "PeerTube takes a list", refuse)
        # PeerTube means "public comments only"; its hasAPPublic passes any non-empty list.
        if isinstance(n.get("to"), list) and not n["to"] and not (isinstance(cc, list) and cc):
            self.add(_at(path, "to"), n["to"], "PeerTube takes public comments, not empty to and cc", refuse)
        # The Note is then fetched again from its id, and its author from attributedTo.
        effect = "PeerTube's check passes, then it drops the Note"
        self.field(n, path, "attributedTo", is_url, "PeerTube takes the author's URL, as a string", effect)
        author = n.get("attributedTo")
        if is_url(author) and is_url(n.get("id")) and url_host(author) != url_host(n["id"]):
            self.add(_at(path, "attributedTo"), author, "the author must be on the Note's host", effect)

    # ------------------------------------------------------------ actors (activitypub/actor.ts)

    def actor(self, a: dict[str, Any], path: str) -> None:
        refuse = f"PeerTube refuses the {a['type']}"
        save = "PeerTube's check passes, then saving the channel fails"
        for key in ("id", "inbox"):
            self.field(a, path, key, is_url, URL, refuse)
        for key in ("outbox", "following", "followers"):
            self.field(a, path, key, lambda u: not u or is_url(u), URL, refuse)
        url = a.get("url")  # as normalizeActor reads it: none → the id, list → its first, object → href
        if not url:
            url = a.get("id")
        elif isinstance(url, list):
            url = url[0]
        elif isinstance(url, dict):
            url = url.get("href") or url.get("url")
        if not is_url(url):
            self.add(_at(path, "url"), a.get("url", _MISSING), URL + " (or none: the id is taken)", refuse)
        self.field(a, path, "preferredUsername", lambda n: fits(_USERNAME, n),
                   "PeerTube takes letters, digits and - _ . : only", refuse)  # fmt: skip
        key, key_path = a.get("publicKey"), _at(path, "publicKey")
        if not isinstance(key, dict):
            self.add(key_path, a.get("publicKey", _MISSING), "PeerTube needs id, owner, publicKeyPem", refuse)
        else:
            self.field(key, key_path, "id", is_url, URL, refuse)
            self.field(key, key_path, "owner", is_url, URL, refuse)
            self.field(key, key_path, "publicKeyPem", lambda p: sized(10, 5000)(p) and p.startswith(
                "-----BEGIN PUBLIC KEY-----") and "-----END PUBLIC KEY-----" in p,
                "PeerTube takes a PEM (BEGIN PUBLIC KEY) of at most 5000 characters", refuse)  # fmt: skip
        endpoints = a.get("endpoints")
        if isinstance(endpoints, dict) and endpoints.get("sharedInbox"):
            self.field(endpoints, _at(path, "endpoints"), "sharedInbox", is_url, URL, refuse)
        if a["type"] != "Group":
            return
        name = a.get("name") or a.get("preferredUsername")
        owned, people = attributed_to(a.get("attributedTo"), "Person")
        if not owned:
            self.add(_at(path, "attributedTo"), a.get("attributedTo", _MISSING), "a channel needs a list "
                     "holding its account's URL or {type: Person, id: URL}", refuse)  # fmt: skip
        elif not people or (is_url(a.get("id")) and all(url_host(p) != url_host(a["id"]) for p in people)):
            self.add(_at(path, "attributedTo"), a["attributedTo"], "a channel's account (a Person) must be "
                     "on its host", "PeerTube finds no account and does not create the channel")  # fmt: skip
        if not sized(1, 120)(name):
            self.add(_at(path, "name"), a.get("name", _MISSING), "a channel's name (else preferredUsername) "
                     "has 1–120 characters", save)  # fmt: skip
        self.field(a, path, "support", optional(sized(3, 1000)), "PeerTube takes null or 3–1000 characters",
                   save)  # fmt: skip

    # ------------------------------------------------------------ CacheFile, Playlist, WatchAction

    def cache_file(self, c: dict[str, Any], path: str) -> None:
        refuse = "PeerTube refuses the CacheFile"
        self.field(c, path, "expires", lambda e: not e or is_date(e), DATE, refuse)
        self.field(c, path, "object", is_url, URL, refuse)

        def link_ok(u: Any) -> bool:
            if not isinstance(u, dict) or not is_url(u.get("href")):
                return False
            if u.get("type") == "Link" and (u.get("mediaType") or u.get("mimeType")) == HLS:
                return True
            fps = u.get("fps") or u.get("_fps")  # PeerTube < 6.1 wrote `_:size`, `_fps`
            return u.get("mediaType") in VIDEO_FILE_TYPES and is_int(u.get("height"), 0) and is_int(
                u.get("size") or u.get("_:size"), 0) and (not fps or is_int(fps, -1))  # fmt: skip

        self.field(c, path, "url", link_ok, "PeerTube takes one Link: an HLS playlist, or a video file with "
                   "integer height and size; both with an http(s) href", refuse)  # fmt: skip

    def playlist(self, p: dict[str, Any], path: str) -> None:
        refuse = "PeerTube refuses the Playlist"
        self.field(p, path, "totalItems", is_int, "PeerTube takes an integer", refuse)
        self.field(p, path, "name", sized(1, 120), "PeerTube takes 1–120 characters", refuse)
        if not is_uuid4(p.get("uuid") or p.get("identifier")):
            self.add(_at(path, "uuid"), p.get("uuid", _MISSING), UUID, refuse)
        for key in ("published", "updated"):
            self.field(p, path, key, is_date, DATE, refuse)
        self.field(p, path, "attributedTo", lambda a: isinstance(a, list) and len(a) == 1 and is_ref(a[0]),
                   "PeerTube takes a list of exactly one channel", "PeerTube's check passes, then it "
                   "drops the Playlist")  # fmt: skip
        self.field(p, path, "content", optional(sized(3, 1000)), "PeerTube takes null or 3–1000 characters",
                   "PeerTube's check passes, then saving the Playlist fails")  # fmt: skip

    def watch_action(self, w: dict[str, Any], path: str) -> None:
        refuse = "PeerTube refuses the WatchAction"
        for key in ("id", "object"):
            self.field(w, path, key, is_ref, REF, refuse)
        self.field(w, path, "duration", is_duration, "PeerTube takes PT<seconds>S", refuse)
        for key in ("startTime", "endTime"):
            self.field(w, path, key, is_date, DATE, refuse)
        self.field(w, path, "location", lambda x: not x or (isinstance(x, dict) and all(
            not x.get(k) or isinstance(x[k], str) for k in ("addressCountry", "addressRegion"))),
            "PeerTube takes {addressCountry, addressRegion} as strings", refuse)  # fmt: skip
        if not is_uuid4(w.get("uuid") or w.get("identifier")):
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

# ruff: noqa: E501 - documents are written out one field per line where they read best
"""federation.conformance: outgoing documents against PeerTube 6.3's receiving rules.

Real documents (``data/peertube/``, copied from the shared fixtures: PeerTube's
``packages/tests/fixtures/ap-json``) and PeerTube-shaped ones conform; each mutation breaks one
rule and must be reported under the field's path; the documents Shoal builds from plain
in-memory models (no database) conform.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from federation.actors import actor_to_ap
from federation.cachefile import cachefile_to_ap
from federation.conformance import Nonconforming, check, problems
from federation.context import PUBLIC
from federation.fanout import (
    announce_activity,
    create_activity,
    delete_activity,
    rate_activity,
    update_activity,
)
from federation.follows import follow_activity
from federation.notes import NoteContext, note_to_ap
from federation.videos import to_ap
from instance.core import Shoal
from instance.models import Actor, Comment, Privacy, Rendition, Video, VideoMirror, VideoState
from instance.settings import Settings

DATA = Path(__file__).parent / "data" / "peertube"
PT = "https://peertube.example"
UUID = "9c9de5e8-0a1b-4f2c-9d3e-1a2b3c4d5e6f"
VID = f"{PT}/videos/watch/{UUID}"
HLS = f"{PT}/static/streaming-playlists/hls/{UUID}"
ACCOUNT, CHANNEL = f"{PT}/accounts/root", f"{PT}/video-channels/root_channel"
PEM = "-----BEGIN PUBLIC KEY-----\n" + "A" * 300 + "\n-----END PUBLIC KEY-----\n"


# ---------------------------------------------------------------- PeerTube-shaped documents


def video() -> dict[str, Any]:
    """A Video as PeerTube 6.3 sends it."""
    return {
        "type": "Video", "id": VID, "name": "Remote demo", "duration": "PT95S", "uuid": UUID,
        "category": {"identifier": "2", "name": "Films"}, "licence": {"identifier": "1", "name": "Attribution"},
        "language": {"identifier": "fr", "name": "French"}, "views": 12, "sensitive": False, "waitTranscoding": True,
        "state": 1, "commentsEnabled": True, "canReply": None, "commentsPolicy": 1, "downloadEnabled": True,
        "published": "2024-09-01T10:00:00.000Z", "originallyPublishedAt": None, "updated": "2024-09-01T10:05:00.000Z",
        "uploadDate": "2024-09-01T10:00:00.000Z", "tag": [{"type": "Hashtag", "name": "demo"}],
        "mediaType": "text/markdown", "content": "A **demo**", "support": None, "subtitleLanguage": [],
        "icon": [{"type": "Image", "url": f"{PT}/lazy-static/thumbnails/1f.jpg", "mediaType": "image/jpeg", "width": 280, "height": 157},
                 {"type": "Image", "url": f"{PT}/lazy-static/previews/2e.jpg", "mediaType": "image/jpeg", "width": 850, "height": 480}],
        "preview": [{"type": "Image", "rel": ["storyboard"], "url": [
            {"mediaType": "image/jpeg", "href": f"{PT}/lazy-static/storyboards/s.jpg", "width": 1920, "height": 1080,
             "tileWidth": 192, "tileHeight": 108, "tileDuration": "PT2S"}]}],
        "aspectRatio": 1.7778,
        "url": [
            {"type": "Link", "mediaType": "text/html", "href": VID},
            {"type": "Link", "mediaType": "application/x-mpegURL", "href": f"{HLS}/4b-master.m3u8", "tag": [
                {"type": "Infohash", "name": "5f" * 20},
                {"type": "Link", "name": "sha256", "mediaType": "application/json", "href": f"{HLS}/8d-segments-sha256.json"},
                {"type": "Link", "mediaType": "video/mp4", "href": f"{HLS}/c1-720-fragmented.mp4", "height": 720, "width": 1280, "size": 9123456, "fps": 30},
                {"type": "Link", "rel": ["metadata", "video/mp4"], "mediaType": "application/json", "href": f"{PT}/api/v1/videos/{UUID}/metadata/42", "height": 720, "width": 1280, "fps": 30},
                {"type": "Link", "mediaType": "application/x-bittorrent", "href": f"{PT}/lazy-static/torrents/a7-720-hls.torrent", "height": 720, "width": 1280, "fps": 30},
                {"type": "Link", "mediaType": "application/x-bittorrent;x-scheme-handler/magnet",
                 "href": f"magnet:?xs={PT}%2Flazy-static%2Ftorrents%2Fa7-720-hls.torrent&xt=urn:btih:{'5f' * 20}&dn=Remote+demo", "height": 720, "width": 1280, "fps": 30}]},
            {"type": "Link", "name": "tracker-http", "rel": ["tracker", "http"], "href": f"{PT}/tracker/announce"},
        ],
        "likes": f"{VID}/likes", "dislikes": f"{VID}/dislikes", "shares": f"{VID}/announces", "comments": f"{VID}/comments",
        "hasParts": f"{VID}/chapters",
        "attributedTo": [{"type": "Person", "id": ACCOUNT}, {"type": "Group", "id": CHANNEL}],
        "isLiveBroadcast": False, "liveSaveReplay": None, "permanentLive": None, "latencyMode": None,
        "to": [PUBLIC], "cc": [f"{ACCOUNT}/followers"],
    }  # fmt: skip


def note() -> dict[str, Any]:
    cid = f"{VID}/comments/3"
    return {"type": "Note", "id": cid, "content": "Nice *video*", "mediaType": "text/markdown", "inReplyTo": VID,
            "updated": "2024-09-02T08:00:00.000Z", "published": "2024-09-02T08:00:00.000Z", "url": cid,
            "attributedTo": ACCOUNT, "tag": [], "to": [PUBLIC], "cc": [f"{ACCOUNT}/followers"]}  # fmt: skip


def tombstone() -> dict[str, Any]:
    cid = f"{VID}/comments/3"
    return {"type": "Tombstone", "id": cid, "url": cid, "formerType": "Note", "inReplyTo": VID,
            "published": "2024-09-02T08:00:00.000Z", "updated": "2024-09-03T08:00:00.000Z",
            "deleted": "2024-09-03T08:00:00.000Z"}  # fmt: skip


def person() -> dict[str, Any]:
    return {"type": "Person", "id": ACCOUNT, "following": f"{ACCOUNT}/following", "followers": f"{ACCOUNT}/followers",
            "playlists": f"{ACCOUNT}/playlists", "inbox": f"{ACCOUNT}/inbox", "outbox": f"{ACCOUNT}/outbox",
            "preferredUsername": "root", "url": ACCOUNT, "name": "root", "endpoints": {"sharedInbox": f"{PT}/inbox"},
            "publicKey": {"id": f"{ACCOUNT}#main-key", "owner": ACCOUNT, "publicKeyPem": PEM},
            "published": "2024-01-01T00:00:00.000Z", "summary": None}  # fmt: skip


def group() -> dict[str, Any]:
    doc = person() | {"type": "Group", "id": CHANNEL, "url": CHANNEL, "preferredUsername": "root_channel",
                      "name": "Main root channel", "inbox": f"{CHANNEL}/inbox", "outbox": f"{CHANNEL}/outbox",
                      "followers": f"{CHANNEL}/followers", "following": f"{CHANNEL}/following", "support": None,
                      "attributedTo": [{"type": "Person", "id": ACCOUNT}], "postingRestrictedToMods": True}  # fmt: skip
    doc["publicKey"] = {"id": f"{CHANNEL}#main-key", "owner": CHANNEL, "publicKeyPem": PEM}
    return doc


def activity(kind: str, obj: Any, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "id": f"{ACCOUNT}/activities/{kind.lower()}/1", "actor": ACCOUNT, "object": obj,
            "to": [PUBLIC], "cc": [f"{ACCOUNT}/followers"], **extra}  # fmt: skip


def follow() -> dict[str, Any]:
    return {"type": "Follow", "id": f"{ACCOUNT}/follows/9", "actor": ACCOUNT, "object": "https://shoal.example/accounts/alice"}


def cache_file() -> dict[str, Any]:
    return {"id": f"{PT}/redundancy/streaming-playlists/hls/{UUID}", "type": "CacheFile", "object": VID,
            "expires": "2024-09-10T10:00:00.000Z",
            "url": {"type": "Link", "mediaType": "application/x-mpegURL", "href": f"{PT}/static/redundancy/hls/{UUID}"}}  # fmt: skip


def playlist() -> dict[str, Any]:
    return {"id": f"{PT}/video-playlists/{UUID}", "type": "Playlist", "totalItems": 1, "name": "Best of",
            "uuid": UUID, "published": "2024-09-01T10:00:00.000Z", "updated": "2024-09-01T10:00:00.000Z",
            "attributedTo": [CHANNEL], "content": None, "to": [PUBLIC]}  # fmt: skip


def watch_action() -> dict[str, Any]:
    return {"id": f"{PT}/videos/watch/{UUID}/views/1", "type": "WatchAction", "startTime": "2024-09-01T10:00:00.000Z",
            "endTime": "2024-09-01T10:01:00.000Z", "object": VID, "uuid": UUID, "actionStatus": "CompletedActionStatus",
            "duration": "PT60S", "watchSections": [{"startTimestamp": 0, "endTimestamp": 60}]}  # fmt: skip


BASELINES: dict[str, Callable[[], Any]] = {
    "video": video, "note": note, "tombstone": tombstone, "person": person, "group": group,
    "cache_file": cache_file, "playlist": playlist,
    "create_video": lambda: activity("Create", video()), "update_video": lambda: activity("Update", video()),
    "create_note": lambda: activity("Create", note()), "delete_note": lambda: activity("Delete", tombstone()),
    "delete_url": lambda: activity("Delete", VID), "update_group": lambda: activity("Update", group()),
    "follow": follow, "accept": lambda: activity("Accept", follow()), "reject": lambda: activity("Reject", follow()),
    "undo_follow": lambda: activity("Undo", follow()), "like": lambda: activity("Like", VID),
    "dislike": lambda: activity("Dislike", VID), "announce": lambda: activity("Announce", VID, cc=[]),
    "undo_like": lambda: activity("Undo", activity("Like", VID)), "view": lambda: activity("View", VID),
    "create_view": lambda: activity("Create", activity("View", VID)),
    "flag": lambda: activity("Flag", [VID], content="Spam, spam, spam", to=[ACCOUNT], cc=[]),
    "create_cache_file": lambda: activity("Create", cache_file()),
    "undo_cache_file": lambda: activity("Undo", activity("Create", cache_file())),
    "create_playlist": lambda: activity("Create", playlist()),
    "create_watch_action": lambda: activity("Create", watch_action()),
}  # fmt: skip


@pytest.mark.parametrize("name", list(BASELINES))
def test_peertube_shaped_documents_conform(name: str) -> None:
    doc = BASELINES[name]()
    assert problems(doc) == []
    check(doc)


def _peertube_documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(DATA.glob("*.json")):
        doc = json.loads(path.read_text())
        body = doc.get("body") if isinstance(doc.get("body"), dict) else doc  # captured requests: their body
        if "type" in body:
            found.append((path.name, body))
    return found


def test_real_documents_are_there() -> None:
    names = [name for name, _ in _peertube_documents()]
    assert {"announce-without-context.json", "create.json", "http-signature.json"} <= set(names)


@pytest.mark.parametrize(("name", "doc"), _peertube_documents(), ids=[name for name, _ in _peertube_documents()])
def test_real_documents_conform(name: str, doc: dict[str, Any]) -> None:
    assert problems(doc) == [], name


# ---------------------------------------------------------------- one broken rule each


def _set(path: str, value: Any) -> Callable[[Any], None]:
    """Mutation setting (or, with ``...``, deleting) the dotted ``path`` (``url.1.tag.2.fps``)."""

    def apply(doc: Any) -> None:
        *parents, last = path.split(".")
        for key in parents:
            doc = doc[int(key)] if isinstance(doc, list) else doc[key]
        key: Any = int(last) if isinstance(doc, list) else last
        if value is ...:
            del doc[key]
        else:
            doc[key] = value

    return apply


UNLISTED = f"{ACCOUNT}/followers"
MUTATIONS: list[tuple[str, str, Callable[[Any], None], str]] = [
    ("video", "empty content", _set("content", ""), "content"),
    ("create_video", "empty content, embedded", _set("object.content", ""), "object.content"),
    ("video", "name of 2 characters", _set("name", "ab"), "name"),
    ("video", "name of 121 characters", _set("name", "x" * 121), "name"),
    ("video", "duration in words", _set("duration", "5 minutes"), "duration"),
    ("video", "uuid not a UUID", _set("uuid", "not-a-uuid"), "uuid"),
    ("video", "uuid of version 1", _set("uuid", "9c9de5e8-0a1b-1f2c-9d3e-1a2b3c4d5e6f"), "uuid"),
    ("video", "no Group in attributedTo", _set("attributedTo", [{"type": "Person", "id": ACCOUNT}]), "attributedTo"),
    ("video", "attributedTo not a list", _set("attributedTo", CHANNEL), "attributedTo"),
    ("video", "channel on another host", _set("attributedTo", [{"type": "Group", "id": "https://elsewhere.example/c/x"}]), "attributedTo"),
    ("video", "no thumbnail", _set("icon", []), "icon"),
    ("video", "png thumbnail only", _set("icon", [{"type": "Image", "url": f"{PT}/t.png", "mediaType": "image/png", "width": 1, "height": 1}]), "icon"),
    ("video", "url not a list", _set("url", VID), "url"),
    ("video", "published in words", _set("published", "yesterday"), "published"),
    ("video", "updated missing", _set("updated", ...), "updated"),
    ("video", "negative views", _set("views", -1), "views"),
    ("video", "numeric category identifier", _set("category", {"identifier": 2, "name": "Films"}), "category"),
    ("video", "language without identifier", _set("language", {"name": "French"}), "language"),
    ("video", "language over 10 characters", _set("language", {"identifier": "x" * 11}), "language.identifier"),
    ("video", "negative licence", _set("licence", {"identifier": "-1"}), "licence"),
    ("video", "content as plain text", _set("mediaType", "text/plain"), "mediaType"),
    ("video", "support of 2 characters", _set("support", "ab"), "support"),
    ("video", "id not http(s)", _set("id", "ftp://peertube.example/v"), "id"),
    ("video", "unlisted addressed to followers", _set("to", [UNLISTED]), "to"),
    ("video", "fractional fps in HLS", _set("url.1.tag.2.fps", 29.97), "url[1].tag[2].fps"),
    ("video", "file size missing in HLS", _set("url.1.tag.2.size", ...), "url[1].tag[2].size"),
    ("video", "magnet without infohash", _set("url.1.tag.5.href", "magnet:?xt=urn:btih:abc"), "url[1].tag[5].href"),
    ("video", "HLS without tag list", _set("url.1.tag", None), "url[1]"),
    ("video", "storyboard url not a list", _set("preview.0.url", {"href": f"{PT}/s.jpg"}), "preview[0].url"),
    ("note", "empty content", _set("content", ""), "content"),
    ("create_note", "empty content, embedded", _set("object.content", ""), "object.content"),
    ("note", "no inReplyTo", _set("inReplyTo", ...), "inReplyTo"),
    ("note", "inReplyTo as an object", _set("inReplyTo", {"id": VID}), "inReplyTo"),
    ("note", "no published", _set("published", ...), "published"),
    ("note", "to not a list", _set("to", PUBLIC), "to"),
    ("note", "addressed to no one", lambda d: d.update(to=[], cc=[]), "to"),
    ("note", "attributedTo as an object", _set("attributedTo", {"type": "Person", "id": ACCOUNT}), "attributedTo"),
    ("note", "author on another host", _set("attributedTo", "https://elsewhere.example/u/x"), "attributedTo"),
    ("tombstone", "no deleted date", _set("deleted", ...), "deleted"),
    ("person", "preferredUsername with a space", _set("preferredUsername", "ro ot"), "preferredUsername"),
    ("person", "no inbox", _set("inbox", ...), "inbox"),
    ("person", "outbox not a URL", _set("outbox", "outbox"), "outbox"),
    ("person", "PKCS#1 public key", _set("publicKey.publicKeyPem", "-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----"), "publicKey.publicKeyPem"),
    ("person", "no publicKey", _set("publicKey", ...), "publicKey"),
    ("person", "sharedInbox not a URL", _set("endpoints.sharedInbox", "/inbox"), "endpoints.sharedInbox"),
    ("group", "channel without attributedTo", _set("attributedTo", ...), "attributedTo"),
    ("group", "channel name of 121 characters", _set("name", "n" * 121), "name"),
    ("group", "channel support of empty string", _set("support", ""), "support"),
    ("update_group", "embedded channel without owner", _set("object.attributedTo", []), "object.attributedTo"),
    ("accept", "Accept of a Like", _set("object", activity("Like", VID)), "object.type"),
    ("reject", "Reject of an Announce", _set("object", activity("Announce", VID)), "object.type"),
    ("like", "object not a URL", _set("object", "not a url"), "object"),
    ("dislike", "object missing", _set("object", ...), "object"),
    ("like", "to with as:Public", _set("to", ["as:Public"]), "to[0]"),
    ("announce", "cc is null", _set("cc", None), "cc"),
    ("follow", "no id", _set("id", ...), "id"),
    ("follow", "actor not a URL", _set("actor", "root"), "actor"),
    ("delete_url", "object not a URL", _set("object", "video 7"), "object"),
    ("create_video", "object by reference", _set("object", VID), "object"),
    ("update_video", "unlisted Update addressed to followers", _set("to", [UNLISTED]), "to"),
    ("create_note", "Create of a Like", _set("object", activity("Like", VID)), "object.type"),
    ("update_group", "Update of a Note", _set("object", note()), "object.type"),
    ("undo_follow", "Undo by reference", _set("object", f"{ACCOUNT}/follows/9"), "object"),
    ("undo_follow", "undone Follow without id", _set("object.id", ...), "object.id"),
    ("undo_like", "undone Like of nothing", _set("object.object", "nothing"), "object.object"),
    ("view", "actor as an object", _set("actor", {"type": "Application", "id": f"{PT}/accounts/peertube"}), "actor"),
    ("view", "object as an object", _set("object", {"id": VID}), "object"),
    ("flag", "reason of 1 character", _set("content", "x"), "content"),
    ("flag", "reason of 3001 characters", _set("content", "x" * 3001), "content"),
    ("flag", "object not a URL", _set("object", ["video 7"]), "object"),
    ("create_cache_file", "url as a list", _set("object.url", [cache_file()["url"]]), "object.url"),
    ("create_cache_file", "expires in words", _set("object.expires", "next week"), "object.expires"),
    ("undo_cache_file", "undone CacheFile of nothing", _set("object.object.object", "nothing"), "object.object.object"),
    ("create_playlist", "playlist without uuid", _set("object.uuid", ...), "object.uuid"),
    ("create_playlist", "playlist with two owners", _set("object.attributedTo", [CHANNEL, ACCOUNT]), "object.attributedTo"),
    ("create_watch_action", "negative watch section", _set("object.watchSections", [{"startTimestamp": -1, "endTimestamp": 2}]), "object.watchSections"),
    ("like", "unknown type", _set("type", "Question"), "type"),
]


@pytest.mark.parametrize(("base", "mutate", "field"), [(b, m, f) for b, _, m, f in MUTATIONS],
                         ids=[f"{b}: {what}" for b, what, _, _ in MUTATIONS])  # fmt: skip
def test_mutated_documents_are_reported_naming_the_field(base: str, mutate: Callable[[Any], None], field: str) -> None:
    doc = copy.deepcopy(BASELINES[base]())
    mutate(doc)
    found = problems(doc)
    assert any(p.startswith(f"{field}: ") for p in found), found
    assert all("PeerTube" in p for p in found), found  # each says what PeerTube does with it
    with pytest.raises(Nonconforming, match=re.escape(field)):
        check(doc)


def test_messages_say_refused_or_what_breaks() -> None:
    empty = video() | {"content": ""}
    assert problems(empty) == [
        'content: an empty string; PeerTube takes null or 3–10000 characters (PeerTube refuses the Video)'
    ]
    (support,) = problems(video() | {"support": "ab"})
    assert support.startswith('support: "ab"; ') and "check passes, then saving the Video fails" in support
    (accept,) = problems(activity("Accept", activity("Like", VID)))
    assert "does not read the object" in accept


# ---------------------------------------------------------------- documents Shoal builds


T = datetime(2024, 9, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def shoal(tmp_path: Path) -> Shoal:
    """A Shoal with settings only: the document builders tested here touch no database."""
    settings = Settings(public_url="https://shoal.example", data_dir=tmp_path, p2p_enabled=True)
    return Shoal(settings=settings, db=None, storage=None, limiter=None, secret=b"s")  # type: ignore[arg-type]


def local_actor(kind: str, name: str, owner: Actor | None = None, key: str = PEM) -> Actor:
    folder = "video-channels" if kind == "Group" else "accounts"
    ap_id = f"https://shoal.example/{folder}/{name}"
    return Actor(id=len(name), kind=kind, preferred_username=name, host=None, ap_id=ap_id, inbox_url=f"{ap_id}/inbox",
                 outbox_url=f"{ap_id}/outbox", followers_url=f"{ap_id}/followers", following_url=f"{ap_id}/following",
                 display_name=name.title(), summary="", support="", public_key_pem=key, created_at=T, owner=owner)  # fmt: skip


def local_video(channel: Actor, **changes: Any) -> tuple[Video, list[Rendition]]:
    fields: dict[str, Any] = dict(
        id=7, uuid="0b5a4a4e-3c1e-4d9f-8a55-2f6a7b8c9d0e", channel=channel, name="A demo", description="A **demo**",
        support="", language="en", category=15, licence=1, tags=["demo", "shoal"], privacy=Privacy.PUBLIC, nsfw=False,
        comments_enabled=True, download_enabled=True, wait_transcoding=True, hidden=False, duration=95.0,
        aspect_ratio=16 / 9, state=VideoState.PUBLISHED, master_playlist="abc-master.m3u8",
        segments_sha256="abc-segments-sha256.json", thumbnail="t.jpg", preview="p.jpg",
        storyboard={"sprites": ["x.jpg"], "tileWidth": 192, "tileHeight": 108, "columns": 10, "rows": 10, "tileDuration": 2},
        views=3, created_at=T, updated_at=T, published_at=T, originally_published_at=None, remote_url=None,
    )  # fmt: skip
    renditions = [
        Rendition(id=h, video_id=7, height=h, width=h * 16 // 9, fps=29.97, size=h * 1000, playlist_path=f"f-{h}.m3u8",
                  file_path=f"f-{h}-fragmented.mp4", torrent_path=f"f-{h}-hls.torrent", info_hash=f"{h:040x}")
        for h in (720, 360)
    ]  # fmt: skip
    return Video(**(fields | changes)), renditions


def test_shoal_video_documents_conform(shoal: Shoal) -> None:
    alice = local_actor("Person", "alice")
    channel = local_actor("Group", "alice_channel", alice)
    video_, renditions = local_video(channel)
    for doc in (
        to_ap(shoal, video_, renditions),
        create_activity(shoal, video_, renditions),
        update_activity(shoal, video_, renditions),
        delete_activity(shoal, video_),
        announce_activity(shoal, video_, channel),
    ):
        assert problems(doc) == [], doc["type"]


def test_shoal_video_with_short_texts_conforms(shoal: Shoal) -> None:
    # PeerTube refuses a Video whose content is "" (or support under 3 characters): null instead.
    channel = local_actor("Group", "alice_channel", local_actor("Person", "alice"))
    for description, support in (("", ""), ("ab", "ab"), ("abc", "abc")):
        video_, renditions = local_video(channel, description=description, support=support)
        assert problems(to_ap(shoal, video_, renditions)) == [], (description, support)


def test_shoal_unlisted_video_stays_unlisted(shoal: Shoal) -> None:
    channel = local_actor("Group", "alice_channel", local_actor("Person", "alice"))
    video_, renditions = local_video(channel, privacy=Privacy.UNLISTED)
    assert problems(create_activity(shoal, video_, renditions)) == []


def test_shoal_rating_documents_conform(shoal: Shoal) -> None:
    alice = local_actor("Person", "alice")
    remote, _ = local_video(local_actor("Group", "c"), remote_url=VID)
    for kind in ("like", "dislike"):
        rated = rate_activity(alice, remote, VID, kind)
        undo = {"type": "Undo", "id": f"{rated['id']}/undo", "actor": alice.ap_id, "object": rated,
                "to": [PUBLIC], "cc": []}  # fmt: skip
        assert problems(rated) == [] and problems(undo) == []


def test_shoal_actor_and_follow_documents_conform(shoal: Shoal) -> None:
    from bovine.crypto import generate_rsa_public_private_key

    public_pem, _ = generate_rsa_public_private_key()  # the key Shoal's actors are made with
    alice = local_actor("Person", "alice", key=public_pem)
    channel = local_actor("Group", "alice_channel", alice, key=public_pem)
    app = local_actor("Application", "peertube", key=public_pem)
    remote = Actor(kind="Group", preferred_username="root_channel", host="peertube.example", ap_id=CHANNEL,
                   inbox_url=f"{CHANNEL}/inbox")  # fmt: skip
    for doc in (
        actor_to_ap(shoal, alice),
        actor_to_ap(shoal, channel),
        actor_to_ap(shoal, app),
        follow_activity(f"{alice.ap_id}/follows/1f", alice, remote),
        follow_activity(f"{app.ap_id}/follows/2e", app, remote),
    ):
        assert problems(doc) == [], doc["type"]
    # A channel rendered without its owner loaded has no attributedTo: PeerTube refuses it.
    orphan = local_actor("Group", "lonely_channel")
    assert any(p.startswith("attributedTo: ") for p in problems(actor_to_ap(shoal, orphan)))


def test_shoal_note_and_cache_file_documents_conform(shoal: Shoal) -> None:
    alice = local_actor("Person", "alice")
    video_, _ = local_video(local_actor("Group", "alice_channel", alice))
    comment = Comment(id=3, video_id=7, account_id=alice.id, text="hello *there*", created_at=T, updated_at=T,
                      deleted_at=None, ap_id=None, in_reply_to_id=None)  # fmt: skip
    ctx = NoteContext(video_, alice, "https://shoal.example/videos/watch/0b5a4a4e-3c1e-4d9f-8a55-2f6a7b8c9d0e", [])
    assert problems(note_to_ap(shoal, comment, ctx)) == []
    comment.deleted_at = T
    assert problems(note_to_ap(shoal, comment, ctx)) == []
    remote, _ = local_video(local_actor("Group", "c"), remote_url=VID)
    mirror = VideoMirror(expires_at=T)
    assert problems(cachefile_to_ap(shoal, remote, mirror)) == []

"""Who sees which video: the full matrix of viewers × privacies × states, over get and lists.

One instance, twelve videos (public/unlisted/private/internal × published/processing/hidden)
owned by ``owner``; every viewer asks for every video and for every list, and each answer
is compared with the table below.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select, update

from instance.models import Privacy, Role, Video, VideoState
from instance.services.files import forget
from tests.conftest import ApiClient, Instance
from tests.instance.test_videos import login, new_video

PRIVACIES = {
    "public": Privacy.PUBLIC,
    "unlisted": Privacy.UNLISTED,
    "private": Privacy.PRIVATE,
    "internal": Privacy.INTERNAL,
}
CONDITIONS = ("published", "processing", "hidden")
VIEWERS = ("anonymous", "user", "owner", "moderator", "admin")

# Which (privacy, condition) each viewer may open with the video's short UUID.
ALL = {(p, c) for p in PRIVACIES for c in CONDITIONS}
CAN_GET = {
    "anonymous": {("public", "published"), ("unlisted", "published")},
    "user": {("public", "published"), ("unlisted", "published"), ("internal", "published")},
    "owner": ALL,
    "moderator": ALL,
    "admin": ALL,
}
# With the numeric id (which anyone can count), an unlisted video opens only for its owner
# and moderators.
CAN_GET_BY_NUMBER = {
    viewer: allowed if viewer in ("owner", "moderator", "admin") else allowed - {("unlisted", "published")}
    for viewer, allowed in CAN_GET.items()
}
# Which videos each viewer finds in the general lists (GET /videos, channel, account videos).
IN_LISTS = {
    "anonymous": {("public", "published")},
    "user": {("public", "published"), ("internal", "published")},
    "owner": {("public", "published"), ("internal", "published")},
    "moderator": {("public", "published"), ("internal", "published")},
    "admin": {("public", "published"), ("internal", "published")},
}


async def _setup(instance: Instance) -> tuple[dict[str, ApiClient], dict[tuple[str, str], Video]]:
    clients = {
        "anonymous": instance.client,
        "user": await login(instance, "someone"),
        "owner": await login(instance, "owner"),
        "moderator": await login(instance, "mod", Role.MODERATOR),
        "admin": await login(instance, "boss", Role.ADMIN),
    }
    videos: dict[tuple[str, str], Video] = {}
    for pname, privacy in PRIVACIES.items():
        for condition in CONDITIONS:
            state = VideoState.PROBED if condition == "processing" else VideoState.PUBLISHED
            videos[(pname, condition)] = await new_video(
                instance, "owner", f"{pname} {condition}", privacy=privacy, state=state
            )
    hidden = [v.id for (_, c), v in videos.items() if c == "hidden"]
    async with instance.shoal.db.write() as session:
        await session.execute(update(Video).where(Video.id.in_(hidden)).values(hidden=True))
    return clients, videos


async def test_visibility_matrix(instance: Instance) -> None:
    clients, videos = await _setup(instance)
    by_id = {video.id: key for key, video in videos.items()}
    wrong: list[str] = []
    for viewer in VIEWERS:
        client = clients[viewer]
        asks = [(key, ident) for key, video in videos.items() for ident in (str(video.id), video.short_uuid)]
        answers = await asyncio.gather(*(client.get(f"/api/v1/videos/{ident}") for _, ident in asks))
        for (key, ident), (status, body) in zip(asks, answers, strict=True):
            allowed = CAN_GET_BY_NUMBER[viewer] if ident.isdigit() else CAN_GET[viewer]
            expected = 200 if key in allowed else 404
            if status != expected:
                wrong.append(f"{viewer} GET {key} by {ident}: {status}, expected {expected}")
            if status == 404 and body["code"] != "video_not_found":
                wrong.append(f"{viewer} GET {key}: code {body['code']}")
        for path in (
            "/api/v1/videos?count=100",
            "/api/v1/video-channels/owner_channel/videos?count=100",
            "/api/v1/accounts/owner/videos?count=100",
        ):
            status, body = await client.get(path)
            assert status == 200, (viewer, path, body)
            seen = {by_id[item["id"]] for item in body["data"]}
            if seen != IN_LISTS[viewer]:
                wrong.append(f"{viewer} {path}: {sorted(seen)}, expected {sorted(IN_LISTS[viewer])}")
            if body["total"] != len(IN_LISTS[viewer]):
                wrong.append(f"{viewer} {path}: total {body['total']}")
    assert not wrong, "\n".join(wrong)

    status, body = await clients["owner"].get("/api/v1/users/me/videos?count=100")
    assert status == 200 and body["total"] == 12
    assert {by_id[item["id"]] for item in body["data"]} == ALL


async def test_privileged_list_filters(instance: Instance) -> None:
    clients, videos = await _setup(instance)
    by_id = {video.id: key for key, video in videos.items()}

    async def listed(viewer: str, path: str) -> set[tuple[str, str]] | int:
        status, body = await clients[viewer].get(path)
        if status != 200:
            assert body["code"] == "insufficient_role", body
            return status
        return {by_id[item["id"]] for item in body["data"]}

    # Moderators may ask for any privacy, and for unpublished (1) and hidden (2) videos.
    assert await listed("moderator", "/api/v1/videos?privacyOneOf=3") == {("private", "published")}
    assert await listed("admin", "/api/v1/videos?privacyOneOf=2&privacyOneOf=3") == {
        ("unlisted", "published"),
        ("private", "published"),
    }
    assert await listed("moderator", "/api/v1/videos?privacyOneOf=1&include=3") == {
        ("public", c) for c in CONDITIONS
    }
    assert await listed("moderator", "/api/v1/videos?include=1") == {
        ("public", "published"),
        ("public", "processing"),
        ("internal", "published"),
        ("internal", "processing"),
    }
    # Others may narrow to what they can list anyway, and are refused beyond it.
    assert await listed("user", "/api/v1/videos?privacyOneOf=4") == {("internal", "published")}
    assert await listed("user", "/api/v1/videos?privacyOneOf=1&privacyOneOf=4") == {
        ("public", "published"),
        ("internal", "published"),
    }
    assert await listed("anonymous", "/api/v1/videos?privacyOneOf=1") == {("public", "published")}
    assert await listed("anonymous", "/api/v1/videos?privacyOneOf=4") == 403
    assert await listed("user", "/api/v1/videos?privacyOneOf=3") == 403
    assert await listed("user", "/api/v1/videos?privacyOneOf=2") == 403
    assert await listed("user", "/api/v1/videos?include=1") == 403
    assert await listed("owner", "/api/v1/videos?privacyOneOf=3") == 403
    # On their own channel and account, the owner may ask like a moderator.
    assert await listed("owner", "/api/v1/video-channels/owner_channel/videos?privacyOneOf=3") == {
        ("private", "published")
    }
    assert await listed("owner", "/api/v1/accounts/owner/videos?privacyOneOf=3&include=3") == {
        ("private", c) for c in CONDITIONS
    }
    assert await listed("user", "/api/v1/video-channels/owner_channel/videos?privacyOneOf=3") == 403
    assert await listed("user", "/api/v1/accounts/owner/videos?include=2") == 403


async def test_privacy_change_moves_video_in_and_out_of_sight(instance: Instance) -> None:
    owner = await login(instance, "owner")
    viewer = await login(instance, "viewer")
    video = await new_video(instance, "owner")
    status, _ = await owner.put(f"/api/v1/videos/{video.id}", json={"privacy": 3})
    assert status == 204
    for client in (instance.client, viewer):
        status, _ = await client.get(f"/api/v1/videos/{video.id}")
        assert status == 404
        status, body = await client.get("/api/v1/videos")
        assert body["total"] == 0
    status, body = await owner.get(f"/api/v1/videos/{video.id}")
    assert status == 200 and body["privacy"] == {"id": 3, "label": "Private"}
    status, _ = await owner.put(f"/api/v1/videos/{video.id}", json={"privacy": 4})
    status, _ = await instance.client.get(f"/api/v1/videos/{video.id}")
    assert status == 404
    status, body = await viewer.get("/api/v1/videos")
    assert body["total"] == 1 and body["data"][0]["privacy"]["id"] == 4
    status, _ = await owner.put(f"/api/v1/videos/{video.id}", json={"privacy": 1})
    status, body = await instance.client.get("/api/v1/videos")
    assert body["total"] == 1


async def test_unlisted_video_is_not_found_by_counting_numeric_ids(instance: Instance) -> None:
    """Every route that names a video answers an unlisted one by UUID or short UUID only,
    except to its owner and moderators; a numeric id answers like a missing video."""
    owner = await login(instance, "owner")
    someone = await login(instance, "someone")
    moderator = await login(instance, "mod", Role.MODERATOR)
    video = await new_video(instance, "owner", "unlisted", privacy=Privacy.UNLISTED)
    number = str(video.id)
    for client in (instance.client, someone):
        for ident in (number, video.uuid, video.short_uuid):
            expected = 404 if ident == number else 200
            status, body = await client.get(f"/api/v1/videos/{ident}")
            assert status == expected, (ident, body)
            if expected == 404:
                assert body["code"] == "video_not_found"
            for path in (f"/api/v1/videos/{ident}/description", f"/api/v1/videos/{ident}/comment-threads"):
                status, _ = await client.get(path)
                assert status == expected, path
            for page in (f"/w/{ident}", f"/videos/embed/{ident}"):
                status, _ = await client.get(page)
                assert status == expected, page
        status, _ = await someone.post(f"/api/v1/videos/{number}/comment-threads", json={"text": "found you"})
        assert status == 404
        status, _ = await someone.put(f"/api/v1/videos/{number}/rate", json={"rating": "like"})
        assert status == 404
        status, _ = await someone.post(f"/api/v1/videos/{number}/token")
        assert status == 404
    for client in (owner, moderator):
        status, body = await client.get(f"/api/v1/videos/{number}")
        assert status == 200 and body["uuid"] == video.uuid
    # The watch page itself names the video by UUID for rating and comments.
    status, html = await someone.get(f"/w/{video.short_uuid}")
    assert status == 200
    assert f'data-video-id="{video.uuid}"' in html and f'data-video="{video.uuid}"' in html


async def _store_master(instance: Instance, video: Video) -> str:
    """A master playlist in storage where the pipeline puts it; returns its private URL."""
    await instance.shoal.storage.put_bytes(
        f"hls/{video.uuid}/abc-master.m3u8", b"#EXTM3U\n#EXT-X-VERSION:7\n", "application/vnd.apple.mpegurl"
    )
    return f"/static/streaming-playlists/hls/private/{video.uuid}/abc-master.m3u8"


async def test_file_token_stops_opening_when_the_right_to_watch_ends(instance: Instance) -> None:
    """A videoFileToken is bound to its holder and re-checked: it stops opening the files once
    the video turns private or its holder is blocked, however long it had left."""
    owner = await login(instance, "owner")
    someone = await login(instance, "someone")
    other = await login(instance, "other")
    moderator = await login(instance, "mod", Role.MODERATOR)
    internal = await new_video(instance, "owner", "internal one", privacy=Privacy.INTERNAL)
    master = await _store_master(instance, internal)

    async def token_of(client: ApiClient, video: Video) -> str:
        status, body = await client.post(f"/api/v1/videos/{video.uuid}/token")
        assert status == 200, body
        return body["files"]["token"]

    someone_token, other_token, owner_token = (
        await token_of(someone, internal),
        await token_of(other, internal),
        await token_of(owner, internal),
    )
    for token in (someone_token, other_token, owner_token):
        status, _ = await instance.client.get(master, params={"videoFileToken": token})
        assert status == 200

    # The holder is blocked: their token no longer opens the files; the others' still do.
    status, _ = await moderator.post(f"/api/v1/users/{await _user_id(instance, 'other')}/block", json={})
    assert status == 204
    status, body = await instance.client.get(master, params={"videoFileToken": other_token})
    assert status == 403 and body["code"] == "file_token_revoked"
    status, _ = await instance.client.get(master, params={"videoFileToken": someone_token})
    assert status == 200

    # Internal → private: a user's token closes with it; the owner's still opens.
    status, _ = await owner.put(f"/api/v1/videos/{internal.uuid}", json={"privacy": int(Privacy.PRIVATE)})
    assert status == 204
    status, body = await instance.client.get(master, params={"videoFileToken": someone_token})
    assert status == 403 and body["code"] == "file_token_revoked"
    status, _ = await instance.client.get(master, params={"videoFileToken": owner_token})
    assert status == 200

    # A token is its holder's: the same token with another user's id in it is refused.
    expiry, _, mac = someone_token.split(".")
    forged = f"{expiry}.{await _user_id(instance, 'owner')}.{mac}"
    status, body = await instance.client.get(master, params={"videoFileToken": forged})
    assert status == 403 and body["code"] == "invalid_file_token"


async def _user_id(instance: Instance, username: str) -> int:
    from instance.models import User

    async with instance.shoal.db.read() as session:
        return (await session.scalars(select(User.id).where(User.username == username))).one()


async def test_images_of_a_video_follow_its_privacy(instance: Instance) -> None:
    """Thumbnails, previews and storyboards of a video only some may watch open for exactly
    them (session or bearer, or a videoFileToken), and a public video's stop opening for anyone
    else as soon as it turns private."""
    owner = await login(instance, "owner")
    someone = await login(instance, "someone")
    prefix = "0123456789abcdef"
    video = await new_video(instance, "owner", "pictures", storage_prefix=prefix)
    storage = instance.shoal.storage
    paths = [f"/lazy-static/thumbnails/{prefix}.jpg", f"/lazy-static/previews/{prefix}.jpg"]
    await storage.put_bytes(f"thumbnails/{prefix}.jpg", b"\xff\xd8\xff thumbnail", "image/jpeg")
    await storage.put_bytes(f"previews/{prefix}.jpg", b"\xff\xd8\xff preview", "image/jpeg")
    await storage.put_bytes(f"storyboards/{video.uuid}/sb-0.jpg", b"\xff\xd8\xff sprite", "image/jpeg")
    paths.append(f"/lazy-static/storyboards/{video.uuid}/sb-0.jpg")

    for path in paths:
        status, _ = await instance.client.get(path)
        assert status == 200, path

    status, _ = await owner.put(f"/api/v1/videos/{video.uuid}", json={"privacy": int(Privacy.PRIVATE)})
    assert status == 204
    status, body = await owner.post(f"/api/v1/videos/{video.uuid}/token")
    token = body["files"]["token"]
    for path in paths:
        for client in (instance.client, someone):
            status, body = await client.get(path)
            assert status == 404 and body["code"] == "file_not_found", path
        status, _ = await owner.get(path)
        assert status == 200, path
        status, _ = await instance.client.get(path, params={"videoFileToken": token})
        assert status == 200, path
        status, _ = await instance.client.get(path, params={"videoFileToken": "ünïcode"})
        assert status == 404, path

    # Internal: any logged-in user, nobody else.
    status, _ = await owner.put(f"/api/v1/videos/{video.uuid}", json={"privacy": int(Privacy.INTERNAL)})
    assert status == 204
    for path in paths:
        status, _ = await someone.get(path)
        assert status == 200, path
        status, _ = await instance.client.get(path)
        assert status == 404, path


async def test_torrents_of_a_video_follow_its_privacy(instance: Instance) -> None:
    """A rendition's .torrent, on both its paths, answers like a missing file to whoever may not
    watch the video (private, internal, hidden or unpublished), as the video's HLS files do."""
    owner = await login(instance, "owner")
    someone = await login(instance, "someone")
    prefix = "fedcba9876543210"
    video = await new_video(instance, "owner", "torrents", storage_prefix=prefix)
    name = f"{prefix}-720-hls.torrent"
    orphan = "0123456789abcdef-720-hls.torrent"
    for stored in (name, orphan):
        await instance.shoal.storage.put_bytes(
            f"torrents/{stored}", b"d4:infod6:lengthi1eee", "application/x-bittorrent"
        )
    paths = [f"/lazy-static/torrents/{name}", f"/download/torrents/{name}"]

    async def answers(client: ApiClient, **params: str) -> list[int]:
        return [(await client.get(path, params=params))[0] for path in paths]

    assert await answers(instance.client) == [200, 200]
    # A torrent no local video owns is a missing file.
    for path in (f"/lazy-static/torrents/{orphan}", f"/download/torrents/{orphan}"):
        status, body = await instance.client.get(path)
        assert status == 404 and body["code"] == "file_not_found", path

    status, _ = await owner.put(f"/api/v1/videos/{video.uuid}", json={"privacy": int(Privacy.PRIVATE)})
    assert status == 204
    status, body = await owner.post(f"/api/v1/videos/{video.uuid}/token")
    token = body["files"]["token"]
    for client in (instance.client, someone):
        for path in paths:
            status, body = await client.get(path)
            assert status == 404 and body["code"] == "file_not_found", path
    assert await answers(owner) == [200, 200]
    assert await answers(instance.client, videoFileToken=token) == [200, 200]

    status, _ = await owner.put(f"/api/v1/videos/{video.uuid}", json={"privacy": int(Privacy.INTERNAL)})
    assert status == 204
    assert await answers(someone) == [200, 200]
    assert await answers(instance.client) == [404, 404]

    # Public again, but hidden, then unpublished: only its owner.
    status, _ = await owner.put(f"/api/v1/videos/{video.uuid}", json={"privacy": int(Privacy.PUBLIC)})
    assert status == 204
    for change in ({"hidden": True}, {"hidden": False, "state": VideoState.PROBED}):
        async with instance.shoal.db.write() as session:
            await session.execute(update(Video).where(Video.id == video.id).values(**change))
        forget(instance.shoal, video.uuid)
        assert await answers(instance.client) == [404, 404], change
        assert await answers(someone) == [404, 404], change
        assert await answers(owner) == [200, 200], change

"""Redundancy between two real instances: B mirrors A's video and announces it with a CacheFile.

B follows A; A publishes a real clip; B's admin allows A for redundancy and mirrors the
video: B copies its HLS files (same bytes), serves and seeds them, and sends A a ``Create``
of a ``CacheFile``. A then lists B's copy as an extra web seed of the rendition's torrent,
and a BitTorrent client fetches the rung from B's copy alone. Renewing sends an ``Update``
(A keeps the later expiry); dropping the mirror deletes B's copy and sends ``Undo``, and A
removes the web seed. A private video never reaches B, so it can never be mirrored.
"""

from __future__ import annotations

import posixpath
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import libtorrent as lt
from sqlalchemy import select, update

from instance.models import Rendition, Role, VideoMirror, VideoRedundancy, utcnow
from instance.storage import keys
from p2p.mirrors import renew_mirrors
from p2p.seeder import seeder_of
from tests.conftest import Instance
from tests.federation.conftest import follow_state, wait_for
from tests.p2p.test_seeding import download, get_bytes, small_clip, wait_torrents
from tests.support import upload, wait_done


async def url_list(torrent_url: str) -> list[str]:
    status, data, _ = await get_bytes(torrent_url)
    assert status == 200
    seeds = lt.bdecode(data).get(b"url-list", [])
    return [s.decode() for s in (seeds if isinstance(seeds, list) else [seeds])]


async def redundancy_rows(instance: Instance) -> list[VideoRedundancy]:
    async with instance.shoal.db.read() as session:
        rows = list(await session.scalars(select(VideoRedundancy)))
        session.expunge_all()
    return rows


async def test_mirror_cachefile_web_seed_renewal_and_expiry(make_instance: Any, tmp_path: Path) -> None:
    a: Instance = await make_instance("a", transcoding_resolutions="144")
    b: Instance = await make_instance("b", seeder_enabled=True, redundancy_lifetime=3600.0)
    alice = await a.user_client("alice")
    a_admin = await a.user_client("root", role=Role.ADMIN)
    b_admin = await b.user_client("boss", role=Role.ADMIN)
    a_host = a.settings.public_host
    status, body = await b_admin.post("/api/v1/server/following", json={"hosts": [a_host]})
    assert status in (200, 204), body

    async def accepted() -> bool:
        return (
            await follow_state(b.shoal, f"{b.url}/accounts/peertube", f"{a.url}/accounts/peertube")
            == "accepted"
        )

    await wait_for(accepted, what="B's follow of A")
    private = await upload(alice, small_clip(tmp_path), "Never mirrored", privacy=3)
    video = await upload(alice, small_clip(tmp_path), "Mirrored by B", privacy=1)
    await wait_done(alice, private["id"])
    assert (await wait_done(alice, video["id"]))["state"]["id"] == 1
    files = await wait_torrents(a, video["id"])
    file = files[0]
    file_name = posixpath.basename(file["fileUrl"])
    status, expected, _ = await get_bytes(file["fileUrl"])
    assert status == 200

    async def on_b() -> dict[str, Any] | None:
        status, body = await b.client.get(f"/api/v1/videos/{video['uuid']}")
        return body if status == 200 and body["streamingPlaylists"] else None

    remote = await wait_for(on_b, what="the video on B")
    assert (await b.client.get(f"/api/v1/videos/{private['uuid']}"))[0] == 404

    # Mirroring needs the admin's consent for A, and only once per video.
    status, body = await b_admin.post("/api/v1/server/redundancy/videos", json={"videoId": remote["id"]})
    assert status == 400 and body["code"] == "redundancy_not_allowed", body
    status, body = await b_admin.put(
        "/api/v1/server/redundancy/nowhere.example", json={"redundancyAllowed": True}
    )
    assert status == 404, body
    status, body = await b_admin.put(f"/api/v1/server/redundancy/{a_host}", json={"redundancyAllowed": True})
    assert status == 204, body
    status, body = await b_admin.post("/api/v1/server/redundancy/videos", json={"videoId": remote["id"]})
    assert status == 204, body
    status, body = await b_admin.post("/api/v1/server/redundancy/videos", json={"videoId": remote["id"]})
    assert status == 409, body
    status, body = await b.client.get("/api/v1/server/redundancy/videos")
    assert status == 401, body

    async def mirrored() -> dict[str, Any] | None:
        status, body = await b_admin.get("/api/v1/server/redundancy/videos")
        assert status == 200, body
        entry = body["data"][0]["redundancies"]["streamingPlaylists"][0] if body["data"] else None
        assert entry is None or entry["state"] != "failed", entry
        return body["data"][0] if entry and entry["state"] == "mirrored" else None

    mirror = await wait_for(mirrored, timeout=120, what="B's mirror")
    base = f"{b.url}/static/redundancy/hls/{video['uuid']}"
    assert mirror["redundancies"]["streamingPlaylists"][0]["fileUrl"] == base
    # B serves the same bytes as A, and its master playlist.
    status, copy, _ = await get_bytes(f"{base}/{file_name}")
    assert status == 200 and copy == expected
    status, master, _ = await get_bytes(
        f"{base}/{posixpath.basename(remote['streamingPlaylists'][0]['playlistUrl'])}"
    )
    assert status == 200 and master.startswith(b"#EXTM3U")

    # A hears the CacheFile: B's copy becomes a web seed of A's torrent.
    mirror_url = f"{base}/{file_name}"

    async def seeded_by_b() -> bool:
        return mirror_url in await url_list(file["torrentUrl"])

    await wait_for(seeded_by_b, timeout=120, what="B's URL in A's torrent")
    seeds = await url_list(file["torrentUrl"])
    # First A's own web seed: its S3 object, or with local storage its web-seed route.
    own = a.shoal.storage.public_url(f"hls/{video['uuid']}/{file_name}")
    assert seeds[0] == (own or f"{a.url}/p2p/web-seed/{video['uuid']}/{file_name}")
    [row] = await redundancy_rows(a)
    assert row.base_url == base and row.expires_at > utcnow() + timedelta(minutes=50)
    status, details = await a_admin.get(f"/api/v1/videos/{video['uuid']}")
    assert status == 200 and details["streamingPlaylists"][0]["redundancies"] == [{"baseUrl": base}]
    status, body = await a_admin.get("/api/v1/server/redundancy/videos?target=my-videos")
    assert status == 200 and body["data"][0]["redundancies"]["streamingPlaylists"][0]["fileUrl"] == base

    # A client with B's copy as the only web seed gets the very bytes of A's file.
    status, torrent, _ = await get_bytes(file["torrentUrl"])
    meta = lt.bdecode(torrent)
    meta[b"url-list"] = [mirror_url.encode()]
    got = await download(lt.bencode(meta), tmp_path / "from-mirror", web_seed=True)
    assert got.read_bytes() == expected
    # B's seeder seeds A's torrent from B's copy.
    async with a.shoal.db.read() as session:
        info_hash = await session.scalar(select(Rendition.info_hash).where(Rendition.video_id == video["id"]))
    seeder = seeder_of(b.shoal)
    assert seeder is not None

    async def seeding() -> bool:
        return info_hash in seeder.handles

    await wait_for(seeding, timeout=60, what="B's seeder")

    # Renewal: past half its lifetime, the mirror is renewed and A keeps the later expiry.
    async with b.shoal.db.write() as session:
        await session.execute(update(VideoMirror).values(expires_at=utcnow() + timedelta(minutes=10)))
    assert await renew_mirrors(b.shoal) == 1

    async def renewed() -> bool:
        rows = await redundancy_rows(a)
        return bool(rows) and rows[0].expires_at > row.expires_at

    await wait_for(renewed, what="the renewed CacheFile on A")

    # Dropping the mirror: B's copy goes, A forgets it and its torrent loses the web seed.
    status, body = await b_admin.delete(f"/api/v1/server/redundancy/videos/{mirror['id']}")
    assert status == 204, body
    assert not await b.shoal.storage.exists(keys.mirror(video["uuid"], file_name))
    status, _, _ = await get_bytes(mirror_url)
    assert status == 404
    status, body = await b_admin.delete(f"/api/v1/server/redundancy/videos/{mirror['id']}")
    assert status == 404 and body["code"] == "redundancy_not_found", body

    async def forgotten() -> bool:
        return not await redundancy_rows(a) and mirror_url not in await url_list(file["torrentUrl"])

    await wait_for(forgotten, timeout=120, what="A dropping B's URL")
    status, details = await a_admin.get(f"/api/v1/videos/{video['uuid']}")
    assert status == 200 and details["streamingPlaylists"][0]["redundancies"] == []


async def test_redundancy_bad_input(make_instance: Any) -> None:
    b: Instance = await make_instance("b")
    admin = await b.user_client("boss", role=Role.ADMIN)
    status, body = await admin.post("/api/v1/server/redundancy/videos", json={"videoId": 12345})
    assert status == 404 and body["code"] == "video_not_found", body
    status, body = await admin.post("/api/v1/server/redundancy/videos", json={"videoId": "x"})
    assert status == 400, body
    status, body = await admin.put("/api/v1/server/redundancy/a.example", json={})
    assert status == 400, body
    user = await b.user_client("someone")
    status, body = await user.get("/api/v1/server/redundancy/videos")
    assert status == 403, body
    async with aiohttp.ClientSession() as session, session.get(f"{b.url}/static/redundancy/hls/x/..") as resp:
        assert resp.status == 404

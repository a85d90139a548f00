"""Torrents of published videos, seeded by the instance, fetched by real clients.

A real upload goes through the pipeline; the ``make_torrents`` job makes a v1 torrent per
rendition; a libtorrent client and aria2c download a rendition from the seeder alone (web
seed removed from their copy) and from the web seed alone once the seeder is stopped. In the
scaled mode storage is S3 (moto): the web seed is the object's URL and the seeder fills its
cache from S3. Restarts and ``shoal seeder`` as
its own process are in ``test_seeder.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote_from_bytes, urlsplit

import aiohttp
import libtorrent as lt
import pytest
from sqlalchemy import select
from yarl import URL

from instance.models import Privacy, Rendition, Video
from p2p.seeder import close_session, seeder_of
from p2p.service import make_torrents
from p2p.swarm import swarm_ids
from p2p.tracker import seeder_token
from p2p.webseed import RETRY_AFTER, Serving, state_key
from tests import media
from tests.conftest import SCALED, Instance
from tests.p2p.webtorrent_scenario import transmission_client
from tests.support import upload, wait_done

TIMEOUT = 120


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("p2p-media")


def small_clip(media_dir: Path) -> Path:
    return media.make_clip(media_dir, "p2p-small.mp4", 320, 180, 30, 2.0)


async def wait_for(check: Any, what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


async def wait_torrents(instance: Instance, video_id: int) -> list[dict[str, Any]]:
    async def check() -> list[dict[str, Any]] | None:
        status, body = await instance.client.get(f"/api/v1/videos/{video_id}")
        assert status == 200, body
        files = body["streamingPlaylists"][0]["files"] if body["streamingPlaylists"] else []
        return files if files and all(f["magnetUri"] for f in files) else None

    return await wait_for(check, "the torrents")


async def get_bytes(url: str) -> tuple[int, bytes, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.read(), resp.headers


def client_session() -> lt.session:
    return lt.session(
        {
            "listen_interfaces": "127.0.0.1:0",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "allow_multiple_connections_per_ip": True,
            "webtorrent_stun_server": "",
            "ssrf_mitigation": False,  # the tracker is on 127.0.0.1
            "stop_tracker_timeout": 2,
        }
    )


async def download(torrent: bytes, save_dir: Path, *, web_seed: bool, timeout: float = TIMEOUT) -> Path:
    """Download with a fresh libtorrent session (WebTorrent-capable, default tier rules);
    without ``web_seed`` the url-list is removed."""
    meta = lt.bdecode(torrent)
    if not web_seed:
        # The trackers as published: the HTTP tracker is the first tier, so the client stops
        # there and never tries WebRTC (which never connects on loopback).
        meta.pop(b"url-list", None)
    if web_seed:
        # The web seed alone: no tracker, so no peer at all.
        meta.pop(b"announce-list")
        meta.pop(b"announce", None)
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(lt.bencode(meta))
    params.save_path = str(save_dir)
    params.flags &= ~(lt.torrent_flags.paused | lt.torrent_flags.auto_managed)
    holder = [client_session()]
    session = holder[0]
    try:
        handle = session.add_torrent(params)
        deadline = time.monotonic() + timeout
        while not handle.status().is_seeding:
            assert time.monotonic() < deadline, f"download stalled: {handle.status().progress:.0%}"
            session.pop_alerts()
            await asyncio.sleep(0.3)
        if not web_seed:
            assert handle.status().total_payload_download > 0
    finally:
        del session, handle
        await asyncio.to_thread(close_session, holder)
    return save_dir / meta[b"info"][b"name"].decode()


def seeder_only(torrent: bytes) -> bytes:
    """The torrent as published without its web seed: only a peer can serve it."""
    meta = lt.bdecode(torrent)
    meta.pop(b"url-list", None)
    return lt.bencode(meta)


async def aria2c(torrent: bytes, out: Path) -> Path:
    """Download ``torrent`` with aria2c (no DHT, LPD or PEX); the downloaded file."""
    out.mkdir()
    (out / "r.torrent").write_bytes(torrent)
    proc = await asyncio.create_subprocess_exec(
        "aria2c", "--seed-time=0", "--enable-dht=false", "--bt-enable-lpd=false",
        "--enable-peer-exchange=false", "--quiet=true", "-d", str(out / "data"), str(out / "r.torrent"),
    )  # fmt: skip
    assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
    return out / "data" / lt.bdecode(torrent)[b"info"][b"name"].decode()


async def published_rung(instance: Instance, clip: Path, title: str) -> tuple[Rendition, bytes, bytes]:
    """Upload ``clip``, wait for its torrents; the first rung's row, its .torrent and its file's bytes."""
    alice = await instance.user_client("alice")
    video = await upload(alice, clip, title, privacy=1)
    details = await wait_done(alice, video["id"])
    assert details["state"]["id"] == 1, details
    files = await wait_torrents(instance, video["id"])
    async with instance.shoal.db.read() as session:
        rows = await session.execute(select(Rendition).where(Rendition.video_id == video["id"]))
        by_height = {r.height: r for r in rows.scalars()}
    rendition = by_height[files[0]["resolution"]["id"]]
    status, torrent, _ = await get_bytes(files[0]["torrentUrl"])
    assert status == 200
    expected = await instance.shoal.storage.open_range(rendition.file_path, 0, rendition.size - 1)
    assert len(expected) == rendition.size
    return rendition, torrent, expected


async def test_torrents_seeder_web_seed_and_aria2c(
    make_instance: Any, media_dir: Path, tmp_path: Path
) -> None:
    # Embedded, the seeder runs in the web process by default; with Redis only when asked for.
    seeder_enabled = True if SCALED else None
    instance: Instance = await make_instance(seeder_enabled=seeder_enabled, transcoding_resolutions="144")
    shoal = instance.shoal
    alice = await instance.user_client("alice")
    video = await upload(alice, small_clip(media_dir), 'Garden: a tour / "part" 1', privacy=1)
    details = await wait_done(alice, video["id"])
    assert details["state"]["id"] == 1, details
    files = await wait_torrents(instance, video["id"])
    host = instance.url.removeprefix("http://")
    trackers = [f"ws://{host}/tracker/socket", f"{instance.url}/tracker/announce"]
    status, body = await instance.client.get(f"/api/v1/videos/{video['id']}")
    assert body["trackerUrls"] == trackers

    async with shoal.db.read() as session:
        renditions = list(
            (await session.execute(select(Rendition).where(Rendition.video_id == video["id"]))).scalars()
        )
    by_height = {r.height: r for r in renditions}
    file = files[0]
    rendition = by_height[file["resolution"]["id"]]
    prefix = rendition.file_path.split("/")[-1].rsplit("-", 2)[0]
    assert rendition.torrent_path == f"torrents/{prefix}-{rendition.height}-hls.torrent"
    expected = await shoal.storage.open_range(rendition.file_path, 0, rendition.size - 1)
    assert len(expected) == rendition.size

    # The .torrent: v1 only, PeerTube's name, web seed, the two trackers; served twice.
    name = rendition.torrent_path.split("/")[-1]
    status, torrent, headers = await get_bytes(f"{instance.url}/download/torrents/{name}")
    assert status == 200 and headers["Content-Disposition"] == f'attachment; filename="{name}"'
    status, lazy, _ = await get_bytes(file["torrentUrl"])
    assert status == 200 and lazy == torrent
    assert file["torrentUrl"].endswith(f"/lazy-static/torrents/{name}")
    meta = lt.bdecode(torrent)
    info = meta[b"info"]
    assert b"pieces" in info and b"meta version" not in info and b"files" not in info
    assert info[b"name"] == f"Garden- a tour - -part- 1 {rendition.height}p.mp4".encode()
    assert info[b"length"] == rendition.size
    # Local storage: the web-seed route, which stands back while the seeder serves the client.
    file_name = rendition.file_path.rsplit("/", 1)[1]
    route = f"{instance.url}/p2p/web-seed/{details['uuid']}/{file_name}"
    web_seed = shoal.storage.public_url(rendition.file_path) if SCALED else route
    assert meta[b"url-list"] in (web_seed.encode(), [web_seed.encode()])
    # The HTTP tracker is the first tier: libtorrent stops at the first tier that answers.
    assert meta[b"announce-list"] == [[trackers[1].encode()], [trackers[0].encode()]]
    assert str(lt.torrent_info(torrent).info_hashes().v1) == rendition.info_hash

    magnet = urlsplit(file["magnetUri"])
    params = parse_qs(magnet.query)
    assert magnet.scheme == "magnet"
    assert params["xt"] == [f"urn:btih:{rendition.info_hash}"]
    assert params["dn"] == [details["name"]]
    # Magnets keep PeerTube's order (they travel in ActivityPub Video objects too); a
    # WebTorrent-capable client that stops at the WebSocket tier still reaches the seeder there.
    assert params["tr"] == trackers
    assert params["xs"] == [file["torrentUrl"]] and params["ws"] == [file["fileUrl"]]

    # The seeder picks the torrent up (from local storage, or its cache filled from S3).
    seeder = seeder_of(shoal)
    assert seeder is not None and seeder.listen_port > 0

    async def seeding() -> bool:
        return rendition.info_hash in seeder.handles

    await wait_for(seeding, "the seeder")
    # It announces to our trackers with its token (not rate limited), in the torrent's order.
    token = seeder_token(shoal)
    announced = [(t["url"], t["tier"]) for t in seeder.handles[rendition.info_hash].trackers()]
    assert announced == [(f"{trackers[1]}?seeder={token}", 0), (f"{trackers[0]}?seeder={token}", 1)]
    if SCALED:
        cached = seeder.cache_dir / rendition.file_path.split("/")[-1]
        assert cached.read_bytes() == expected

    # 1. From the seeder alone: the client's copy has no web seed.
    got = await download(torrent, tmp_path / "from-seeder", web_seed=False)
    assert got.read_bytes() == expected

    # 2. aria2c, from the seeder alone (the HTTP tracker; it skips the ws:// one).
    got = await aria2c(seeder_only(torrent), tmp_path / "aria2c")
    assert got.read_bytes() == expected

    # 3. aria2c with the torrent as published: the web seed may answer 503 (aria2c then
    #    drops it), the seeder serves the rest.
    got = await aria2c(torrent, tmp_path / "aria2c-published")
    assert got.read_bytes() == expected


async def test_web_seed_alone_with_the_seeder_stopped(
    make_instance: Any, media_dir: Path, tmp_path: Path
) -> None:
    """Storage is always a seed: with the seeder stopped and no tracker, the url-list suffices."""
    instance: Instance = await make_instance(seeder_enabled=True, transcoding_resolutions="144")
    rendition, torrent, expected = await published_rung(instance, small_clip(media_dir), "Web seed only")
    seeder = seeder_of(instance.shoal)
    assert seeder is not None

    async def seeding() -> bool:
        return rendition.info_hash in seeder.handles

    await wait_for(seeding, "the seeder")
    started = time.monotonic()
    await seeder.stop()
    assert seeder.session is None and time.monotonic() - started < TIMEOUT
    got = await download(torrent, tmp_path / "from-web-seed", web_seed=True)
    assert got.read_bytes() == expected
    meta = lt.bdecode(torrent)
    for key in (b"announce", b"announce-list"):
        meta.pop(key, None)
    got = await aria2c(lt.bencode(meta), tmp_path / "aria2c")
    assert got.read_bytes() == expected
    # transmission-cli 3.00 too (it ignores loopback peers, not loopback web seeds).
    work = tmp_path / "transmission"
    (work / "out").mkdir(parents=True)
    (work / "r.torrent").write_bytes(lt.bencode(meta))
    report = await transmission_client(work / "r.torrent", work / "out")
    assert report["exit"] == 0, report
    assert Path(report["path"]).read_bytes() == expected


async def test_private_videos_have_no_torrents(make_instance: Any, media_dir: Path) -> None:
    instance: Instance = await make_instance(transcoding_resolutions="144")
    shoal = instance.shoal
    alice = await instance.user_client("alice")
    public = await upload(alice, small_clip(media_dir), "Soon private", privacy=1)
    private = await upload(alice, small_clip(media_dir), "Private from the start", privacy=3)
    await wait_done(alice, private["id"])
    await wait_done(alice, public["id"])
    await wait_torrents(instance, public["id"])
    assert await make_torrents(shoal, private["id"]) == 0

    async def rows(video_id: int) -> list[Rendition]:
        async with shoal.db.read() as session:
            result = await session.execute(select(Rendition).where(Rendition.video_id == video_id))
            return list(result.scalars())

    assert all(r.info_hash is None and r.torrent_path is None for r in await rows(private["id"]))
    status, body = await alice.get(f"/api/v1/videos/{private['id']}")
    assert status == 200 and body["trackerUrls"] == []
    assert all(
        f["torrentUrl"] is None and f["magnetUri"] is None for f in body["streamingPlaylists"][0]["files"]
    )

    # A public video made private loses its torrents (files and rows).
    made = await rows(public["id"])
    keys = [r.torrent_path for r in made]
    hashes = [bytes.fromhex(r.info_hash or "") for r in made]
    assert all([await announced_ok(instance, h) for h in hashes])
    assert all(keys) and all([await shoal.storage.exists(k) for k in keys])
    async with shoal.db.write() as session:
        (await session.get(Video, public["id"])).privacy = Privacy.PRIVATE
    assert await make_torrents(shoal, public["id"]) == 0
    assert not any([await shoal.storage.exists(k) for k in keys])
    assert all(r.info_hash is None for r in await rows(public["id"]))
    # The tracker refuses the former infohashes, and never knew the private video's swarm ids.
    assert not any([await announced_ok(instance, h) for h in hashes])
    async with shoal.db.read() as session:
        row = await session.get(Video, private["id"])
    private_ids = swarm_ids(shoal, row, await rows(private["id"]))
    assert private_ids and not any([await announced_ok(instance, bytes.fromhex(i)) for i in private_ids])


async def announced_ok(instance: Instance, info_hash: bytes) -> bool:
    """Whether the HTTP tracker accepts an announce of ``info_hash`` (else: unknown infohash)."""
    query = f"info_hash={quote_from_bytes(info_hash)}&peer_id={quote_from_bytes(os.urandom(20))}&port=6881"
    async with aiohttp.ClientSession() as session:
        async with session.get(URL(f"{instance.url}/tracker/announce?{query}", encoded=True)) as resp:
            body = lt.bdecode(await resp.read())
    if b"failure reason" in body:
        assert body[b"failure reason"] == b"unknown infohash"
        return False
    return True


async def test_the_web_seed_stands_back_while_the_seeder_serves(
    make_instance: Any, media_dir: Path, tmp_path: Path
) -> None:
    """``/p2p/web-seed/…`` sends the file to an address the seeder is not serving, ``503`` +
    ``Retry-After`` to one it is, and the file again once the seeder is gone."""
    instance: Instance = await make_instance(seeder_enabled=True, transcoding_resolutions="144")
    shoal = instance.shoal
    rendition, torrent, expected = await published_rung(instance, small_clip(media_dir), "Stand back")
    seeder = seeder_of(shoal)
    assert seeder is not None and rendition.info_hash
    info_hash = rendition.info_hash

    async def seeding() -> bool:
        return info_hash in seeder.handles

    await wait_for(seeding, "the seeder")
    uuid, file_name = rendition.file_path.split("/")[-2:]
    route = f"{instance.url}/p2p/web-seed/{uuid}/{file_name}"

    async def ask() -> tuple[int, bytes, Any]:
        async with aiohttp.ClientSession() as http, http.get(route, headers={"Range": "bytes=0-99"}) as resp:
            return resp.status, await resp.read(), resp.headers

    status, body, _ = await ask()  # nobody is served by the seeder yet
    assert status == 206 and body == expected[:100]
    other = uuid[:-1] + ("1" if uuid.endswith("0") else "0")  # another video
    for wrong in (f"/p2p/web-seed/{uuid}/nope.mp4", f"/p2p/web-seed/{other}/{file_name}",
                  f"/p2p/web-seed/{uuid}/{file_name.replace('.mp4', '.m3u8')}"):  # fmt: skip
        status, _, _ = await get_bytes(instance.url + wrong)
        assert status == 404, wrong

    # A slow client downloading from the seeder alone: the web seed stands back for its address.
    meta = lt.bdecode(seeder_only(torrent))
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(lt.bencode(meta))
    params.save_path = str(tmp_path / "slow")
    params.flags &= ~(lt.torrent_flags.paused | lt.torrent_flags.auto_managed)
    holder = [client_session()]
    holder[0].apply_settings({"download_rate_limit": max(1000, rendition.size // 20)})
    handles = [holder[0].add_torrent(params)]
    try:

        async def served() -> bool:
            holder[0].pop_alerts()
            return "127.0.0.1" in seeder.serving.served.get(info_hash, ())

        await wait_for(served, "the seeder serving the client")
        status, body, headers = await ask()
        assert status == 503 and headers["Retry-After"] == str(RETRY_AFTER), body
        assert b'"seeded_over_bittorrent"' in body
        if SCALED:  # what `shoal seeder` publishes for the web processes
            assert shoal.redis is not None
            raw = await shoal.redis.get(state_key(shoal))
            assert raw is not None and "127.0.0.1" in json.loads(raw)[info_hash]
            # A web process without the seeder answers from that view.
            kept = shoal.extras.pop("p2p.seeder")
            try:
                status, _, _ = await ask()
                assert status == 503
            finally:
                shoal.extras["p2p.seeder"] = kept

        async def complete() -> bool:
            holder[0].pop_alerts()
            return handles[0].status().is_seeding

        await wait_for(complete, "the slow client")
    finally:
        holder[0].remove_torrent(handles.pop())
        await asyncio.to_thread(close_session, holder)
    assert (tmp_path / "slow" / meta[b"info"][b"name"].decode()).read_bytes() == expected

    # The seeder gone, storage serves everyone again.
    await seeder.stop()
    status, body, _ = await ask()
    assert status == 206 and body == expected[:100]
    if SCALED:
        assert await shoal.redis.get(state_key(shoal)) is None


class FakePeer:
    """What ``Serving`` reads of a libtorrent peer."""

    def __init__(self, ip: str, progress: float, up: int, seed: bool = False) -> None:
        self.ip, self.progress, self.payload_up_speed = (ip, 6881), progress, up
        self.flags = lt.peer_info.seed if seed else 0


class FakeHandle:
    def __init__(self, peers: list[FakePeer]) -> None:
        self.peers = peers

    def get_peer_info(self) -> list[FakePeer]:
        return self.peers


def test_a_saturated_seeder_leaves_its_stalled_peers_to_storage() -> None:
    """Below its cap the seeder serves every downloading peer; at its cap, an address whose
    download has not moved for STALL seconds is starving and storage serves it."""
    serving = Serving()
    moving, stalled = FakePeer("192.0.2.1", 0.1, 400), FakePeer("::ffff:192.0.2.2", 0.1, 500)
    done = FakePeer("192.0.2.3", 1.0, 0, seed=True)
    handles = {"h": FakeHandle([moving, stalled, done])}
    serving.update(handles, 0, 0.0)  # no cap: never saturated
    assert serving.served == {"h": frozenset({"192.0.2.1", "192.0.2.2"})} and not serving.saturated
    serving.update(handles, 1000, 1.0)  # 900 B/s of 1000: saturated, both just seen
    assert serving.saturated and serving.served["h"] == {"192.0.2.1", "192.0.2.2"}
    for second in range(2, 13):
        moving.progress += 0.05
        serving.update(handles, 1000, float(second))
    assert serving.served["h"] == {"192.0.2.1"}  # 192.0.2.2 has not moved for 11 s
    serving.update(handles, 2000, 13.0)  # a higher cap: no longer saturated
    assert serving.served["h"] == {"192.0.2.1", "192.0.2.2"}


@pytest.mark.embedded_only  # local storage: with S3 the web seed stays the object's URL
async def test_a_torrent_from_before_the_route_gets_it_when_seeded(
    make_instance: Any, media_dir: Path
) -> None:
    """The seeder rewrites the url-list of a stored torrent that lists the file's plain URL (as
    every torrent did before the web-seed route); the infohash stays."""
    instance: Instance = await make_instance(seeder_enabled=True, transcoding_resolutions="144")
    shoal = instance.shoal
    rendition, torrent, _ = await published_rung(instance, small_clip(media_dir), "Old torrent")
    seeder = seeder_of(shoal)
    assert seeder is not None and rendition.info_hash and rendition.torrent_path

    async def seeding() -> bool:
        return rendition.info_hash in seeder.handles

    await wait_for(seeding, "the seeder")
    uuid, file_name = rendition.file_path.split("/")[-2:]
    route = f"{instance.url}/p2p/web-seed/{uuid}/{file_name}".encode()
    assert lt.bdecode(torrent)[b"url-list"] in (route, [route])
    meta = lt.bdecode(torrent)
    legacy = f"{instance.url}/static/streaming-playlists/{rendition.file_path}".encode()
    meta[b"url-list"] = [legacy, b"http://mirror.example/copy.mp4"]
    await shoal.storage.put_bytes(rendition.torrent_path, lt.bencode(meta), "application/x-bittorrent")
    seeder._remove(rendition.info_hash)  # as after a restart: it starts seeding it again
    await seeder.refresh()
    assert rendition.info_hash in seeder.handles
    stored = await shoal.storage.open_range(rendition.torrent_path, 0, 1 << 20)
    assert lt.bdecode(stored)[b"url-list"] == [route, b"http://mirror.example/copy.mp4"]
    assert str(lt.torrent_info(stored).info_hashes().v1) == rendition.info_hash

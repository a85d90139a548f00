"""Hot files: a public playlist answered before routing repeats the full path's answer, and stops
the moment the video's access changes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict

from instance.models import Role
from instance.web import hotfiles
from instance.web.hotfiles import HOT_FILES, HOT_SECONDS
from tests import media
from tests.conftest import ApiClient, Instance, InstanceFactory
from tests.support import PUBLISHED, upload, wait_done

# Headers that belong to one exchange, not to the file.
PER_EXCHANGE = {"date"}


@pytest.fixture
async def published(
    make_instance: InstanceFactory, tmp_path: Path
) -> tuple[Instance, ApiClient, dict[str, Any]]:
    """An instance with local storage (in both modes) and one published public video."""
    instance = await make_instance(
        storage_url=f"file://{tmp_path / 'files'}", transcoding_resolutions="240"
    )
    alice = await instance.user_client("alice")
    clip = media.make_clip(tmp_path, "clip.mp4", 320, 240, 30, 2.0)
    video = await wait_done(alice, (await upload(alice, clip, "Hot"))["id"])
    assert video["state"]["id"] == PUBLISHED, video["state"]
    return instance, alice, video


async def get(url: str, **kwargs: Any) -> tuple[int, bytes, CIMultiDict[str]]:
    async with aiohttp.ClientSession() as session, session.get(url, **kwargs) as resp:
        return resp.status, await resp.read(), resp.headers.copy()


def without_exchange(headers: CIMultiDict[str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower() not in PER_EXCHANGE}


async def test_kept_answer_repeats_the_full_answer(published) -> None:
    instance, _, video = published
    master = video["streamingPlaylists"][0]["playlistUrl"]
    hot = instance.app[HOT_FILES]
    assert not hot
    status, body, headers = await get(master)
    assert status == 200 and body.startswith(b"#EXTM3U")
    path = master.removeprefix(instance.url)
    assert path in hot, "the full path did not keep the public playlist"
    kept = hot[path]
    for _ in range(5):
        again = await get(master)
        assert again[0] == 200 and again[1] == body
        assert without_exchange(again[2]) == without_exchange(headers)
    # The headers the page hooks add are part of the kept answer, not lost by the short path.
    assert headers["X-Content-Type-Options"] == "nosniff" and "Content-Security-Policy" in headers
    assert headers["Cache-Control"] == "public, max-age=30" and headers["ETag"]
    assert hot[path] is kept, "answered by the full path again within the second"

    # What the kept answer cannot repeat goes the full way.
    status, _, _ = await get(master, headers={"If-None-Match": headers["ETag"]})
    assert status == 304
    status, problem, _ = await get(master, headers={"Authorization": "Bearer not-a-token"})
    assert status == 401 and b"invalid_token" in problem
    status, same, _ = await get(master, params={"utm": "x"})
    assert status == 200 and same == body and f"{path}?utm=x" not in hot


async def test_a_rewritten_file_shows_within_a_second(published, tmp_path: Path) -> None:
    instance, _, video = published
    manifest = video["streamingPlaylists"][0]["segmentsSha256Url"]
    status, before, _ = await get(manifest)
    assert status == 200
    stored = tmp_path / "files" / "hls" / video["uuid"] / manifest.rsplit("/", 1)[1]
    stored.write_bytes(before.replace(b"{", b'{"rewritten": true, ', 1))
    await asyncio.sleep(HOT_SECONDS + 0.1)
    status, after, _ = await get(manifest)
    assert status == 200 and b'"rewritten": true' in after


@pytest.mark.parametrize("change", ["private", "hidden", "deleted"])
async def test_access_change_stops_the_kept_answer_at_once(published, change: str) -> None:
    instance, alice, video = published
    master = video["streamingPlaylists"][0]["playlistUrl"]
    assert (await get(master))[0] == 200
    assert master.removeprefix(instance.url) in instance.app[HOT_FILES]
    if change == "private":
        status, body = await alice.put(f"/api/v1/videos/{video['id']}", json={"privacy": 3})
        assert status == 204, body
        expected = (403, b"file_token_required")
    elif change == "hidden":
        moderator = await instance.user_client("mod", role=Role.MODERATOR)
        status, body = await moderator.post(
            f"/api/v1/videos/{video['id']}/blacklist", json={"reason": "test"}
        )
        assert status in (200, 204), body
        expected = (403, b"file_token_required")
    else:
        status, body = await alice.delete(f"/api/v1/videos/{video['id']}")
        assert status == 204, body
        expected = (404, b"file_not_found")
    # No wait: the very next request is refused.
    status, body, _ = await get(master)
    assert (status, expected[1] in body) == (expected[0], True), (status, body[:200])


async def test_kept_answers_are_bounded(published, monkeypatch: pytest.MonkeyPatch) -> None:
    instance, _, video = published
    monkeypatch.setattr(hotfiles, "HOT_ENTRIES", 2)
    playlist = video["streamingPlaylists"][0]
    urls = [playlist["playlistUrl"], playlist["segmentsSha256Url"], playlist["files"][0]["playlistUrl"]]
    for url in urls:
        assert (await get(url))[0] == 200
    hot = instance.app[HOT_FILES]
    assert list(hot) == [url.removeprefix(instance.url) for url in urls[1:]]


async def test_access_decisions_share_one_read_and_a_forget_wins(published) -> None:
    """Concurrent misses read the database once; a read a privacy change overtook is not cached."""
    from sqlalchemy import event

    from instance.services import files

    instance, _, video = published
    shoal, uuid = instance.shoal, video["uuid"]
    reads: list[str] = []
    overtake = False

    def on_read(conn, cursor, statement, *args) -> None:
        # the access rule's read (background work after publication reads videos too)
        if statement.startswith("SELECT videos.id, videos.privacy, videos.hidden, videos.state"):
            reads.append(statement)
            if overtake:  # a change commits while this read is under way
                files.forget(shoal, uuid)

    sync_engine = shoal.db.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", on_read)
    try:
        files.forget(shoal, uuid)
        answers = await asyncio.gather(*(files.file_access(shoal, uuid) for _ in range(20)))
        assert len(reads) == 1, reads
        assert all(a == answers[0] for a in answers) and answers[0].published and not answers[0].needs_token
        assert files.access_decision(shoal, uuid) is not None

        files.forget(shoal, uuid)
        overtake = True
        assert (await files.file_access(shoal, uuid)) is not None
        assert len(reads) == 2
        assert files.access_decision(shoal, uuid) is None
    finally:
        event.remove(sync_engine, "before_cursor_execute", on_read)


@pytest.mark.scaled_only
async def test_another_web_process_forgets_at_once(published, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two web processes on one database and Redis: a privacy change made through one stops the
    other's cached rule and kept answer when Redis brings the news, not when they expire."""
    from instance.app import create_app
    from instance.services import files
    from tests.conftest import ShoalTestServer, free_port

    instance, alice, video = published
    monkeypatch.setattr(files, "CACHE_SECONDS", 600.0)  # without the news, the rule would stand
    other = ShoalTestServer(create_app(instance.settings), host="127.0.0.1", port=free_port())
    await other.start_server()
    try:
        master = video["streamingPlaylists"][0]["playlistUrl"]
        elsewhere = str(other.make_url(master.removeprefix(instance.url)))
        for _ in range(3):
            assert (await get(elsewhere))[0] == 200
        assert master.removeprefix(instance.url) in other.app[HOT_FILES]

        status, body = await alice.put(f"/api/v1/videos/{video['id']}", json={"privacy": 3})
        assert status == 204, body
        for _ in range(50):
            status, refused, _ = await get(elsewhere)
            if status != 200:
                break
            await asyncio.sleep(0.1)
        assert status == 403 and b"file_token_required" in refused
    finally:
        await other.close()


# ---------------------------------------------------------------- below the parser


async def read_answer(reader: asyncio.StreamReader) -> tuple[bytes, CIMultiDict[str], bytes]:
    """One HTTP/1.1 answer off a raw connection: status line, headers, body (Content-Length)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status, *lines = head[:-4].decode("latin-1").split("\r\n")
    headers: CIMultiDict[str] = CIMultiDict(line.split(": ", 1) for line in lines)
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("Content-Length", "0"))), 10)
    return status.encode(), headers, body


def request(path: str, *extra: str, version: str = "1.1") -> bytes:
    return "\r\n".join([f"GET {path} HTTP/{version}", "Host: shoal.test", *extra, "", ""]).encode()


@dataclass
class Kept:
    """A published video whose master playlist the full path has answered and kept."""

    instance: Instance
    alice: ApiClient
    video: dict[str, Any]
    path: str
    body: bytes
    headers: CIMultiDict[str]

    @property
    def server(self) -> hotfiles.HotServer:
        return self.instance.server.runner.server

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(self.instance.server.host, self.instance.server.port)


@pytest.fixture
async def kept(published) -> Kept:
    instance, alice, video = published
    master = video["streamingPlaylists"][0]["playlistUrl"]
    status, body, headers = await get(master, headers={"If-None-Match": '"not-this"'})  # the full way
    path = master.removeprefix(instance.url)
    assert status == 200 and path in instance.app[HOT_FILES]
    return Kept(instance, alice, video, path, body, headers)


async def test_below_the_parser_answers_as_the_full_path_does(kept: Kept) -> None:
    server, path, body, headers, video = kept.server, kept.path, kept.body, kept.headers, kept.video
    assert type(server) is hotfiles.HotServer
    reader, writer = await kept.connect()
    try:
        before = server.hot_answers
        writer.write(request(path, "Accept: */*", "Origin: https://elsewhere.test"))
        line, kept_headers, kept_body = await read_answer(reader)
        assert server.hot_answers == before + 1, "not answered below the parser"
        assert line == b"HTTP/1.1 200 OK" and kept_body == body
        assert without_exchange(kept_headers) == without_exchange(headers)
        assert kept_headers["Date"].endswith(" GMT") and len(kept_headers.getall("Date")) == 1

        # Still the same connection, and the next request after a privacy change is refused.
        status, problem = await kept.alice.put(f"/api/v1/videos/{video['id']}", json={"privacy": 3})
        assert status == 204, problem
        writer.write(request(path))
        line, _, refused = await read_answer(reader)
        assert line == b"HTTP/1.1 403 Forbidden" and b"file_token_required" in refused
        assert server.hot_answers == before + 1
    finally:
        writer.close()


async def test_pipelined_requests_keep_their_order(kept: Kept) -> None:
    server, path, body = kept.server, kept.path, kept.body
    reader, writer = await kept.connect()
    try:
        before = server.hot_answers
        # kept, not kept (goes to the parser with everything after it), kept
        writer.write(request(path) + request("/api/v1/config") + request(path))
        answers = [await read_answer(reader) for _ in range(3)]
        assert [a[0] for a in answers] == [b"HTTP/1.1 200 OK"] * 3
        assert answers[0][2] == body and answers[2][2] == body
        assert b'"instance"' in answers[1][2] and answers[1][1]["Content-Type"].startswith("application/json")
        assert server.hot_answers == before + 1

        # Once aiohttp is idle again and its parser between requests, the shortcut is back.
        for _ in range(20):
            writer.write(request(path))
            assert (await read_answer(reader))[2] == body
            if server.hot_answers == before + 2:
                break
            await asyncio.sleep(0.05)
        assert server.hot_answers == before + 2
    finally:
        writer.close()


async def test_what_the_shortcut_leaves_to_the_parser(kept: Kept) -> None:
    server, path, body, headers = kept.server, kept.path, kept.body, kept.headers

    async def full_way(*chunks: bytes) -> tuple[bytes, CIMultiDict[str], bytes]:
        """Send ``chunks`` on a new connection; the answer must not come from below the parser."""
        before = server.hot_answers
        reader, writer = await kept.connect()
        try:
            for chunk in chunks:
                writer.write(chunk)
                await writer.drain()
                await asyncio.sleep(0.05)
            answer = await read_answer(reader)
        finally:
            writer.close()
        assert server.hot_answers == before, chunks
        return answer

    # A head split over two reads.
    whole = request(path)
    line, _, got = await full_way(whole[:20], whole[20:])
    assert line == b"HTTP/1.1 200 OK" and got == body
    # A malformed header line: aiohttp's 400, not a kept answer.
    line, _, _ = await full_way(request(path, "Not a header"))
    assert line.split()[1] == b"400"
    # HTTP/1.0, a conditional request, a range, a body, a closing request: the full path.
    line, _, got = await full_way(request(path, version="1.0"))
    assert line == b"HTTP/1.0 200 OK" and got == body
    line, _, _ = await full_way(request(path, f"if-none-match: {headers['ETag']}"))
    assert line == b"HTTP/1.1 304 Not Modified"
    line, _, got = await full_way(request(path, "Range: bytes=0-9"))
    assert line.split()[1] in (b"200", b"206") and body.startswith(got)
    line, _, got = await full_way(request(path, "Content-Length: 4") + b"\r\n\r\n")
    assert line == b"HTTP/1.1 200 OK" and got == body
    # A head cut where the next read looks like a request for a kept file: one request.
    line, _, got = await full_way(b"GET /api/v1/config HTTP/1.1\r\nX-Note: ", request(path))
    assert line == b"HTTP/1.1 200 OK" and b'"instance"' in got
    # A body that reads like a request for a kept file is still a body.
    smuggled = request(path)
    post = f"POST {path} HTTP/1.1\r\nHost: shoal.test\r\nContent-Length: {len(smuggled)}\r\n\r\n"
    line, _, got = await full_way(post.encode(), smuggled)
    assert line.split()[1] in (b"403", b"404", b"405") and got != body
    line, answer_headers, got = await full_way(request(path, "Connection: close"))
    assert got == body and answer_headers.get("Connection", "").lower() == "close"
    line, _, got = await full_way(request(path, "Connection: keep-alive, Upgrade"))
    assert line == b"HTTP/1.1 200 OK" and got == body
    # The same plain request is answered below the parser, which the checks above rely on, and
    # so is one with the `Connection: keep-alive` browsers send.
    before = server.hot_answers
    reader, writer = await kept.connect()
    try:
        writer.write(request(path))
        assert (await read_answer(reader))[2] == body
        writer.write(request(path, "connection:  Keep-Alive", "Accept-Language: en"))
        line, answer_headers, got = await read_answer(reader)
        assert line == b"HTTP/1.1 200 OK" and got == body and "Connection" not in answer_headers
    finally:
        writer.close()
    assert server.hot_answers == before + 2


async def test_an_idle_connection_still_times_out(kept: Kept) -> None:
    server, path = kept.server, kept.path
    # aiohttp's keep-alive timeout for connections made from now on (75 s by default).
    server._kwargs["keepalive_timeout"] = 0.5
    reader, writer = await kept.connect()
    try:
        before = server.hot_answers
        for _ in range(8):  # busy for longer than the timeout: kept open
            writer.write(request(path))
            await read_answer(reader)
            await asyncio.sleep(0.2)
        assert server.hot_answers == before + 8
        assert await asyncio.wait_for(reader.read(), 5) == b"", "the idle connection was not closed"
    finally:
        writer.close()


async def test_pipelined_mixes_cut_anywhere_get_their_answers_in_order(kept: Kept) -> None:
    """Requests the short path answers and requests it leaves to the parser, pipelined and cut at
    random places across reads: every answer is the one its request gets alone, in order."""
    import itertools
    import random

    path, body, etag = kept.path, kept.body, kept.headers["ETag"]
    smuggled = request(path)
    kinds = {
        "kept": (request(path), 200),
        "api": (request("/api/v1/videos?count=5"), 200),
        "conditional": (request(path, f"If-None-Match: {etag}"), 304),
        "post": (
            f"POST {path} HTTP/1.1\r\nHost: shoal.test\r\nContent-Length: {len(smuggled)}\r\n\r\n".encode()
            + smuggled,
            None,
        ),
    }
    # What each kind gets when sent alone on a connection of its own.
    alone: dict[str, tuple[bytes, bytes]] = {}
    for name, (raw, status) in kinds.items():
        reader, writer = await kept.connect()
        try:
            writer.write(raw)
            line, _, got = await read_answer(reader)
        finally:
            writer.close()
        assert status is None or line.split()[1] == str(status).encode(), (name, line)
        alone[name] = (line, got)
    assert alone["kept"][1] == body and alone["post"][1] != body

    rng = random.Random(7)
    before = kept.server.hot_answers
    for _ in range(24):
        order = [rng.choice(list(kinds)) for _ in range(8)]
        stream = b"".join(kinds[name][0] for name in order)
        boundaries = list(itertools.accumulate(len(kinds[name][0]) for name in order))[:-1]
        # cuts between requests (where the short path may step in) and anywhere
        anywhere = rng.sample(range(1, len(stream)), rng.randint(0, 3))
        cuts = sorted(set(rng.sample(boundaries, rng.randint(0, 4)) + anywhere))
        reader, writer = await kept.connect()
        try:
            for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
                writer.write(stream[start:end])
                # the next read arrives at once, after one turn of the loop, or once this one is answered
                pause = rng.choice((None, 0.0, 0.02))
                if pause is not None:
                    await asyncio.sleep(pause)
            for name in order:
                line, _, got = await read_answer(reader)
                assert (line, got) == alone[name], (order, name, line)
        finally:
            writer.close()
    assert kept.server.hot_answers > before, "the short path never took part"

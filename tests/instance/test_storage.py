"""Storage: one contract, checked on a local directory and on a real S3 endpoint (moto_server).

The S3 tests talk HTTP to a ``moto_server`` subprocess through boto3, and fetch public,
presigned and direct-upload URLs with aiohttp, as a browser or a remote instance would.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from instance.storage import (
    TEMP_PREFIX,
    LocalStorage,
    MiB,
    NotFound,
    S3Options,
    S3Storage,
    Storage,
    StorageError,
    StorageUnavailable,
    storage_from_url,
)
from tests import s3server

s3_endpoint = s3server.s3_endpoint

PART_SIZE = 5 * MiB
BIG_SIZE = 12 * MiB + 12_345
UNREADABLE = Path("/proc/self/mem")
"""Opens fine, then fails the first read with EIO: a copy that breaks after it started."""
BAD_KEYS = [
    "",
    "/etc/passwd",
    "../escape",
    "hls/../../escape",
    "hls/./x",
    ".",
    "hls//x",
    "hls/x/",
    "hls\\x",
    "hls/x\x00.m4s",
    "hls/x\n.m4s",
    f"hls/{TEMP_PREFIX}abc",
    "a" * 256,
    "a/" * 600 + "b",
]


def s3_options(endpoint: str, **overrides: object) -> S3Options:
    """Options for moto with parts small enough that a 12 MiB file goes multipart."""
    values: dict[str, object] = {
        "endpoint_url": endpoint,
        "access_key": s3server.MOTO_ACCESS_KEY,
        "secret_key": s3server.MOTO_SECRET_KEY,
        "part_size": PART_SIZE,
        "multipart_threshold": 8 * MiB,
        "connect_timeout": 5.0,
        "read_timeout": 30.0,
    }
    values.update(overrides)
    return S3Options(**values)  # type: ignore[arg-type]


@contextlib.contextmanager
def unused_loopback_port() -> Iterator[int]:
    """A loopback port nothing listens on, held by a bound socket so no one else takes it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]




def fresh_bucket() -> str:
    """A bucket name no other test uses."""
    return f"shoal-{uuid.uuid4().hex[:20]}"


@pytest.fixture(scope="module")
def big_payload() -> bytes:
    """Random bytes, several parts long, with an uneven last part."""
    return os.urandom(BIG_SIZE)


@pytest.fixture
def big_file(tmp_path: Path, big_payload: bytes) -> Path:
    """`big_payload` on disk, outside any storage."""
    path = tmp_path / "source" / "upload.mp4"
    path.parent.mkdir()
    path.write_bytes(big_payload)
    return path


@pytest.fixture
async def local_storage(tmp_path: Path) -> AsyncIterator[LocalStorage]:
    """A local storage in a fresh directory."""
    async with LocalStorage(tmp_path / "storage") as storage:
        yield storage


@pytest.fixture
async def s3_storage(s3_endpoint: str) -> AsyncIterator[S3Storage]:
    """An S3 storage on a fresh bucket, under a key prefix, emptied and closed after."""
    storage = S3Storage(fresh_bucket(), "site/media", s3_options(s3_endpoint))
    try:
        assert await storage.ensure_bucket() is True
        yield storage
        for upload in await storage.list_multipart_uploads():
            await storage.abort_multipart_upload(upload.key, upload.upload_id)
        for key in await storage.list():
            await storage.delete(key)
    finally:
        await storage.close()


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest) -> Storage:
    """Each contract test runs once per backend."""
    return request.getfixturevalue(f"{request.param}_storage")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client, as a browser or remote instance would use."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


class TestStorageContract:
    """What every backend promises."""

    async def test_put_file_and_get_to_file_round_trip(
        self, storage: Storage, big_file: Path, big_payload: bytes, tmp_path: Path
    ) -> None:
        await storage.put_file("hls/v1/720.mp4", big_file)
        out = tmp_path / "out" / "nested" / "copy.mp4"
        await storage.get_to_file("hls/v1/720.mp4", out)
        assert out.read_bytes() == big_payload
        assert sorted(os.listdir(out.parent)) == ["copy.mp4"]
        info = await storage.stat("hls/v1/720.mp4")
        assert info is not None and info.size == BIG_SIZE

    async def test_put_bytes_replaces_previous_object(self, storage: Storage) -> None:
        await storage.put_bytes("hls/v1/master.m3u8", b"#EXTM3U\nold\n")
        await storage.put_bytes("hls/v1/master.m3u8", b"#EXTM3U\n")
        assert await storage.open_range("hls/v1/master.m3u8", 0, 99) == b"#EXTM3U\n"
        assert await storage.list("hls/v1") == ["hls/v1/master.m3u8"]

    async def test_open_range_is_inclusive_and_clipped(self, storage: Storage) -> None:
        data = bytes(range(256)) * 4
        await storage.put_bytes("hls/v1/seg.m4s", data)
        assert await storage.open_range("hls/v1/seg.m4s", 0, 0) == data[:1]
        assert await storage.open_range("hls/v1/seg.m4s", 100, 355) == data[100:356]
        assert await storage.open_range("hls/v1/seg.m4s", 1000, 5000) == data[1000:]
        assert await storage.open_range("hls/v1/seg.m4s", 1024, 2000) == b""
        with pytest.raises(ValueError, match="start <= end"):
            await storage.open_range("hls/v1/seg.m4s", 10, 9)
        with pytest.raises(ValueError, match="start <= end"):
            await storage.open_range("hls/v1/seg.m4s", -1, 9)

    async def test_stat_and_exists(self, storage: Storage) -> None:
        assert await storage.stat("thumbs/a.jpg") is None
        assert await storage.exists("thumbs/a.jpg") is False
        before = datetime.now(UTC) - timedelta(seconds=5)
        await storage.put_bytes("thumbs/a.jpg", b"\xff\xd8jpeg")
        info = await storage.stat("thumbs/a.jpg")
        assert info is not None
        assert info.size == 6
        assert info.etag
        assert before <= info.last_modified <= datetime.now(UTC) + timedelta(seconds=5)
        assert await storage.exists("thumbs/a.jpg") is True
        assert await storage.exists("thumbs") is False
        assert await storage.stat("thumbs") is None

    async def test_list_by_folder_prefix(self, storage: Storage) -> None:
        keys = ["hls/ab/1.m4s", "hls/ab/2.m4s", "hls/ab/sub/3.m4s", "hls/abc/4.m4s", "top.json"]
        for key in keys:
            await storage.put_bytes(key, key.encode())
        assert await storage.list("hls/ab") == ["hls/ab/1.m4s", "hls/ab/2.m4s", "hls/ab/sub/3.m4s"]
        assert await storage.list("hls/ab/") == await storage.list("hls/ab")
        assert await storage.list("hls/") == keys[:4]
        assert await storage.list() == keys
        assert await storage.list("nothing/here") == []

    async def test_delete(self, storage: Storage) -> None:
        await storage.put_bytes("hls/v1/a.m4s", b"a")
        await storage.put_bytes("hls/v1/b.m4s", b"b")
        await storage.delete("hls/v1/a.m4s")
        await storage.delete("hls/v1/a.m4s")
        await storage.delete("never/was.m4s")
        await storage.delete("hls/v1")
        assert await storage.list() == ["hls/v1/b.m4s"]

    async def test_delete_prefix(self, storage: Storage) -> None:
        for key in ["hls/v1/a.m4s", "hls/v1/720/b.m4s", "hls/v10/c.m4s", "torrents/v1.torrent"]:
            await storage.put_bytes(key, b"x")
        assert await storage.delete_prefix("hls/v1") == 2
        assert await storage.list() == ["hls/v10/c.m4s", "torrents/v1.torrent"]
        assert await storage.delete_prefix("hls/v1/") == 0
        assert await storage.delete_prefix("missing") == 0
        for everything in ("", "/"):
            with pytest.raises(ValueError):
                await storage.delete_prefix(everything)
        assert len(await storage.list()) == 2

    @pytest.mark.parametrize("key", BAD_KEYS)
    async def test_invalid_keys_are_refused(
        self, storage: Storage, key: str, big_file: Path, tmp_path: Path
    ) -> None:
        with pytest.raises(ValueError, match="storage key"):
            await storage.put_bytes(key, b"x")
        with pytest.raises(ValueError, match="storage key"):
            await storage.put_file(key, big_file)
        with pytest.raises(ValueError, match="storage key"):
            await storage.get_to_file(key, tmp_path / "out")
        with pytest.raises(ValueError, match="storage key"):
            await storage.open_range(key, 0, 1)
        with pytest.raises(ValueError, match="storage key"):
            await storage.stat(key)
        with pytest.raises(ValueError, match="storage key"):
            await storage.exists(key)
        with pytest.raises(ValueError, match="storage key"):
            await storage.delete(key)
        with pytest.raises(ValueError, match="storage key"):
            storage.local_path(key)
        with pytest.raises(ValueError, match="storage key"):
            storage.public_url(key)
        with pytest.raises(ValueError, match="storage key"):
            await storage.presigned_get_url(key)
        assert await storage.list() == []
        assert not (tmp_path / "escape").exists()

    async def test_missing_object_raises_not_found(self, storage: Storage, tmp_path: Path) -> None:
        with pytest.raises(NotFound):
            await storage.get_to_file("hls/none.mp4", tmp_path / "out.mp4")
        with pytest.raises(NotFound):
            await storage.open_range("hls/none.mp4", 0, 10)
        assert not (tmp_path / "out.mp4").exists()

    async def test_missing_source_stores_nothing(self, storage: Storage, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError):
            await storage.put_file("hls/v1/720.mp4", tmp_path / "no-such-file.mp4")
        assert await storage.list() == []

    async def test_check_writes_reads_and_cleans_up(self, storage: Storage) -> None:
        await storage.check()
        assert await storage.list() == []

    async def test_presign_expiry_is_bounded(self, storage: Storage) -> None:
        for expires in (0, 8 * 24 * 3600):
            with pytest.raises(ValueError, match="expire"):
                await storage.presigned_get_url("hls/v1/a.m4s", expires)


class TestS3Storage:
    """What only the S3 backend does: multipart, public and presigned URLs, direct uploads."""

    async def test_big_files_go_multipart(
        self, s3_storage: S3Storage, big_file: Path, tmp_path: Path
    ) -> None:
        await s3_storage.put_file("web/v1.mp4", big_file)
        info = await s3_storage.stat("web/v1.mp4")
        assert info is not None and info.etag.endswith("-3")
        small = tmp_path / "small.mp4"
        small.write_bytes(b"\0" * (1 * MiB))
        await s3_storage.put_file("web/small.mp4", small)
        small_info = await s3_storage.stat("web/small.mp4")
        assert small_info is not None and "-" not in small_info.etag

    async def test_public_url_serves_the_object_with_its_type(
        self, s3_storage: S3Storage, http: aiohttp.ClientSession, s3_endpoint: str
    ) -> None:
        await s3_storage.put_bytes("hls/v1/master.m3u8", b"#EXTM3U\n")
        url = s3_storage.public_url("hls/v1/master.m3u8")
        assert url == f"{s3_endpoint}/{s3_storage.bucket}/site/media/hls/v1/master.m3u8"
        async with http.get(url) as response:
            assert response.status == 403
        await asyncio.to_thread(s3server.allow_anonymous_reads, s3_endpoint, s3_storage.bucket)
        async with http.get(url) as response:
            assert response.status == 200
            assert response.content_type == "application/vnd.apple.mpegurl"
            assert await response.read() == b"#EXTM3U\n"
        assert s3_storage.local_path("hls/v1/master.m3u8") is None

    async def test_presigned_get_serves_whole_object_and_ranges(
        self,
        s3_storage: S3Storage,
        http: aiohttp.ClientSession,
        big_file: Path,
        big_payload: bytes,
    ) -> None:
        await s3_storage.put_file("web/v1.mp4", big_file)
        url = await s3_storage.presigned_get_url("web/v1.mp4", expires_s=300)
        assert "X-Amz-Signature=" in url and "X-Amz-Expires=300" in url
        async with http.get(url) as response:
            assert response.status == 200
            assert response.content_type == "video/mp4"
            assert await response.read() == big_payload
        async with http.get(url, headers={"Range": "bytes=6000000-6000099"}) as response:
            assert response.status == 206
            assert await response.read() == big_payload[6_000_000:6_000_100]

    async def test_direct_upload_round_trip(
        self,
        s3_storage: S3Storage,
        http: aiohttp.ClientSession,
        big_file: Path,
        big_payload: bytes,
        tmp_path: Path,
    ) -> None:
        key = "uploads/u1/video.mp4"
        upload_id = await s3_storage.create_multipart_upload(key, "video/mp4")
        chunks = [big_payload[i : i + PART_SIZE] for i in range(0, BIG_SIZE, PART_SIZE)]
        assert len(chunks) == 3

        async def send(number: int, chunk: bytes) -> tuple[int, str]:
            url = await s3_storage.presign_upload_part(key, upload_id, number, expires_s=600)
            async with http.put(url, data=io.BytesIO(chunk)) as response:
                assert response.status == 200, await response.text()
                return number, response.headers["ETag"]

        parts = await asyncio.gather(*(send(n, c) for n, c in enumerate(chunks, start=1)))
        listed = await s3_storage.list_parts(key, upload_id)
        assert [(p.part_number, p.size) for p in listed] == [
            (n, len(c)) for n, c in enumerate(chunks, start=1)
        ]
        assert [p.etag for p in listed] == [etag.strip('"') for _n, etag in parts]
        pending = await s3_storage.list_multipart_uploads("uploads")
        assert [(u.key, u.upload_id) for u in pending] == [(key, upload_id)]
        assert not await s3_storage.exists(key)

        await s3_storage.complete_multipart_upload(key, upload_id, reversed(parts))
        out = tmp_path / "downloaded.mp4"
        await s3_storage.get_to_file(key, out)
        assert out.read_bytes() == big_payload
        info = await s3_storage.stat(key)
        assert info is not None and info.size == BIG_SIZE and info.etag.endswith("-3")
        assert await s3_storage.list_multipart_uploads() == []
        async with http.get(await s3_storage.presigned_get_url(key)) as response:
            assert response.content_type == "video/mp4"

    async def test_complete_with_a_wrong_etag_is_refused(
        self, s3_storage: S3Storage, http: aiohttp.ClientSession
    ) -> None:
        key = "uploads/u2/video.mp4"
        upload_id = await s3_storage.create_multipart_upload(key)
        url = await s3_storage.presign_upload_part(key, upload_id, 1)
        async with http.put(url, data=io.BytesIO(b"tail part may be small")) as response:
            assert response.status == 200
        with pytest.raises(StorageError, match="InvalidPart"):
            await s3_storage.complete_multipart_upload(key, upload_id, [(1, f'"{"0" * 32}"')])
        with pytest.raises(ValueError, match="once"):
            await s3_storage.complete_multipart_upload(key, upload_id, [(1, "a"), (1, "b")])
        with pytest.raises(ValueError, match="at least one"):
            await s3_storage.complete_multipart_upload(key, upload_id, [])
        with pytest.raises(ValueError, match="Part numbers"):
            await s3_storage.presign_upload_part(key, upload_id, 0)
        assert not await s3_storage.exists(key)

    async def test_abort_leaves_nothing(
        self, s3_storage: S3Storage, http: aiohttp.ClientSession
    ) -> None:
        key = "uploads/u3/video.mp4"
        upload_id = await s3_storage.create_multipart_upload(key, "video/mp4")
        url = await s3_storage.presign_upload_part(key, upload_id, 1)
        async with http.put(url, data=io.BytesIO(os.urandom(PART_SIZE))) as response:
            assert response.status == 200
        assert len(await s3_storage.list_parts(key, upload_id)) == 1
        await s3_storage.abort_multipart_upload(key, upload_id)
        await s3_storage.abort_multipart_upload(key, upload_id)
        with pytest.raises(NotFound):
            await s3_storage.list_parts(key, upload_id)
        assert await s3_storage.list_multipart_uploads() == []
        assert await s3_storage.list() == []

    async def test_delete_prefix_spans_several_batches(self, s3_storage: S3Storage) -> None:
        s3_storage.delete_batch = 2
        keys = [f"hls/v1/{i}.m4s" for i in range(5)]
        for key in [*keys, "hls/v2/keep.m4s"]:
            await s3_storage.put_bytes(key, b"x")
        assert await s3_storage.delete_prefix("hls/v1") == 5
        assert await s3_storage.list() == ["hls/v2/keep.m4s"]

    async def test_ensure_bucket_is_idempotent(self, s3_endpoint: str) -> None:
        async with S3Storage(fresh_bucket(), "", s3_options(s3_endpoint)) as storage:
            assert await storage.ensure_bucket() is True
            assert await storage.ensure_bucket() is False
            await storage.check()

    async def test_missing_bucket_is_a_clear_error(self, s3_endpoint: str) -> None:
        async with S3Storage(fresh_bucket(), "", s3_options(s3_endpoint)) as storage:
            with pytest.raises(StorageError, match="does not exist"):
                await storage.put_bytes("a.txt", b"x")
            with pytest.raises(StorageError, match="does not exist"):
                await storage.check()

    async def test_unreachable_endpoint_is_worth_retrying(self) -> None:
        with unused_loopback_port() as port:
            options = s3_options(f"http://127.0.0.1:{port}", connect_timeout=1.0)
            async with S3Storage("nobody-home", "", options) as storage:
                with pytest.raises(StorageUnavailable, match="unreachable"):
                    await storage.put_bytes("a.txt", b"x")

    async def test_describe_masks_secrets(self, s3_endpoint: str) -> None:
        endpoint = s3_endpoint.replace("http://", "http://user:pw-in-url@")
        options = s3_options(endpoint, access_key="AKIAEXAMPLEKEY123", secret_key="s3cr3t-value")
        async with S3Storage("media", "pre", options) as storage:
            text = storage.describe()
        assert "'media'" in text and "AKIA****" in text
        for secret in ("s3cr3t-value", "EXAMPLEKEY123", "pw-in-url"):
            assert secret not in text
        assert "s3cr3t-value" not in repr(options)


class TestS3Urls:
    """Where viewers are sent, without touching the network."""

    async def test_public_url_uses_the_cdn_base(self) -> None:
        options = s3_options("http://minio.internal:9000", public_url="https://cdn.example/")
        async with S3Storage("videos", "site", options) as storage:
            assert storage.public_url("hls/v 1/a+b.m4s") == (
                "https://cdn.example/site/hls/v%201/a%2Bb.m4s"
            )

    async def test_virtual_host_and_aws_urls(self) -> None:
        virtual = s3_options("https://s3.provider.example", path_style=False)
        async with S3Storage("videos", "", virtual) as storage:
            assert storage.public_url("a.mp4") == "https://videos.s3.provider.example/a.mp4"
        async with S3Storage("videos", "p", S3Options(region="eu-west-3")) as storage:
            assert storage.public_url("a.mp4") == (
                "https://videos.s3.eu-west-3.amazonaws.com/p/a.mp4"
            )


class TestLocalStorage:
    """What only the local backend does: real paths, atomic writes, tidy directories."""

    async def test_local_path_is_the_served_file(self, local_storage: LocalStorage) -> None:
        await local_storage.put_bytes("hls/v1/master.m3u8", b"#EXTM3U\n")
        path = local_storage.local_path("hls/v1/master.m3u8")
        assert path == local_storage.root / "hls" / "v1" / "master.m3u8"
        assert path.read_bytes() == b"#EXTM3U\n"
        assert path.stat().st_mode & 0o777 == 0o644
        assert local_storage.public_url("hls/v1/master.m3u8") is None
        assert await local_storage.presigned_get_url("hls/v1/master.m3u8") is None

    async def test_direct_upload_is_not_offered(self, local_storage: LocalStorage) -> None:
        assert local_storage.supports_direct_upload is False
        with pytest.raises(NotImplementedError, match="direct uploads"):
            await local_storage.create_multipart_upload("uploads/u1/video.mp4")
        with pytest.raises(NotImplementedError):
            await local_storage.presign_upload_part("uploads/u1/video.mp4", "id", 1)

    async def test_readers_never_see_a_partial_file(
        self, local_storage: LocalStorage, big_file: Path
    ) -> None:
        target = local_storage.local_path("web/v1.mp4")
        seen: set[int] = set()
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                try:
                    seen.add(target.stat().st_size)
                except FileNotFoundError:
                    pass

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            for _ in range(3):
                await local_storage.put_file("web/v1.mp4", big_file)
                await local_storage.delete("web/v1.mp4")
        finally:
            stop.set()
            watcher.join()
        assert seen <= {BIG_SIZE}

    @pytest.mark.skipif(not UNREADABLE.exists(), reason="needs Linux /proc/self/mem")
    async def test_failed_copy_keeps_the_old_file_and_leaves_no_temp(
        self, local_storage: LocalStorage
    ) -> None:
        unreadable = UNREADABLE
        await local_storage.put_bytes("web/v1.mp4", b"old")
        with pytest.raises(OSError):
            await local_storage.put_file("web/v1.mp4", unreadable)
        assert local_storage.local_path("web/v1.mp4").read_bytes() == b"old"
        assert os.listdir(local_storage.root / "web") == ["v1.mp4"]
        with pytest.raises(OSError):
            await local_storage.put_file("web/new/v2.mp4", unreadable)
        assert not (local_storage.root / "web" / "new").exists()

    async def test_missing_source_creates_no_directories(
        self, local_storage: LocalStorage, tmp_path: Path
    ) -> None:
        with pytest.raises(FileNotFoundError):
            await local_storage.put_file("a/b/c.mp4", tmp_path / "missing.mp4")
        assert not (local_storage.root / "a").exists()

    async def test_deletes_remove_empty_directories(self, local_storage: LocalStorage) -> None:
        await local_storage.put_bytes("hls/v1/720/a.m4s", b"a")
        await local_storage.put_bytes("hls/v2/b.m4s", b"b")
        await local_storage.delete("hls/v1/720/a.m4s")
        assert not (local_storage.root / "hls" / "v1").exists()
        assert await local_storage.delete_prefix("hls/v2") == 1
        assert not (local_storage.root / "hls").exists()
        assert local_storage.root.is_dir()

    async def test_writes_in_progress_are_invisible(self, local_storage: LocalStorage) -> None:
        await local_storage.put_bytes("hls/v1/a.m4s", b"a")
        in_progress = local_storage.root / "hls" / "v1" / f"{TEMP_PREFIX}xyz"
        in_progress.write_bytes(b"partial")
        assert await local_storage.list() == ["hls/v1/a.m4s"]
        assert await local_storage.delete_prefix("hls/v1") == 1
        assert in_progress.exists()

    def test_root_must_be_absolute(self) -> None:
        with pytest.raises(ValueError, match="absolute"):
            LocalStorage("relative/dir")


class TestStorageFromUrl:
    """Settings name the storage with one URL."""

    async def test_file_url(self, tmp_path: Path) -> None:
        for url in (f"file://{tmp_path}/store", f"file://localhost{tmp_path}/store"):
            storage = storage_from_url(url)
            assert isinstance(storage, LocalStorage)
            assert storage.kind == "local"
            assert storage.root == tmp_path / "store"
            assert str(tmp_path) in storage.describe()

    async def test_s3_url(self) -> None:
        options = S3Options(
            endpoint_url="http://127.0.0.1:9000", access_key="k" * 20, secret_key="s" * 40
        )
        storage = storage_from_url("s3://videos/shoal/prod/", s3=options)
        try:
            assert isinstance(storage, S3Storage)
            assert storage.kind == "s3"
            assert (storage.bucket, storage.prefix) == ("videos", "shoal/prod/")
            assert storage.options.addressing_style == "path"
            assert "s" * 40 not in storage.describe()
        finally:
            await storage.close()

    @pytest.mark.parametrize(
        "url",
        [
            "",
            "/var/lib/shoal",
            "file://relative/path",
            "file:relative",
            "file:///var/lib/shoal?x=1",
            "ftp://host/dir",
            "s3://",
            "s3:///prefix",
            "s3://Bad_Bucket/x",
            "s3://ab",
            "s3://videos/../etc",
            "s3://videos/a//b",
        ],
    )
    def test_bad_urls_are_refused_with_a_sentence(self, url: str) -> None:
        with pytest.raises(ValueError, match=r"(?i)storage url .*\.$|storage url is empty"):
            storage_from_url(url)

    def test_s3_options_are_checked(self) -> None:
        with pytest.raises(ValueError, match="part_size"):
            S3Options(part_size=1 * MiB)
        with pytest.raises(ValueError, match="together"):
            S3Options(access_key="only-the-key")
        with pytest.raises(ValueError, match="endpoint_url"):
            S3Options(endpoint_url="minio:9000")
        assert S3Options().addressing_style == "virtual"
        assert S3Options(endpoint_url="http://minio:9000").addressing_style == "path"
        assert S3Options(endpoint_url="http://minio:9000", path_style=False).addressing_style == (
            "virtual"
        )

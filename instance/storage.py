"""Where Shoal keeps its files: one small interface, a local directory or an S3 bucket.

Everything the instance stores after an upload is processed — HLS playlists and fragmented
MP4s, torrents, thumbnails, storyboards — goes through a `Storage`. The embedded mode uses
`LocalStorage` (a directory the web app serves with sendfile); the scaled mode uses
`S3Storage` (any S3-compatible service, optionally behind a CDN). Both are picked by a URL
with `storage_from_url`, so the rest of the code never asks which one it has.

Keys are POSIX relative paths such as ``hls/<uuid>/<file>``; the same key names the same
object in both backends. Errors: `NotFound` for a missing object or upload, `StorageError`
(and `StorageUnavailable`, which is worth retrying) for backend failures, `OSError` for
problems with local paths (a caller's source or destination file, or the local storage
directory), `ValueError` for a malformed key, prefix or URL.
"""

from __future__ import annotations

import abc
import asyncio
import builtins
import contextlib
import mimetypes
import os
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Self, TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import boto3
import botocore.exceptions
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

__all__ = [
    "LocalStorage",
    "NotFound",
    "ObjectInfo",
    "PartInfo",
    "S3Options",
    "S3Storage",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "UploadInfo",
    "guess_content_type",
    "storage_from_url",
    "validate_key",
    "validate_prefix",
]

MiB = 1024 * 1024
S3_MIN_PART_SIZE = 5 * MiB
S3_MAX_PART_SIZE = 5 * 1024 * MiB
S3_MAX_PARTS = 10_000
S3_DELETE_BATCH = 1000
PRESIGN_MAX_EXPIRY_S = 7 * 24 * 3600
TEMP_PREFIX = ".shoal-tmp-"
COPY_CHUNK = 1 * MiB

_MAX_KEY_BYTES = 1024
_MAX_SEGMENT_BYTES = 255
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".m4a": "audio/mp4",
    ".torrent": "application/x-bittorrent",
    ".vtt": "text/vtt",
    ".json": "application/json",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
}
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchUpload"})
_TRANSIENT_CODES = frozenset(
    {
        "500",
        "502",
        "503",
        "504",
        "InternalError",
        "RequestTimeout",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
    }
)

T = TypeVar("T")

_SESSION_LOCK = threading.Lock()
_session: boto3.session.Session | None = None
"""One boto3 session per process, so its loaded service models are reused by every client.

Sessions are not thread-safe; clients are. Clients are only created under the lock.
"""


class StorageError(Exception):
    """A storage backend refused or failed an operation; the message says which and why."""


class NotFound(StorageError):
    """The object (or multipart upload) named in the operation does not exist."""


class StorageUnavailable(StorageError):
    """The backend could not be reached or answered with a transient error; retry later."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """Size, entity tag and modification time of a stored object.

    `etag` is opaque: S3's ETag (an MD5, or ``<md5>-<parts>`` for multipart objects) or,
    for local files, a tag derived from mtime and size. Compare it only for equality.
    """

    size: int
    etag: str
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class PartInfo:
    """One uploaded part of an unfinished multipart upload."""

    part_number: int
    etag: str
    size: int


@dataclass(frozen=True, slots=True)
class UploadInfo:
    """One unfinished multipart upload, so a sweeper can abort the abandoned ones."""

    key: str
    upload_id: str
    initiated: datetime


@dataclass(frozen=True, slots=True)
class S3Options:
    """How to reach an S3-compatible service and how to move big files through it.

    Credentials left as None come from boto3's usual chain (environment, config files,
    instance metadata). `public_url` is the base URL viewers fetch objects from (a CDN
    or a public bucket endpoint); the full object key (storage prefix included) is
    appended to it. Path-style addressing defaults to on when `endpoint_url` is set,
    because MinIO, Ceph and R2 deployments rarely have wildcard DNS for buckets.
    """

    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    public_url: str | None = None
    path_style: bool | None = None
    multipart_threshold: int = 64 * MiB
    part_size: int = 16 * MiB
    max_concurrency: int = 4
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    def __post_init__(self) -> None:
        """Refuse options that S3 would only reject later, in the middle of an upload."""
        for name in ("endpoint_url", "public_url"):
            value = getattr(self, name)
            if value is not None:
                parts = urlsplit(value)
                if parts.scheme not in ("http", "https") or not parts.hostname:
                    raise ValueError(
                        f"S3 {name} must be an http(s) URL with a host, got {value!r}."
                    )
        if (self.access_key is None) != (self.secret_key is None):
            raise ValueError("S3 access_key and secret_key must be given together, or neither.")
        if not S3_MIN_PART_SIZE <= self.part_size <= S3_MAX_PART_SIZE:
            raise ValueError(
                f"S3 part_size must be between 5 MiB and 5 GiB (S3's limits), got {self.part_size}."
            )
        if self.multipart_threshold < 1:
            raise ValueError("S3 multipart_threshold must be a positive number of bytes.")
        if self.max_concurrency < 1:
            raise ValueError("S3 max_concurrency must be at least 1.")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("S3 connect_timeout and read_timeout must be positive seconds.")
        if not self.region:
            raise ValueError("S3 region must not be empty.")

    @property
    def addressing_style(self) -> str:
        """``"path"`` or ``"virtual"``, resolving the endpoint-dependent default."""
        path_style = self.path_style if self.path_style is not None else bool(self.endpoint_url)
        return "path" if path_style else "virtual"


def validate_key(key: str) -> str:
    """Return `key` if it is a safe relative POSIX path, else raise ValueError.

    Refused: empty keys, absolute keys, ``.``/``..`` or empty segments (``a//b``, a trailing
    slash), backslashes, NUL and other control characters, segments reserved for temporary
    files, and keys longer than S3 allows. The same rule holds for both backends, so a key
    accepted on a laptop is accepted on S3 and cannot escape the local storage root.
    """
    if not isinstance(key, str) or not key:
        raise ValueError(f"A storage key must be a non-empty string, got {key!r}.")
    if key.startswith("/"):
        raise ValueError(f"A storage key must be relative, got {key!r}.")
    if "\\" in key:
        raise ValueError(f"A storage key must use '/' only, not backslashes: {key!r}.")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise ValueError(f"A storage key must not contain NUL or control characters: {key!r}.")
    if len(key.encode()) > _MAX_KEY_BYTES:
        raise ValueError(f"A storage key must be at most {_MAX_KEY_BYTES} bytes: {key[:60]!r}….")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise ValueError(f"A storage key must not have empty, '.' or '..' segments: {key!r}.")
        if segment.startswith(TEMP_PREFIX):
            raise ValueError(
                f"A storage key must not use the reserved {TEMP_PREFIX!r} names: {key!r}."
            )
        if len(segment.encode()) > _MAX_SEGMENT_BYTES:
            raise ValueError(
                f"A storage key segment must be at most {_MAX_SEGMENT_BYTES} bytes: {key!r}."
            )
    return key


def validate_prefix(prefix: str) -> str:
    """Normalise a folder prefix to ``""`` or ``"a/b/"``, refusing what `validate_key` refuses.

    Prefixes name folders, not string prefixes: ``hls/ab`` covers ``hls/ab/x`` but not
    ``hls/abc/x``. A trailing slash is optional.
    """
    if not isinstance(prefix, str):
        raise ValueError(f"A storage prefix must be a string, got {prefix!r}.")
    if prefix == "":
        return ""
    return validate_key(prefix.removesuffix("/")) + "/"


def guess_content_type(key: str) -> str:
    """Content-Type for a key from its extension, knowing the HLS and torrent types.

    RFC 8216 §4 names ``application/vnd.apple.mpegurl`` for playlists; browsers and CDNs
    need the right type on fMP4 segments too, which the stdlib table lacks.
    """
    suffix = os.path.splitext(key)[1].lower()
    if suffix in _CONTENT_TYPES:
        return _CONTENT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(key, strict=False)
    return guessed or "application/octet-stream"


def _check_range(start: int, end: int) -> None:
    if start < 0 or end < start:
        raise ValueError(f"A byte range needs 0 <= start <= end, got {start}-{end}.")


def _check_expiry(expires_s: int) -> None:
    if not 1 <= expires_s <= PRESIGN_MAX_EXPIRY_S:
        raise ValueError(
            f"A presigned URL must expire within 1 s to 7 days (SigV4), got {expires_s} s."
        )


def _check_part_number(part_number: int) -> None:
    if not 1 <= part_number <= S3_MAX_PARTS:
        raise ValueError(f"Part numbers run from 1 to {S3_MAX_PARTS}, got {part_number}.")


def _mask_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


class Storage(abc.ABC):
    """A place to put and fetch files by key; see the module docstring for the rules.

    I/O methods are coroutines that never block the event loop. `local_path`,
    `public_url` and `describe` are plain functions: they only compute. Direct uploads
    (the browser sending parts straight to the bucket) exist only where
    `supports_direct_upload` is true; elsewhere those methods raise NotImplementedError.
    A storage is an async context manager that closes itself.
    """

    kind: ClassVar[str]
    supports_direct_upload: ClassVar[bool] = False

    @abc.abstractmethod
    async def put_file(
        self, key: str, src_path: str | os.PathLike[str], content_type: str | None = None
    ) -> None:
        """Store the file at `src_path` under `key`, replacing any object there.

        Readers see either the old object or the whole new one, never a part. A missing
        source raises FileNotFoundError and leaves the key untouched. `content_type`
        defaults to `guess_content_type(key)` where the backend records one.
        """

    @abc.abstractmethod
    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Store a small in-memory payload (a playlist, a manifest) under `key`."""

    @abc.abstractmethod
    async def get_to_file(self, key: str, dst_path: str | os.PathLike[str]) -> None:
        """Stream the object to `dst_path` (parents created), replacing it atomically.

        Raises NotFound when the object does not exist.
        """

    @abc.abstractmethod
    async def open_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes `start` to `end` inclusive, as in an HTTP Range header.

        For small reads (hash checks, tests). A range running past the end is cut short;
        one starting past the end gives ``b""``. Raises NotFound for a missing object.
        """

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""

    @abc.abstractmethod
    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object under the folder `prefix`; return how many were removed.

        The empty prefix (everything) is refused with ValueError.
        """

    @abc.abstractmethod
    async def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""

    @abc.abstractmethod
    async def stat(self, key: str) -> ObjectInfo | None:
        """Size, etag and modification time of the object, or None if it is missing."""

    @abc.abstractmethod
    async def list(self, prefix: str = "") -> builtins.list[str]:
        """Sorted keys of every object under the folder `prefix` (``""`` for all)."""

    @abc.abstractmethod
    def local_path(self, key: str) -> Path | None:
        """The file backing `key` when it is on this machine (for sendfile), else None.

        The path is computed, not checked: the file may not exist.
        """

    @abc.abstractmethod
    def public_url(self, key: str) -> str | None:
        """An absolute URL viewers can fetch the object from, or None if the app serves it."""

    @abc.abstractmethod
    def describe(self) -> str:
        """One line for logs and ``shoal doctor``: where files go, with secrets masked."""

    async def presigned_get_url(self, key: str, expires_s: int = 3600) -> str | None:
        """A time-limited GET URL for a private object, or None where there is no such thing.

        Async because signing may first resolve credentials over the network.
        """
        validate_key(key)
        _check_expiry(expires_s)
        return None

    async def create_multipart_upload(self, key: str, content_type: str | None = None) -> str:
        """Start a direct upload to `key`; return its upload id."""
        raise NotImplementedError(self._no_direct_upload())

    async def presign_upload_part(
        self, key: str, upload_id: str, part_number: int, expires_s: int = 3600
    ) -> str:
        """A URL the client PUTs part `part_number` (1-based) of the upload to."""
        raise NotImplementedError(self._no_direct_upload())

    async def complete_multipart_upload(
        self, key: str, upload_id: str, parts: Iterable[tuple[int, str]]
    ) -> None:
        """Assemble the uploaded parts, given as ``(part_number, etag)``, into the object."""
        raise NotImplementedError(self._no_direct_upload())

    async def abort_multipart_upload(self, key: str, upload_id: str) -> None:
        """Drop an unfinished upload and its parts; an unknown upload is not an error."""
        raise NotImplementedError(self._no_direct_upload())

    async def list_parts(self, key: str, upload_id: str) -> builtins.list[PartInfo]:
        """Parts uploaded so far, by part number; NotFound if the upload is gone."""
        raise NotImplementedError(self._no_direct_upload())

    async def list_multipart_uploads(self, prefix: str = "") -> builtins.list[UploadInfo]:
        """Unfinished uploads under the folder `prefix`, for sweeping abandoned ones."""
        raise NotImplementedError(self._no_direct_upload())

    async def check(self) -> None:
        """Write, read back and delete a small probe object; raise StorageError on a fault.

        For ``shoal doctor`` and start-up checks: proves the credentials, the bucket or
        directory and the permissions all work, not just that a server answers.
        """
        key = f".shoal-check/{secrets.token_hex(8)}"
        payload = secrets.token_bytes(64)
        await self.put_bytes(key, payload, "application/octet-stream")
        try:
            info = await self.stat(key)
            if info is None or info.size != len(payload):
                raise StorageError(f"Storage check: {key!r} was written but stat disagrees.")
            if await self.open_range(key, 0, len(payload) - 1) != payload:
                raise StorageError(f"Storage check: {key!r} read back different bytes.")
        finally:
            await self.delete(key)
        if await self.exists(key):
            raise StorageError(f"Storage check: {key!r} is still there after delete.")

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections; the storage must not be used afterwards."""

    async def __aenter__(self) -> Self:
        """Use the storage in ``async with`` so it is always closed."""
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close on leaving the ``async with`` block."""
        await self.close()

    def _no_direct_upload(self) -> str:
        return (
            f"{self.kind} storage does not take direct uploads; "
            "upload through the instance instead."
        )


class LocalStorage(Storage):
    """Files in a directory; the web app serves them itself with sendfile and Range.

    Writes go to a temporary file in the target directory and are renamed over the final
    name, so a reader or a crash never sees half a file under a key. Directories are
    created as needed and removed again when deletes leave them empty.
    """

    kind: ClassVar[str] = "local"

    def __init__(
        self, root: str | os.PathLike[str], *, fsync: bool = False, file_mode: int = 0o644
    ) -> None:
        """Store under the absolute directory `root` (created on first write).

        `fsync` flushes each file to disk before it is renamed into place, trading speed
        for durability across power loss. `file_mode` lets a separate front server read
        the files.
        """
        root = Path(root)
        if not root.is_absolute():
            raise ValueError(f"The local storage root must be an absolute path, got {str(root)!r}.")
        self.root = root
        self.fsync = fsync
        self.file_mode = file_mode

    def describe(self) -> str:
        """Say which directory holds the files."""
        return f"local directory {self.root}"

    def local_path(self, key: str) -> Path:
        """The file under the root that backs `key`."""
        return self.root.joinpath(*validate_key(key).split("/"))

    def public_url(self, key: str) -> None:
        """Always None: the web app serves local files under its own URLs."""
        validate_key(key)
        return None

    async def put_file(
        self, key: str, src_path: str | os.PathLike[str], content_type: str | None = None
    ) -> None:
        """Copy the file into place atomically; `content_type` is not recorded locally."""
        final = self.local_path(key)
        await asyncio.to_thread(self._put_file, final, Path(src_path))

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Write the bytes into place atomically; `content_type` is not recorded locally."""
        final = self.local_path(key)
        await asyncio.to_thread(self._atomic_write, final, lambda out: out.write(data))

    async def get_to_file(self, key: str, dst_path: str | os.PathLike[str]) -> None:
        """Copy the object to `dst_path` through a temporary file beside it."""
        path = self.local_path(key)
        await asyncio.to_thread(self._get_to_file, key, path, Path(dst_path))

    async def open_range(self, key: str, start: int, end: int) -> bytes:
        """Read the inclusive byte range from the file."""
        _check_range(start, end)
        path = self.local_path(key)
        return await asyncio.to_thread(self._read_range, key, path, start, end)

    async def delete(self, key: str) -> None:
        """Remove the file and any directories that become empty."""
        path = self.local_path(key)
        await asyncio.to_thread(self._delete, path)

    async def delete_prefix(self, prefix: str) -> int:
        """Remove the folder's files and the directories left empty, up to the root."""
        folder = validate_prefix(prefix)
        if not folder:
            raise ValueError("Refusing to delete the whole storage: give a non-empty prefix.")
        return await asyncio.to_thread(self._delete_tree, self.root / folder)

    async def exists(self, key: str) -> bool:
        """Whether a regular file backs `key`."""
        path = self.local_path(key)
        return await asyncio.to_thread(path.is_file)

    async def stat(self, key: str) -> ObjectInfo | None:
        """Size and mtime of the file; the etag is derived from both."""
        path = self.local_path(key)
        return await asyncio.to_thread(self._stat, path)

    async def close(self) -> None:
        """Nothing to release: files are opened per call."""

    async def list(self, prefix: str = "") -> builtins.list[str]:
        """Walk the folder, skipping temporary files of writes in progress."""
        folder = validate_prefix(prefix)
        return await asyncio.to_thread(self._list, self.root / folder if folder else self.root)

    def _put_file(self, final: Path, src: Path) -> None:
        with src.open("rb") as fsrc:
            self._atomic_write(final, lambda out: shutil.copyfileobj(fsrc, out, COPY_CHUNK))

    def _get_to_file(self, key: str, path: Path, dst: Path) -> None:
        try:
            fsrc = path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise NotFound(f"No object {key!r} in {self.describe()}.") from exc
        with fsrc:
            self._atomic_write(dst, lambda out: shutil.copyfileobj(fsrc, out, COPY_CHUNK))

    def _atomic_write(self, final: Path, fill: Callable[[BinaryIO], Any]) -> None:
        fd, tmp = self._make_temp(final.parent)
        placed = False
        try:
            with os.fdopen(fd, "wb") as out:
                fill(out)
                if self.fsync:
                    out.flush()
                    os.fsync(out.fileno())
            os.chmod(tmp, self.file_mode)
            os.replace(tmp, final)
            placed = True
        finally:
            if not placed:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                self._prune(final.parent)

    @staticmethod
    def _make_temp(parent: Path) -> tuple[int, str]:
        for attempt in range(3):
            parent.mkdir(parents=True, exist_ok=True)
            try:
                return tempfile.mkstemp(prefix=TEMP_PREFIX, dir=parent)
            except FileNotFoundError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _read_range(self, key: str, path: Path, start: int, end: int) -> bytes:
        try:
            f = path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise NotFound(f"No object {key!r} in {self.describe()}.") from exc
        with f:
            f.seek(start)
            return f.read(end - start + 1)

    def _delete(self, path: Path) -> None:
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return
        self._prune(path.parent)

    def _delete_tree(self, folder: Path) -> int:
        if not folder.is_dir():
            return 0
        removed = 0
        for dirpath, _dirnames, filenames in os.walk(folder, topdown=False):
            for name in filenames:
                if name.startswith(TEMP_PREFIX):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(dirpath, name))
                    removed += 1
            self._rmdir_if_empty(Path(dirpath))
        self._prune(folder.parent)
        return removed

    def _prune(self, directory: Path) -> None:
        while directory != self.root and directory.is_relative_to(self.root):
            if not self._rmdir_if_empty(directory):
                return
            directory = directory.parent

    @staticmethod
    def _rmdir_if_empty(directory: Path) -> bool:
        try:
            directory.rmdir()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True

    @staticmethod
    def _stat(path: Path) -> ObjectInfo | None:
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        return ObjectInfo(
            size=st.st_size,
            etag=f"{st.st_mtime_ns:x}-{st.st_size:x}",
            last_modified=datetime.fromtimestamp(st.st_mtime, UTC),
        )

    def _list(self, folder: Path) -> builtins.list[str]:
        keys = []
        for dirpath, _dirnames, filenames in os.walk(folder):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if not name.startswith(TEMP_PREFIX):
                    keys.append(name if rel == "." else f"{rel}/{name}")
        return sorted(keys)


class S3Storage(Storage):
    """Objects in an S3-compatible bucket, under an optional key prefix.

    One boto3 client per storage (clients are thread-safe); every call runs in the default
    executor. Big files move with multipart transfers sized by `S3Options`. Browsers can
    upload straight to the bucket through presigned part URLs.
    """

    kind: ClassVar[str] = "s3"
    supports_direct_upload: ClassVar[bool] = True
    delete_batch: int = S3_DELETE_BATCH
    """Keys per DeleteObjects request; S3 takes at most 1000."""

    def __init__(self, bucket: str, prefix: str = "", options: S3Options | None = None) -> None:
        """Address `bucket`, storing every key under the folder `prefix`."""
        if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
            raise ValueError(
                f"{bucket!r} is not a valid S3 bucket name "
                "(3-63 lowercase letters, digits, dots or hyphens)."
            )
        self.bucket = bucket
        self.prefix = validate_prefix(prefix)
        self.options = options or S3Options()
        opts = self.options
        config = Config(
            signature_version="s3v4",
            region_name=opts.region,
            s3={"addressing_style": opts.addressing_style},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=opts.connect_timeout,
            read_timeout=opts.read_timeout,
            max_pool_connections=max(10, 2 * opts.max_concurrency + 4),
            # boto3 >= 1.36 adds CRC checksums to every upload by default, which many
            # S3-compatible services reject and which presigned part URLs cannot carry
            # (boto/boto3#4392); send them only where the API requires one.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._client = _new_s3_client(
            endpoint_url=opts.endpoint_url,
            region_name=opts.region,
            aws_access_key_id=opts.access_key,
            aws_secret_access_key=opts.secret_key,
            config=config,
        )
        self._transfer = TransferConfig(
            multipart_threshold=opts.multipart_threshold,
            multipart_chunksize=opts.part_size,
            max_concurrency=opts.max_concurrency,
            use_threads=True,
            preferred_transfer_client="classic",
        )
        self._closed = False

    def describe(self) -> str:
        """Bucket, prefix, endpoint and addressing, with the access key masked."""
        opts = self.options
        endpoint = _mask_url(opts.endpoint_url) if opts.endpoint_url else "AWS"
        if opts.access_key:
            shown = opts.access_key[:4] if len(opts.access_key) >= 12 else ""
            key = f"access key {shown}****"
        else:
            key = "credentials from the environment"
        return (
            f"s3 bucket {self.bucket!r} prefix {self.prefix!r} at {endpoint} "
            f"(region {opts.region}, {opts.addressing_style}-style, {key})"
        )

    def local_path(self, key: str) -> None:
        """Always None: objects are not on this machine."""
        validate_key(key)
        return None

    def public_url(self, key: str) -> str:
        """`public_url` + object key if configured, else the object's URL at the endpoint."""
        full = quote(self._full_key(key), safe="/~")
        opts = self.options
        if opts.public_url:
            return f"{opts.public_url.rstrip('/')}/{full}"
        if opts.endpoint_url:
            parts = urlsplit(opts.endpoint_url)
            host = parts.netloc.rpartition("@")[2]
            path = parts.path.rstrip("/")
            if opts.addressing_style == "path":
                return f"{parts.scheme}://{host}{path}/{self.bucket}/{full}"
            return f"{parts.scheme}://{self.bucket}.{host}{path}/{full}"
        if opts.addressing_style == "path":
            return f"https://s3.{opts.region}.amazonaws.com/{self.bucket}/{full}"
        return f"https://{self.bucket}.s3.{opts.region}.amazonaws.com/{full}"

    async def ensure_bucket(self) -> bool:
        """Create the bucket if it does not exist; return whether it was created."""
        try:
            await self._call("check bucket", self._client.head_bucket, Bucket=self.bucket)
            return False
        except NotFound:
            pass
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.options.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.options.region}
        try:
            await self._call("create bucket", self._client.create_bucket, **kwargs)
        except StorageError as exc:
            if _error_code(exc) == "BucketAlreadyOwnedByYou":
                return False
            raise
        return True

    async def put_file(
        self, key: str, src_path: str | os.PathLike[str], content_type: str | None = None
    ) -> None:
        """Upload with boto3's transfer manager: multipart above the threshold."""
        full = self._full_key(key)
        src = os.fspath(src_path)
        extra = {"ContentType": content_type or guess_content_type(key)}

        def upload() -> None:
            with open(src, "rb"):
                pass
            self._client.upload_file(src, self.bucket, full, ExtraArgs=extra, Config=self._transfer)

        await self._call(f"upload {key!r}", upload)

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """One PUT of the whole payload."""
        await self._call(
            f"put {key!r}",
            self._client.put_object,
            Bucket=self.bucket,
            Key=self._full_key(key),
            Body=data,
            ContentType=content_type or guess_content_type(key),
        )

    async def get_to_file(self, key: str, dst_path: str | os.PathLike[str]) -> None:
        """Download with boto3's transfer manager (ranged GETs in parallel for big files).

        The transfer manager writes a temporary file beside `dst_path` and renames it.
        """
        full = self._full_key(key)
        dst = Path(dst_path)

        def download() -> None:
            dst.parent.mkdir(parents=True, exist_ok=True)
            self._client.download_file(self.bucket, full, os.fspath(dst), Config=self._transfer)

        await self._call(f"download {key!r}", download)

    async def open_range(self, key: str, start: int, end: int) -> bytes:
        """One ranged GET, read whole (the range is meant to be small)."""
        _check_range(start, end)
        full = self._full_key(key)

        def read() -> bytes:
            try:
                response = self._client.get_object(
                    Bucket=self.bucket, Key=full, Range=f"bytes={start}-{end}"
                )
            except botocore.exceptions.ClientError as exc:
                if _client_error_code(exc) == "InvalidRange":
                    return b""
                raise
            with contextlib.closing(response["Body"]) as body:
                return body.read()

        return await self._call(f"read {key!r}", read)

    async def delete(self, key: str) -> None:
        """DELETE the object (S3 answers success for a missing one)."""
        await self._call(
            f"delete {key!r}",
            self._client.delete_object,
            Bucket=self.bucket,
            Key=self._full_key(key),
        )

    async def delete_prefix(self, prefix: str) -> int:
        """List the folder and delete its objects in batches of `delete_batch`."""
        folder = validate_prefix(prefix)
        if not folder:
            raise ValueError("Refusing to delete the whole storage: give a non-empty prefix.")
        full_prefix = self.prefix + folder

        def delete_all() -> int:
            removed = 0
            batch: builtins.list[dict[str, str]] = []
            for full in self._iter_full_keys(full_prefix):
                batch.append({"Key": full})
                if len(batch) >= self.delete_batch:
                    removed += self._delete_batch(batch)
                    batch = []
            if batch:
                removed += self._delete_batch(batch)
            return removed

        return await self._call(f"delete prefix {folder!r}", delete_all)

    async def exists(self, key: str) -> bool:
        """HEAD the object."""
        return await self.stat(key) is not None

    async def stat(self, key: str) -> ObjectInfo | None:
        """HEAD the object; None on 404."""
        try:
            head = await self._call(
                f"stat {key!r}",
                self._client.head_object,
                Bucket=self.bucket,
                Key=self._full_key(key),
            )
        except NotFound:
            return None
        return ObjectInfo(
            size=head["ContentLength"],
            etag=head["ETag"].strip('"'),
            last_modified=head["LastModified"].astimezone(UTC),
        )

    async def list(self, prefix: str = "") -> builtins.list[str]:
        """Page through ListObjectsV2 under the folder."""
        full_prefix = self.prefix + validate_prefix(prefix)
        strip = len(self.prefix)

        def list_all() -> builtins.list[str]:
            return sorted(full[strip:] for full in self._iter_full_keys(full_prefix))

        return await self._call(f"list {prefix!r}", list_all)

    async def presigned_get_url(self, key: str, expires_s: int = 3600) -> str:
        """A SigV4 presigned GET at the endpoint (a CDN base URL cannot carry the signature)."""
        _check_expiry(expires_s)
        return await self._call(
            f"presign {key!r}",
            self._client.generate_presigned_url,
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._full_key(key)},
            ExpiresIn=expires_s,
        )

    async def create_multipart_upload(self, key: str, content_type: str | None = None) -> str:
        """CreateMultipartUpload; the content type is fixed here, not on the parts."""
        response = await self._call(
            f"start upload of {key!r}",
            self._client.create_multipart_upload,
            Bucket=self.bucket,
            Key=self._full_key(key),
            ContentType=content_type or guess_content_type(key),
        )
        return response["UploadId"]

    async def presign_upload_part(
        self, key: str, upload_id: str, part_number: int, expires_s: int = 3600
    ) -> str:
        """A presigned UploadPart URL; the client PUTs the raw part bytes and keeps the ETag."""
        _check_part_number(part_number)
        _check_expiry(expires_s)
        return await self._call(
            f"presign part {part_number} of {key!r}",
            self._client.generate_presigned_url,
            "upload_part",
            Params={
                "Bucket": self.bucket,
                "Key": self._full_key(key),
                "UploadId": upload_id,
                "PartNumber": part_number,
            },
            ExpiresIn=expires_s,
            HttpMethod="PUT",
        )

    async def complete_multipart_upload(
        self, key: str, upload_id: str, parts: Iterable[tuple[int, str]]
    ) -> None:
        """CompleteMultipartUpload with the parts in order; S3 checks every ETag."""
        ordered = sorted(parts)
        if not ordered:
            raise ValueError("Completing an upload needs at least one part.")
        numbers = [number for number, _etag in ordered]
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"Each part number may appear once, got {numbers}.")
        for number in numbers:
            _check_part_number(number)
        await self._call(
            f"complete upload of {key!r}",
            self._client.complete_multipart_upload,
            Bucket=self.bucket,
            Key=self._full_key(key),
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in ordered]},
        )

    async def abort_multipart_upload(self, key: str, upload_id: str) -> None:
        """AbortMultipartUpload; an upload already gone is fine."""
        with contextlib.suppress(NotFound):
            await self._call(
                f"abort upload of {key!r}",
                self._client.abort_multipart_upload,
                Bucket=self.bucket,
                Key=self._full_key(key),
                UploadId=upload_id,
            )

    async def list_parts(self, key: str, upload_id: str) -> builtins.list[PartInfo]:
        """Page through ListParts."""
        full = self._full_key(key)

        def list_all() -> builtins.list[PartInfo]:
            paginator = self._client.get_paginator("list_parts")
            return [
                PartInfo(part["PartNumber"], part["ETag"].strip('"'), part["Size"])
                for page in paginator.paginate(Bucket=self.bucket, Key=full, UploadId=upload_id)
                for part in page.get("Parts", [])
            ]

        return await self._call(f"list parts of {key!r}", list_all)

    async def list_multipart_uploads(self, prefix: str = "") -> builtins.list[UploadInfo]:
        """Page through ListMultipartUploads under the folder."""
        full_prefix = self.prefix + validate_prefix(prefix)
        strip = len(self.prefix)

        def list_all() -> builtins.list[UploadInfo]:
            paginator = self._client.get_paginator("list_multipart_uploads")
            return [
                UploadInfo(
                    upload["Key"][strip:], upload["UploadId"], upload["Initiated"].astimezone(UTC)
                )
                for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix)
                for upload in page.get("Uploads", [])
            ]

        return await self._call(f"list uploads under {prefix!r}", list_all)

    async def close(self) -> None:
        """Close the client's connection pool."""
        if not self._closed:
            self._closed = True
            await asyncio.to_thread(self._client.close)

    def _full_key(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _iter_full_keys(self, full_prefix: str) -> Iterable[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix):
            for item in page.get("Contents", []):
                yield item["Key"]

    def _delete_batch(self, batch: builtins.list[dict[str, str]]) -> int:
        response = self._client.delete_objects(
            Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
        )
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise StorageError(
                f"S3 refused to delete {len(errors)} of {len(batch)} objects in "
                f"{self.bucket!r}, e.g. {first.get('Key')!r}: {first.get('Code')} "
                f"({first.get('Message')})."
            )
        return len(batch)

    async def _call(self, what: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except botocore.exceptions.ClientError as exc:
            raise _from_client_error(exc, what, self.bucket) from exc
        except S3UploadFailedError as exc:
            cause = exc.__context__
            if isinstance(cause, botocore.exceptions.ClientError):
                raise _from_client_error(cause, what, self.bucket) from exc
            raise StorageError(f"S3 {what} in {self.bucket!r} failed: {exc}") from exc
        except (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError) as exc:
            raise StorageUnavailable(
                f"S3 {what} in {self.bucket!r} failed, endpoint unreachable: {exc}"
            ) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise StorageError(f"S3 {what} in {self.bucket!r} failed: {exc}") from exc


def _new_s3_client(**kwargs: Any) -> Any:
    global _session
    with _SESSION_LOCK:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client("s3", **kwargs)


def _client_error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _error_code(exc: StorageError) -> str:
    cause = exc.__cause__
    if isinstance(cause, botocore.exceptions.ClientError):
        return _client_error_code(cause)
    return ""


def _from_client_error(
    exc: botocore.exceptions.ClientError, what: str, bucket: str
) -> StorageError:
    code = _client_error_code(exc)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    message = exc.response.get("Error", {}).get("Message") or "no message"
    text = f"S3 {what} in {bucket!r} failed: {code or status} ({message})."
    if code == "NoSuchBucket":
        return StorageError(f"S3 bucket {bucket!r} does not exist ({what}).")
    if code in _NOT_FOUND_CODES:
        return NotFound(text)
    if code in _TRANSIENT_CODES or status >= 500:
        return StorageUnavailable(text)
    return StorageError(text)


def storage_from_url(url: str, *, s3: S3Options | None = None) -> Storage:
    """Build the storage a settings URL names.

    ``file:///abs/path`` gives a `LocalStorage` rooted there; ``s3://bucket/prefix`` gives
    an `S3Storage` using `s3` for the endpoint, credentials and transfer sizes. Anything
    else raises ValueError with a sentence fit to show an admin.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError("The storage URL is empty: use file:///abs/path or s3://bucket/prefix.")
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ValueError(f"The storage URL {url!r} must not have a query or fragment.")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(
                f"The storage URL {url!r} names host {parts.netloc!r}; local storage needs an "
                "absolute path with three slashes, like file:///var/lib/shoal/storage."
            )
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise ValueError(
                f"The storage URL {url!r} needs an absolute path, like file:///var/lib/shoal."
            )
        if "\x00" in path:
            raise ValueError(f"The storage URL {url!r} must not contain NUL.")
        return LocalStorage(path)
    if parts.scheme == "s3":
        bucket = parts.netloc
        if not bucket:
            raise ValueError(f"The storage URL {url!r} needs a bucket, like s3://videos/prefix.")
        if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
            raise ValueError(
                f"The storage URL {url!r} names {bucket!r}, which is not a valid S3 bucket "
                "name (3-63 lowercase letters, digits, dots or hyphens)."
            )
        prefix = unquote(parts.path).strip("/")
        try:
            validate_prefix(prefix)
        except ValueError as exc:
            raise ValueError(f"The storage URL {url!r} has an unusable prefix: {exc}") from exc
        return S3Storage(bucket, prefix, s3)
    raise ValueError(
        f"The storage URL {url!r} must start with file:/// (a local directory) or s3:// (a bucket)."
    )

"""The storage interface, its errors and value types, and the checks every backend shares."""

from __future__ import annotations

import abc
import builtins
import mimetypes
import os
import re
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar, Self, TypeVar
from urllib.parse import urlsplit, urlunsplit

import boto3

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

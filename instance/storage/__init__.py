"""Where Shoal keeps its files: one small interface, a local directory or an S3 bucket.

Everything the instance stores after an upload is processed — HLS playlists and fragmented
MP4s, torrents, thumbnails, storyboards — goes through a `Storage`. The embedded mode uses
`LocalStorage` (a directory the web app serves with sendfile); the scaled mode uses
`S3Storage` (any S3-compatible service, optionally behind a CDN). Both are picked by a URL
with `storage_from_url`, so the rest of the code never asks which one it has.

The package: the interface, errors and checks in ``base``, the backends in ``local`` and
``s3``, and :func:`storage_from_url` here. Keys are POSIX relative paths such as
``hls/<uuid>/<file>``; the same key names the same object in both backends. Errors:
`NotFound` for a missing object or upload, `StorageError` (and `StorageUnavailable`, which
is worth retrying) for backend failures, `OSError` for problems with local paths (a
caller's source or destination file, or the local storage directory), `ValueError` for a
malformed key, prefix or URL.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from .base import (
    _BUCKET_RE,
    TEMP_PREFIX,
    MiB,
    NotFound,
    ObjectInfo,
    PartInfo,
    S3Options,
    Storage,
    StorageError,
    StorageUnavailable,
    UploadInfo,
    guess_content_type,
    validate_key,
    validate_prefix,
)
from .local import LocalStorage
from .s3 import S3Storage

__all__ = [
    "TEMP_PREFIX",
    "LocalStorage",
    "MiB",
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

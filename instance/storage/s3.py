"""`S3Storage`: any S3-compatible service through boto3, its blocking calls in threads."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
from collections.abc import Callable, Iterable
from datetime import UTC
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import boto3
import botocore.exceptions
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from .base import (
    _BUCKET_RE,
    _NOT_FOUND_CODES,
    _SESSION_LOCK,
    _TRANSIENT_CODES,
    S3_DELETE_BATCH,
    NotFound,
    ObjectInfo,
    PartInfo,
    S3Options,
    Storage,
    StorageError,
    StorageUnavailable,
    T,
    UploadInfo,
    _check_expiry,
    _check_part_number,
    _check_range,
    _mask_url,
    _session,
    guess_content_type,
    validate_key,
    validate_prefix,
)


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

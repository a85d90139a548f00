"""A real S3 endpoint for tests: ``moto_server`` in a subprocess on a loopback port.

moto speaks S3 over HTTP (buckets, multipart, presigned URLs, ranged GETs), so the
storage code is tested through boto3 and aiohttp exactly as it runs against MinIO or AWS.
It does not check presigned signatures or expiry; test those on our side.

Use the context manager directly, or import the session fixture into a conftest::

    from tests.s3server import s3_endpoint  # noqa: F401  (registers the fixture)

    async def test_something(s3_endpoint: str) -> None:
        storage = S3Storage("bucket", options=S3Options(endpoint_url=s3_endpoint, ...))
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import boto3
import pytest

__all__ = ["MOTO_ACCESS_KEY", "MOTO_SECRET_KEY", "allow_anonymous_reads", "run_moto_server", "s3_endpoint"]

MOTO_ACCESS_KEY = "shoal-test-access"
MOTO_SECRET_KEY = "shoal-test-secret"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
PORT_ATTEMPTS = 3


def moto_server_path() -> Path:
    """The ``moto_server`` console script installed beside the running interpreter."""
    path = Path(sys.executable).parent / "moto_server"
    if not path.exists():
        raise RuntimeError(
            f"moto_server is not installed next to {sys.executable}; "
            "install the test extras (pip install 'moto[server]')."
        )
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return response.status == 200
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def run_moto_server() -> Iterator[str]:
    """Start ``moto_server`` on a free loopback port, yield its endpoint URL, stop it after.

    Waits until the server answers HTTP. If the port was taken between choosing and
    binding, tries another; if the server dies or never answers, raises RuntimeError
    with its log.
    """
    executable = moto_server_path()
    with tempfile.TemporaryFile() as log:
        for _attempt in range(PORT_ATTEMPTS):
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            proc = subprocess.Popen(
                [str(executable), "-H", "127.0.0.1", "-p", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                deadline = time.monotonic() + START_TIMEOUT_S
                while proc.poll() is None and time.monotonic() < deadline:
                    if _answers(url + "/"):
                        break
                    time.sleep(0.1)
                else:
                    if proc.poll() is None:
                        raise RuntimeError(
                            f"moto_server did not answer on {url} within {START_TIMEOUT_S:.0f} s:"
                            f"\n{_read_log(log)}"
                        )
                    continue
                yield url
                return
            finally:
                _stop(proc)
        raise RuntimeError(f"moto_server exited at start {PORT_ATTEMPTS} times:\n{_read_log(log)}")


def _read_log(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read()[-4000:].decode(errors="replace")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of one ``moto_server`` shared by the whole test session."""
    with run_moto_server() as url:
        yield url


def allow_anonymous_reads(endpoint: str, bucket: str, prefixes: tuple[str, ...] = ("",)) -> None:
    """Give the bucket (or only these key prefixes) the public-read policy an admin sets for a CDN."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": [f"arn:aws:s3:::{bucket}/{prefix}*" for prefix in prefixes],
            }
        ],
    }
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=MOTO_ACCESS_KEY,
        aws_secret_access_key=MOTO_SECRET_KEY,
    )
    try:
        client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    finally:
        client.close()

"""SendfileResponse against a real aiohttp server: ranges, validators, HEAD, errors."""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from instance.web.sendfile import SendfileResponse, etag_of


@pytest.fixture
async def served(tmp_path: Path):
    data = os.urandom(300_000)
    path = tmp_path / "rung-fragmented.mp4"
    path.write_bytes(data)

    async def handler(request: web.Request) -> web.StreamResponse:
        return SendfileResponse(path, os.stat(path), headers={"Content-Type": "video/mp4"})

    app = web.Application()
    app.router.add_get("/f", handler)  # GET and HEAD
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession(str(server.make_url(""))) as http:
        yield http, data, etag_of(os.stat(path))
    await server.close()


async def _get(http: aiohttp.ClientSession, method: str = "GET", **headers: str):
    async with http.request(method, "/f", headers=headers) as resp:
        return resp.status, resp.headers, await resp.read()


async def test_whole_file_and_byte_ranges(served) -> None:
    http, data, etag = served
    status, headers, body = await _get(http)
    assert status == 200 and body == data and headers["ETag"] == etag
    assert headers["Accept-Ranges"] == "bytes" and headers["Content-Type"] == "video/mp4"
    for header, expected, content_range in [
        ("bytes=0-1352", data[:1353], "bytes 0-1352/300000"),
        ("bytes=1353-196035", data[1353:196036], "bytes 1353-196035/300000"),
        ("bytes=299990-", data[299990:], "bytes 299990-299999/300000"),
        ("bytes=-10", data[-10:], "bytes 299990-299999/300000"),
        ("bytes=299000-999999", data[299000:], "bytes 299000-299999/300000"),
    ]:
        status, headers, body = await _get(http, Range=header)
        assert (status, headers["Content-Range"]) == (206, content_range), header
        assert body == expected and int(headers["Content-Length"]) == len(expected)


async def test_unsatisfiable_and_malformed_ranges_are_416(served) -> None:
    http, _data, _etag = served
    for header in ("bytes=300000-", "bytes=10-5", "bytes=abc", "items=0-1"):
        status, headers, body = await _get(http, Range=header)
        assert status == 416 and headers["Content-Range"] == "bytes */300000" and body == b"", header


async def test_validators(served) -> None:
    http, data, etag = served
    status, _headers, body = await _get(http, **{"If-None-Match": etag})
    assert status == 304 and body == b""
    status, _headers, body = await _get(http, **{"If-None-Match": '"other"'})
    assert status == 200 and body == data
    # If-Range: the range only while the validator still matches, else the whole file.
    status, _headers, body = await _get(http, Range="bytes=0-9", **{"If-Range": etag})
    assert status == 206 and body == data[:10]
    status, _headers, body = await _get(http, Range="bytes=0-9", **{"If-Range": '"stale"'})
    assert status == 200 and body == data
    status, headers, _ = await _get(http)
    status, _headers, body = await _get(http, Range="bytes=0-9", **{"If-Range": headers["Last-Modified"]})
    assert status == 206 and body == data[:10]
    old_date = "Mon, 01 Jan 2001 00:00:00 GMT"
    status, _headers, body = await _get(http, Range="bytes=0-9", **{"If-Range": old_date})
    assert status == 200 and body == data


async def test_head_has_headers_and_no_body(served) -> None:
    http, _data, etag = served
    status, headers, body = await _get(http, "HEAD")
    assert status == 200 and headers["Content-Length"] == "300000" and headers["ETag"] == etag and body == b""
    status, headers, body = await _get(http, "HEAD", Range="bytes=10-19")
    assert status == 206 and headers["Content-Length"] == "10" and body == b""

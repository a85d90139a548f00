"""Malformed input a stranger can send gets a 4xx with a code, never a 500.

Two kinds of test: the known ways in (deeply nested JSON, non-ASCII secrets in every place a
secret is compared), and a fuzz pass over every operation of the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from instance import safejson
from tests.conftest import Instance
from tests.instance.test_auth import session_cookie, web_login


def nested(levels: int) -> bytes:
    """A JSON object nested ``levels`` deep, shaped like an activity at the top."""
    inner = '{"object": ' * (levels - 2) + "{}" + "}" * (levels - 2)
    return f'{{"type": "Note", "actor": "https://a.example/u", "object": {inner}}}'.encode()


async def _raw(instance: Instance, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with instance.client.session.request(method, instance.url + path, **kwargs) as resp:
        body = await resp.read()
        if resp.content_type in ("application/json", "application/problem+json"):
            return resp.status, json.loads(body)
        return resp.status, body


def test_safejson_refuses_what_it_cannot_walk() -> None:
    assert safejson.loads(b'{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}
    for raw in (b"[" * 100_000 + b"]" * 100_000, nested(safejson.MAX_DEPTH + 1)):
        try:
            safejson.loads(raw)
        except safejson.TooDeep:
            pass
        else:
            raise AssertionError("a too deep document was accepted")
    assert safejson.loads(nested(safejson.MAX_DEPTH - 2))["type"] == "Note"


async def test_deeply_nested_json_is_refused_with_a_4xx(instance: Instance) -> None:
    someone = await instance.user_client("someone")
    for body in (b"[" * 100_000 + b"]" * 100_000, nested(5_000), nested(500)):
        for path in ("/inbox", "/accounts/someone/inbox"):
            status, answer = await _raw(
                instance, "POST", path, data=body, headers={"Content-Type": "application/activity+json"}
            )
            assert 400 <= status < 500, (path, status, answer)
            assert answer["code"], answer
        status, answer = await someone.put(
            "/api/v1/users/me", data=body, headers={"Content-Type": "application/json"}
        )
        assert status == 400 and answer["code"] == "malformed_json", answer


async def test_non_ascii_secrets_are_refused_not_errors(instance: Instance) -> None:
    status, client = await instance.client.get("/api/v1/oauth-clients/local")
    for client_id, secret in (("ü" * 32, client["client_secret"]), (client["client_id"], "秘密")):
        status, body = await instance.client.post(
            "/api/v1/users/token",
            data={
                "client_id": client_id,
                "client_secret": secret,
                "grant_type": "password",
                "username": "nobody",
                "password": "wrong",
            },
        )
        assert 400 <= status < 500 and body["code"], body
    status, body = await instance.client.post(
        "/api/v1/users/token",
        data=b'{"client_id": "\\ud800", "client_secret": "x", "grant_type": "password", '
        b'"username": "a", "password": "\\udcff"}',
        headers={"Content-Type": "application/json"},
    )
    assert 400 <= status < 500 and body["code"], body

    # A web session: a non-ASCII CSRF header, form field or cookie is a refusal.
    await instance.create_user("fay")
    _, headers, _ = await web_login(instance, "fay")
    cookie = f"shoal_session={session_cookie(headers).value}"
    status, body = await _raw(
        instance, "PUT", "/api/v1/users/me", json={}, headers={"Cookie": cookie, "X-CSRF-Token": "é" * 64}
    )
    assert status == 403 and body["code"] == "csrf_failed", body
    status, body = await _raw(
        instance, "PUT", "/api/v1/users/me", data={"csrf_token": "ß" * 64}, headers={"Cookie": cookie}
    )
    assert status == 403 and body["code"] == "csrf_failed", body
    for header in ({"Cookie": "shoal_session=ünïcode"}, {"Authorization": "Bearer ünïcode"}):
        status, body = await _raw(instance, "GET", "/api/v1/users/me", headers=header)
        assert status == 401, (header, status, body)

    # A file token in any characters is an invalid one.
    path = f"/static/streaming-playlists/hls/private/{'0' * 8}-0000-0000-0000-{'0' * 12}/master.m3u8"
    status, _ = await _raw(instance, "GET", path, params={"videoFileToken": "ü.1.ä"})
    assert 400 <= status < 500


async def test_raw_non_utf8_header_bytes(instance: Instance) -> None:
    """Header bytes that are not UTF-8 (sent raw, as a hostile client may)."""
    host, port = instance.url.removeprefix("http://").split(":")
    headers = (b"Authorization: Bearer \xff\xfe", b"Cookie: shoal_session=\xff\xfe", b"X-CSRF-Token: \xff")
    for header in headers:
        reader, writer = await asyncio.open_connection(host, int(port))
        request = b"GET /api/v1/users/me HTTP/1.1\r\nHost: x\r\n" + header + b"\r\nConnection: close\r\n\r\n"
        writer.write(request)
        await writer.drain()
        status_line = await reader.readline()
        writer.close()
        status = int(status_line.split()[1])
        assert 400 <= status < 500, (header, status_line)


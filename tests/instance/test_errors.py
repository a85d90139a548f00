"""Errors are answers: whatever a client sends, it gets a problem document naming the cause, never a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from instance.models import Role, User
from tests.conftest import ApiClient, Instance, InstanceFactory

REGISTER = "/api/v1/users/register"
GOOD = {"username": "alice", "password": "password123", "email": "alice@example.org"}


async def raw_post(instance: Instance, path: str, body: bytes, content_type: str) -> tuple[int, Any]:
    return await instance.client.post(path, data=body, headers={"Content-Type": content_type})


def assert_problem(
    status: int, body: Any, expected: int, code: str | None = None, field: str | None = None
) -> None:
    assert status == expected, body
    assert isinstance(body, dict), body
    assert body["status"] == expected and body["type"].endswith(body["code"])
    assert body["title"] and body["detail"]
    if code is not None:
        assert body["code"] == code, body
    if field is not None:
        assert body["field"] == field, body


async def users_stored(instance: Instance) -> int:
    async with instance.shoal.db.read() as session:
        return await session.scalar(select(func.count()).select_from(User))


async def test_malformed_json(instance: Instance) -> None:
    for raw in (b'{"username": "alice",', b"\xff\xfe{}", b"[1, 2]", b'"text"', b"null"):
        status, body = await raw_post(instance, REGISTER, raw, "application/json")
        assert_problem(status, body, 400, "malformed_json")
    assert await users_stored(instance) == 0


async def test_pathological_json_is_refused(instance: Instance) -> None:
    for raw in (b"[" * 100_000, b'{"username": ' + b"1" * 5000 + b"}"):
        status, body = await raw_post(instance, REGISTER, raw, "application/json")
        assert_problem(status, body, 400, "malformed_json")


async def test_wrong_types_and_unknown_fields_name_the_field(instance: Instance) -> None:
    cases = [
        ({**GOOD, "username": 5}, "username"),
        ({**GOOD, "password": ["password123"]}, "password"),
        ({**GOOD, "channel": {"name": 7, "displayName": "x"}}, "channel.name"),
        ({**GOOD, "channel": "alice_videos"}, "channel"),
        ({**GOOD, "isAdmin": True}, "isAdmin"),
        ({**GOOD, "channel": {"name": "c", "displayName": "x", "extra": 1}}, "channel.extra"),
        ({"password": "password123", "email": "alice@example.org"}, "username"),
    ]
    for body, field in cases:
        status, problem = await instance.client.post(REGISTER, json=body)
        assert_problem(status, problem, 400, "invalid_field", field)
        assert any(e["field"] == field for e in problem["errors"])
    status, problem = await instance.client.post(REGISTER, json={**GOOD, "isAdmin": True})
    assert "unknown field" in problem["detail"]
    assert await users_stored(instance) == 0


async def test_text_a_database_cannot_store_is_refused(instance: Instance) -> None:
    # NUL characters and lone surrogates fail in PostgreSQL and SQLite alike.
    for body, field in (
        ({**GOOD, "email": "alice\u0000@example.org"}, "email"),
        ({**GOOD, "displayName": "Al\ud800ice"}, "displayName"),
    ):
        raw = json.dumps(body).encode()
        status, problem = await raw_post(instance, REGISTER, raw, "application/json")
        assert_problem(status, problem, 400, "invalid_field", field)
    status, problem = await instance.client.post(
        "/api/v1/users/token",
        data={
            "client_id": "a",
            "client_secret": "b",
            "grant_type": "password",
            "username": "a\x00",
            "password": "x",
        },
    )
    assert_problem(status, problem, 400, "invalid_field", "username")
    admin = await instance.user_client("boss", role=Role.ADMIN)
    status, problem = await admin.get("/api/v1/users", params={"search": "a\x00b"})
    assert_problem(status, problem, 400, "invalid_field", "search")
    assert await users_stored(instance) == 1


async def test_wrong_content_type(instance: Instance) -> None:
    status, body = await raw_post(instance, REGISTER, json.dumps(GOOD).encode(), "text/plain")
    assert_problem(status, body, 415, "unsupported_content_type")
    status, body = await instance.client.post(REGISTER, data=GOOD)  # a form where only JSON is taken
    assert_problem(status, body, 415, "unsupported_content_type")
    assert await users_stored(instance) == 0


async def test_malformed_forms_are_refused(instance: Instance) -> None:
    for raw, ctype in (
        (b"--x\r\n", "multipart/form-data"),
        (b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n', "multipart/form-data; boundary=x"),
        (b"a=b", "application/x-www-form-urlencoded; charset=bogus"),
    ):
        status, body = await raw_post(instance, "/api/v1/users/token", raw, ctype)
        assert_problem(status, body, 400)


async def test_oversize_bodies(make_instance: InstanceFactory) -> None:
    instance = await make_instance(max_json_body=2048)
    big = {**GOOD, "displayName": "x" * 100, "registrationReason": "y" * 2900}
    status, body = await instance.client.post(REGISTER, json=big)
    assert_problem(status, body, 413, "body_too_large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked transfer
        raw = json.dumps(big).encode()
        for start in range(0, len(raw), 512):
            yield raw[start : start + 512]

    status, body = await instance.client.post(
        REGISTER, data=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_problem(status, body, 413)
    assert await users_stored(instance) == 0
    # Under the limit the same route works.
    assert (await instance.client.post(REGISTER, json=GOOD))[0] == 204


async def test_bad_ids_and_queries(instance: Instance) -> None:
    admin: ApiClient = await instance.user_client("boss", role=Role.ADMIN)
    for path in ("/api/v1/users/abc", "/api/v1/users/-1", "/api/v1/users/1.5", "/api/v1/users/%C2%B2"):
        status, body = await admin.get(path)
        assert_problem(status, body, 400, "invalid_field", "id")
    for path in ("/api/v1/users/0", "/api/v1/users/99999999999", "/api/v1/users/999999999999"):
        status, body = await admin.get(path)
        assert_problem(status, body, 404)
    status, body = await admin.post("/api/v1/users/abc/block")
    assert_problem(status, body, 400, "invalid_field", "id")
    status, body = await admin.post("/api/v1/users/registrations/x/accept")
    assert_problem(status, body, 400, "invalid_field", "id")
    for params, field in (
        ({"count": "abc"}, "count"),
        ({"count": "1000"}, "count"),
        ({"start": "-1"}, "start"),
        ({"sort": "password"}, "sort"),
        ({"blocked": "maybe"}, "blocked"),
    ):
        status, body = await admin.get("/api/v1/users", params=params)
        assert_problem(status, body, 400, "invalid_field", field)


async def test_out_of_range_numbers(instance: Instance) -> None:
    admin = await instance.user_client("boss", role=Role.ADMIN)
    body = {**GOOD, "videoQuota": 10**30}
    status, problem = await admin.post("/api/v1/users", json=body)
    assert_problem(status, problem, 400, "invalid_field", "videoQuota")
    status, problem = await admin.post("/api/v1/users", json={**GOOD, "role": 7})
    assert_problem(status, problem, 400, "invalid_field", "role")
    status, problem = await admin.post("/api/v1/users", json={**GOOD, "videoQuotaDaily": 100})
    assert_problem(status, problem, 400, "invalid_field", "videoQuotaDaily")
    assert await users_stored(instance) == 1


async def test_unknown_routes_and_methods(instance: Instance) -> None:
    status, body = await instance.client.get("/api/v1/users/me/nothing-here")
    assert_problem(status, body, 404, "not_found")
    status, body = await instance.client.request("PATCH", "/api/v1/users/register")
    assert_problem(status, body, 405, "method_not_allowed")


@pytest.mark.scaled_only
async def test_a_dropped_database_connection_is_read_again_not_a_500(instance: Instance) -> None:
    """PostgreSQL ends a request's connection under it (a restart, a failover): a read is run
    again on a fresh connection; a write, or a read whose connection drops again, answers 503
    ``database_unavailable`` with Retry-After, never a 500."""
    from sqlalchemy import event

    from tests.instance.test_videos import login, new_video

    alice = await login(instance, "alice")
    video = await new_video(instance, "alice", "Survives a restart")
    drops = {"left": 0}

    def drop_connection(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # The backend of the request's own connection ends, as in a server restart.
        if drops["left"] > 0 and "FROM videos" in statement and "pg_terminate_backend" not in statement:
            drops["left"] -= 1
            try:
                cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            except Exception:  # the backend ends while answering
                pass

    engine = instance.shoal.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", drop_connection)
    try:
        drops["left"] = 1
        status, body = await alice.get(f"/api/v1/videos/{video.uuid}")
        assert status == 200 and body["uuid"] == video.uuid, body
        assert drops["left"] == 0

        drops["left"] = 2
        status, body = await alice.get(f"/api/v1/videos/{video.uuid}")
        assert status == 503 and body["code"] == "database_unavailable", body

        drops["left"] = 1
        status, body = await alice.put(f"/api/v1/videos/{video.uuid}", json={"name": "Renamed"})
        assert status == 503 and body["code"] == "database_unavailable", body
    finally:
        event.remove(engine, "before_cursor_execute", drop_connection)
    status, body = await alice.get(f"/api/v1/videos/{video.uuid}")
    assert status == 200 and body["name"] == "Survives a restart"

"""Per-IP rate limits on token grants, web logins and sign-ups: 429 with Retry-After, nothing stored.

Windows are an hour long so a window boundary never falls inside a test.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from instance.models import AuthToken, User
from tests.conftest import Instance, InstanceFactory


async def token_attempt(
    instance: Instance, password: str, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    _, client = await instance.client.get("/api/v1/oauth-clients/local")
    return await instance.client.post(
        "/api/v1/users/token",
        data={**client, "grant_type": "password", "username": "alice", "password": password},
        headers=headers or {},
    )


async def stored(instance: Instance, model: type) -> int:
    async with instance.shoal.db.read() as session:
        return await session.scalar(select(func.count()).select_from(model))


def assert_limited(status: int, body: Any) -> None:
    assert status == 429
    assert body["code"] == "too_many_requests" and body["status"] == 429 and body["detail"]


async def test_login_attempts_are_limited(make_instance: InstanceFactory) -> None:
    instance = await make_instance(rate_limit_login="3/3600")
    await instance.create_user("alice")
    for _ in range(3):
        status, body = await token_attempt(instance, "wrong-password")
        assert status == 400 and body["code"] == "invalid_grant"

    async with instance.client.session.post(
        instance.url + "/api/v1/users/token", data={"grant_type": "password"}
    ) as resp:
        assert resp.status == 429
        retry_after = int(resp.headers["Retry-After"])
        assert 0 < retry_after <= 3601
        assert resp.content_type == "application/problem+json"
        assert_limited(resp.status, await resp.json())

    # Even the right password is refused now, and no token is issued.
    status, body = await token_attempt(instance, "password123")
    assert_limited(status, body)
    assert await stored(instance, AuthToken) == 0

    # The web login shares the budget.
    async with instance.client.session.post(
        instance.url + "/login", data={"username": "alice", "password": "password123"}, allow_redirects=False
    ) as resp:
        assert resp.status == 429 and "Set-Cookie" not in resp.headers
        assert int(resp.headers["Retry-After"]) > 0
    assert await stored(instance, AuthToken) == 0


async def test_limits_are_per_client_address(make_instance: InstanceFactory) -> None:
    instance = await make_instance(rate_limit_login="2/3600", trust_proxy=True)
    await instance.create_user("alice")
    first = {"X-Forwarded-For": "203.0.113.1"}
    for _ in range(2):
        assert (await token_attempt(instance, "password123", first))[0] == 200
    assert (await token_attempt(instance, "password123", first))[0] == 429
    assert (await token_attempt(instance, "password123", {"X-Forwarded-For": "203.0.113.2"}))[0] == 200


async def test_sign_ups_are_limited(make_instance: InstanceFactory) -> None:
    instance = await make_instance(rate_limit_register="2/3600")
    for name in ("one", "two"):
        status, _ = await instance.client.post(
            "/api/v1/users/register",
            json={"username": name, "password": "password123", "email": f"{name}@example.org"},
        )
        assert status == 204
    status, body = await instance.client.post(
        "/api/v1/users/register",
        json={"username": "three", "password": "password123", "email": "three@example.org"},
    )
    assert_limited(status, body)
    assert await stored(instance, User) == 2

"""Logging in: OAuth2 token grants, refresh rotation, revocation, expiry, web sessions and CSRF."""

from __future__ import annotations

import asyncio
from http.cookies import SimpleCookie
from typing import Any

from sqlalchemy import func, select

from instance.auth import digest
from instance.models import AuthToken, User
from instance.services.sessions import safe_next
from tests.conftest import Instance, InstanceFactory


async def oauth_client(instance: Instance) -> dict[str, str]:
    status, body = await instance.client.get("/api/v1/oauth-clients/local")
    assert status == 200
    return {"client_id": body["client_id"], "client_secret": body["client_secret"]}


async def grant(instance: Instance, **fields: str) -> tuple[int, Any]:
    """POST /api/v1/users/token as a form, with the local client unless overridden."""
    data = {**await oauth_client(instance), **fields}
    return await instance.client.post("/api/v1/users/token", data=data)


async def password_grant(instance: Instance, username: str, password: str = "password123") -> dict[str, Any]:
    status, body = await grant(instance, grant_type="password", username=username, password=password)
    assert status == 200, body
    return body


async def token_rows(instance: Instance, username: str) -> int:
    async with instance.shoal.db.read() as session:
        return await session.scalar(
            select(func.count()).select_from(AuthToken).join(User).where(User.username == username)
        )


# Token grants -----------------------------------------------------------------------


async def test_local_client_is_stable(instance: Instance) -> None:
    first = await oauth_client(instance)
    assert len(first["client_id"]) >= 16 and len(first["client_secret"]) >= 16
    assert await oauth_client(instance) == first


async def test_password_grant_by_name_or_email_gives_working_tokens(instance: Instance) -> None:
    await instance.create_user("alice", email="Alice@Example.org")
    body = await password_grant(instance, "alice")
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == instance.settings.access_token_ttl
    assert body["refresh_token_expires_in"] == instance.settings.refresh_token_ttl
    assert body["access_token"] != body["refresh_token"]
    status, me = await instance.client.as_user(body["access_token"]).get("/api/v1/users/me")
    assert status == 200 and me["username"] == "alice"
    assert me["lastLoginDate"] is not None

    by_email = await password_grant(instance, "alice@example.org")
    status, me = await instance.client.as_user(by_email["access_token"]).get("/api/v1/users/me")
    assert status == 200 and me["username"] == "alice"

    # JSON bodies are accepted as well as forms.
    status, body = await instance.client.post(
        "/api/v1/users/token",
        json={
            **await oauth_client(instance),
            "grant_type": "password",
            "username": "ALICE",
            "password": "password123",
        },
    )
    assert status == 200 and body["access_token"]


async def test_bad_credentials_and_clients_are_refused(instance: Instance) -> None:
    await instance.create_user("bob")
    status, body = await grant(instance, grant_type="password", username="bob", password="wrong-password")
    assert status == 400 and body["code"] == "invalid_grant"
    status, body = await grant(instance, grant_type="password", username="nobody", password="password123")
    assert status == 400 and body["code"] == "invalid_grant"
    status, body = await grant(
        instance,
        client_secret="not-the-secret",
        grant_type="password",
        username="bob",
        password="password123",
    )
    assert status == 400 and body["code"] == "invalid_client"
    status, body = await grant(instance, grant_type="client_credentials")
    assert status == 400 and body["code"] == "unsupported_grant_type" and body["field"] == "grant_type"
    status, body = await grant(instance, grant_type="password", username="bob")
    assert status == 400 and body["field"] == "password"
    status, body = await instance.client.post("/api/v1/users/token", data={"grant_type": "password"})
    assert status == 400 and body["field"] == "client_id"
    assert await token_rows(instance, "bob") == 0


async def test_refresh_rotates_and_kills_the_old_pair(instance: Instance) -> None:
    await instance.create_user("carol")
    first = await password_grant(instance, "carol")
    status, second = await grant(instance, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert status == 200, second
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    # The old refresh token is spent and the old access token revoked with it.
    status, body = await grant(instance, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert status == 400 and body["code"] == "invalid_grant"
    status, body = await instance.client.as_user(first["access_token"]).get("/api/v1/users/me")
    assert status == 401 and body["code"] == "invalid_token"
    status, _ = await instance.client.as_user(second["access_token"]).get("/api/v1/users/me")
    assert status == 200
    status, body = await grant(instance, grant_type="refresh_token", refresh_token="f" * 40)
    assert status == 400 and body["code"] == "invalid_grant"


async def test_revoke_token_kills_access_and_refresh(instance: Instance) -> None:
    await instance.create_user("dave")
    tokens = await password_grant(instance, "dave")
    other = await password_grant(instance, "dave")
    client = instance.client.as_user(tokens["access_token"])
    status, body = await client.post("/api/v1/users/revoke-token")
    assert status == 200 and body == {}
    status, body = await client.get("/api/v1/users/me")
    assert status == 401 and body["code"] == "invalid_token"
    status, body = await grant(instance, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert status == 400 and body["code"] == "invalid_grant"
    # Only the calling token: another login of the same user still works.
    status, _ = await instance.client.as_user(other["access_token"]).get("/api/v1/users/me")
    assert status == 200
    status, body = await instance.client.post("/api/v1/users/revoke-token")
    assert status == 401 and body["code"] == "authentication_required"


async def test_expired_access_token_is_refused_but_refreshable(make_instance: InstanceFactory) -> None:
    instance = await make_instance(access_token_ttl=1)
    await instance.create_user("erin")
    tokens = await password_grant(instance, "erin")
    assert tokens["expires_in"] == 1
    client = instance.client.as_user(tokens["access_token"])
    assert (await client.get("/api/v1/users/me"))[0] == 200
    await asyncio.sleep(1.1)
    status, body = await client.get("/api/v1/users/me")
    assert status == 401 and body["code"] == "invalid_token"
    status, fresh = await grant(instance, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert status == 200
    assert (await instance.client.as_user(fresh["access_token"]).get("/api/v1/users/me"))[0] == 200


async def test_malformed_authorization_header_is_refused(instance: Instance) -> None:
    status, body = await instance.client.get("/api/v1/users/me", headers={"Authorization": "Basic abc"})
    assert status == 401 and body["code"] == "invalid_token"
    status, body = await instance.client.get("/api/v1/users/me", headers={"Authorization": "Bearer nope"})
    assert status == 401 and body["code"] == "invalid_token"


# Web sessions -------------------------------------------------------------------------


async def web_login(instance: Instance, username: str, password: str = "password123", **extra: Any):
    """POST /login without following the redirect; returns (status, headers, body text)."""
    headers = extra.pop("headers", {})
    async with instance.client.session.post(
        instance.url + "/login",
        data={"username": username, "password": password, **extra},
        headers=headers,
        allow_redirects=False,
    ) as resp:
        return resp.status, resp.headers, await resp.text()


def session_cookie(headers: Any) -> Any:
    jar: SimpleCookie = SimpleCookie()
    for value in headers.getall("Set-Cookie", []):
        jar.load(value)
    return jar.get("shoal_session")


async def test_cookie_login_sets_a_safe_session_cookie(instance: Instance) -> None:
    await instance.create_user("fay")
    status, headers, _ = await web_login(instance, "fay", next="/videos/watch/abc?start=3")
    assert status == 303
    assert headers["Location"] == "/videos/watch/abc?start=3"
    cookie = session_cookie(headers)
    assert cookie is not None and len(cookie.value) == 40
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie["max-age"] == str(instance.settings.refresh_token_ttl)
    assert not cookie["secure"]  # the test instance's public URL is http
    session = {"Cookie": f"shoal_session={cookie.value}"}
    status, me = await instance.client.get("/api/v1/users/me", headers=session)
    assert status == 200 and me["username"] == "fay"
    async with instance.shoal.db.read() as db:
        kind = await db.scalar(select(AuthToken.kind).where(AuthToken.access_digest == digest(cookie.value)))
    assert kind == "web"


async def test_cookie_is_secure_on_https_instances(make_instance: InstanceFactory) -> None:
    instance = await make_instance(public_url="https://videos.example.org")
    await instance.create_user("gus")
    status, headers, _ = await web_login(instance, "gus")
    assert status == 303
    assert session_cookie(headers)["secure"] is True


async def test_login_redirects_only_to_local_paths(instance: Instance) -> None:
    await instance.create_user("hal")
    status, headers, _ = await web_login(instance, "hal", next="//evil.example/x")
    assert status == 303 and headers["Location"] == "/"
    hostile = [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "",
        None,
    ]
    hostile += ["/ok\r\nSet-Cookie: x=1", "/" + "a" * 3000, "evil.example"]
    for target in hostile:
        assert safe_next(target) == "/", target
    assert safe_next("/videos/watch/x?start=3#t") == "/videos/watch/x?start=3#t"


async def test_bad_web_login_is_a_problem_and_sets_no_cookie(instance: Instance) -> None:
    await instance.create_user("ida")
    status, headers, text = await web_login(instance, "ida", "wrong-password")
    assert status == 400 and '"invalid_grant"' in text
    assert session_cookie(headers) is None
    assert await token_rows(instance, "ida") == 0


async def test_cross_origin_login_is_refused(instance: Instance) -> None:
    await instance.create_user("jo")
    status, headers, text = await web_login(instance, "jo", headers={"Origin": "https://evil.example"})
    assert status == 403 and '"csrf_failed"' in text
    assert session_cookie(headers) is None
    assert await token_rows(instance, "jo") == 0
    status, headers, _ = await web_login(instance, "jo", headers={"Origin": instance.url})
    assert status == 303 and session_cookie(headers) is not None


async def test_csrf_is_required_for_cookie_sessions(instance: Instance) -> None:
    await instance.create_user("kim")
    _, headers, _ = await web_login(instance, "kim")
    cookie = {"Cookie": f"shoal_session={session_cookie(headers).value}"}
    change = {"displayName": "Kim K"}

    status, body = await instance.client.put("/api/v1/users/me", json=change, headers=cookie)
    assert status == 403 and body["code"] == "csrf_failed"
    status, body = await instance.client.put(
        "/api/v1/users/me", json=change, headers={**cookie, "X-CSRF-Token": "0" * 64}
    )
    assert status == 403 and body["code"] == "csrf_failed"
    status, me = await instance.client.get("/api/v1/users/me", headers=cookie)
    assert me["account"]["displayName"] == "kim"  # nothing was changed

    status, body = await instance.client.get("/api/v1/users/me/csrf-token", headers=cookie)
    assert status == 200
    token = body["csrfToken"]
    status, _ = await instance.client.put(
        "/api/v1/users/me", json=change, headers={**cookie, "X-CSRF-Token": token}
    )
    assert status == 204
    status, me = await instance.client.get("/api/v1/users/me", headers=cookie)
    assert me["account"]["displayName"] == "Kim K"

    # Another session's token does not fit this one.
    _, other_headers, _ = await web_login(instance, "kim")
    other = {"Cookie": f"shoal_session={session_cookie(other_headers).value}"}
    status, body = await instance.client.put(
        "/api/v1/users/me", json=change, headers={**other, "X-CSRF-Token": token}
    )
    assert status == 403 and body["code"] == "csrf_failed"


async def test_bearer_clients_need_no_csrf_token(instance: Instance) -> None:
    client = await instance.user_client("lee")
    status, _ = await client.put("/api/v1/users/me", json={"displayName": "Lee"})
    assert status == 204
    status, body = await client.get("/api/v1/users/me/csrf-token")
    assert status == 400 and body["code"] == "no_session"


async def test_logout_needs_csrf_then_ends_the_session(instance: Instance) -> None:
    await instance.create_user("max")
    _, headers, _ = await web_login(instance, "max")
    value = session_cookie(headers).value
    cookie = {"Cookie": f"shoal_session={value}"}
    session = instance.client.session

    async with session.post(instance.url + "/logout", headers=cookie, allow_redirects=False) as resp:
        assert resp.status == 403
        assert (await resp.json(content_type=None))["code"] == "csrf_failed"
    assert (await instance.client.get("/api/v1/users/me", headers=cookie))[0] == 200

    _, body = await instance.client.get("/api/v1/users/me/csrf-token", headers=cookie)
    async with session.post(
        instance.url + "/logout",
        data={"csrf_token": body["csrfToken"], "next": "/bye"},
        headers=cookie,
        allow_redirects=False,
    ) as resp:
        assert resp.status == 303 and resp.headers["Location"] == "/bye"
        cleared = session_cookie(resp.headers)
        assert cleared is not None and cleared.value == "" and cleared["max-age"] == "0"
    status, body = await instance.client.get("/api/v1/users/me", headers=cookie)
    assert status == 401 and body["code"] == "authentication_required"


async def test_new_web_login_replaces_the_previous_session(instance: Instance) -> None:
    await instance.create_user("ned")
    _, headers, _ = await web_login(instance, "ned")
    old = session_cookie(headers).value
    _, headers, _ = await web_login(instance, "ned", headers={"Cookie": f"shoal_session={old}"})
    new = session_cookie(headers).value
    assert new != old
    assert (await instance.client.get("/api/v1/users/me", headers={"Cookie": f"shoal_session={old}"}))[
        0
    ] == 401
    assert (await instance.client.get("/api/v1/users/me", headers={"Cookie": f"shoal_session={new}"}))[
        0
    ] == 200

"""Users: one's own profile, password changes, self-deletion, invitations and the admin API."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from sqlalchemy import func, select

from instance.auth import verify_password
from instance.models import Actor, AuthToken, Role, User, Video
from tests.conftest import ApiClient, Instance


async def token_pair(instance: Instance, username: str, password: str = "password123") -> dict[str, Any]:
    status, client = await instance.client.get("/api/v1/oauth-clients/local")
    status, body = await instance.client.post(
        "/api/v1/users/token",
        data={**client, "grant_type": "password", "username": username, "password": password},
    )
    return {"status": status, **body}


async def can_log_in(instance: Instance, username: str, password: str = "password123") -> bool | str:
    body = await token_pair(instance, username, password)
    return True if body["status"] == 200 else body["code"]


async def user_row(instance: Instance, username: str) -> User | None:
    async with instance.shoal.db.read() as session:
        user = await session.scalar(select(User).where(User.username == username))
        if user is not None:
            session.expunge(user)
        return user


async def staff(instance: Instance) -> tuple[ApiClient, ApiClient]:
    """An admin and a moderator client."""
    admin = await instance.user_client("boss", role=Role.ADMIN)
    moderator = await instance.user_client("mod", role=Role.MODERATOR)
    return admin, moderator


# One's own account --------------------------------------------------------------


async def test_me_has_peertube_user_shape(instance: Instance) -> None:
    client = await instance.user_client("alice")
    status, me = await client.get("/api/v1/users/me")
    assert status == 200
    assert me["username"] == "alice" and me["email"] == "alice@example.org"
    assert me["role"] == {"id": 2, "label": "User"}
    assert me["blocked"] is False and me["blockedReason"] is None
    assert me["videoQuota"] == -1 and me["videoQuotaDaily"] == -1
    assert me["nsfwPolicy"] == "blur" and me["mustChangePassword"] is False
    assert me["createdAt"].endswith("Z") and me["lastLoginDate"].endswith("Z")
    account = me["account"]
    assert account["name"] == "alice" and account["host"] == instance.settings.public_host
    assert account["url"] == f"{instance.url}/accounts/alice"
    assert account["avatars"] == [] and account["userId"] == me["id"]
    assert account["followersCount"] == 0
    [channel] = me["videoChannels"]
    assert channel["name"] == "alice_channel" and channel["displayName"] == "Main alice channel"
    assert channel["url"] == f"{instance.url}/video-channels/alice_channel"
    assert channel["isLocal"] is True
    assert "argon2" not in str(me) and not any("hash" in key.lower() for key in me)


async def test_update_profile(instance: Instance) -> None:
    client = await instance.user_client("bob")
    status, _ = await client.put(
        "/api/v1/users/me", json={"displayName": "Bob B", "description": "Hi", "nsfwPolicy": "display"}
    )
    assert status == 204
    _, me = await client.get("/api/v1/users/me")
    assert me["account"]["displayName"] == "Bob B" and me["account"]["description"] == "Hi"
    assert me["nsfwPolicy"] == "display"
    status, body = await client.put("/api/v1/users/me", json={"nsfwPolicy": "sometimes"})
    assert status == 400 and body["field"] == "nsfwPolicy"
    status, body = await client.put("/api/v1/users/me", json={"displayName": ""})
    assert status == 400 and body["field"] == "displayName"


async def test_email_change_needs_the_password_and_a_free_address(instance: Instance) -> None:
    client = await instance.user_client("cat")
    await instance.create_user("dan")
    status, body = await client.put("/api/v1/users/me", json={"email": "new@example.org"})
    assert status == 400 and body["code"] == "invalid_password" and body["field"] == "currentPassword"
    status, body = await client.put(
        "/api/v1/users/me", json={"email": "DAN@example.org", "currentPassword": "password123"}
    )
    assert status == 409 and body["field"] == "email"
    assert (await user_row(instance, "cat")).email == "cat@example.org"
    status, _ = await client.put(
        "/api/v1/users/me", json={"email": "cat@new.example", "currentPassword": "password123"}
    )
    assert status == 204
    assert (await user_row(instance, "cat")).email == "cat@new.example"


async def test_password_change_revokes_other_tokens(instance: Instance) -> None:
    await instance.create_user("eve")
    first = await token_pair(instance, "eve")
    second = await token_pair(instance, "eve")
    client = instance.client.as_user(first["access_token"])

    status, body = await client.put(
        "/api/v1/users/me", json={"currentPassword": "not-it", "password": "brand-new-pass"}
    )
    assert status == 400 and body["code"] == "invalid_password"
    assert verify_password((await user_row(instance, "eve")).password_hash, "password123")
    status, body = await client.put(
        "/api/v1/users/me", json={"currentPassword": "password123", "password": "x"}
    )
    assert status == 400 and body["field"] == "password"

    status, _ = await client.put(
        "/api/v1/users/me", json={"currentPassword": "password123", "password": "brand-new-pass"}
    )
    assert status == 204
    assert (await client.get("/api/v1/users/me"))[0] == 200  # the calling token survives
    status, body = await instance.client.as_user(second["access_token"]).get("/api/v1/users/me")
    assert status == 401
    assert await can_log_in(instance, "eve") == "invalid_grant"
    assert await can_log_in(instance, "eve", "brand-new-pass") is True


async def test_delete_me_removes_user_actors_and_videos(instance: Instance) -> None:
    client = await instance.user_client("fred")
    _, me = await client.get("/api/v1/users/me")
    channel_id = me["videoChannels"][0]["id"]
    video_uuid = str(uuid4())
    async with instance.shoal.db.write() as session:
        session.add(Video(uuid=video_uuid, channel_id=channel_id, name="v", thumbnail="thumbnails/v.jpg"))
    storage = instance.shoal.storage
    await storage.put_bytes(f"hls/{video_uuid}/master.m3u8", b"#EXTM3U\n")
    await storage.put_bytes("thumbnails/v.jpg", b"jpeg")
    await storage.put_bytes("thumbnails/other.jpg", b"jpeg")

    status, body = await client.delete("/api/v1/users/me", json={"password": "wrong-password"})
    assert status == 400 and body["code"] == "invalid_password"
    assert await user_row(instance, "fred") is not None

    status, _ = await client.delete("/api/v1/users/me", json={"password": "password123"})
    assert status == 204
    assert await user_row(instance, "fred") is None
    async with instance.shoal.db.read() as session:
        assert (
            await session.scalar(
                select(func.count()).select_from(Actor).where(Actor.id.in_([me["account"]["id"], channel_id]))
            )
            == 0
        )
        assert await session.scalar(select(func.count()).select_from(Video)) == 0
        assert await session.scalar(select(func.count()).select_from(AuthToken)) == 0
    assert (await client.get("/api/v1/users/me"))[0] == 401
    assert await can_log_in(instance, "fred") == "invalid_grant"
    # The videos' files went with them; nothing else did.
    assert await storage.list(f"hls/{video_uuid}/") == []
    assert not await storage.exists("thumbnails/v.jpg")
    assert await storage.exists("thumbnails/other.jpg")


async def test_last_admin_cannot_delete_themselves(instance: Instance) -> None:
    admin = await instance.user_client("root", role=Role.ADMIN)
    status, body = await admin.delete("/api/v1/users/me", json={"password": "password123"})
    assert status == 409 and body["code"] == "last_admin"
    assert await user_row(instance, "root") is not None


# Invitations ---------------------------------------------------------------------


async def test_invite_forces_a_password_change(instance: Instance) -> None:
    admin = await instance.user_client("boss", role=Role.ADMIN)
    status, body = await admin.post(
        "/api/v1/users/invites", json={"email": "Guest.One@example.org", "role": 1}
    )
    assert status == 200, body
    assert body["user"]["username"] == "guest.one"
    temporary = body["temporaryPassword"]
    assert len(temporary) >= 12

    tokens = await token_pair(instance, "guest.one", temporary)
    assert tokens["status"] == 200
    guest = instance.client.as_user(tokens["access_token"])
    status, me = await guest.get("/api/v1/users/me")
    assert status == 200 and me["mustChangePassword"] is True and me["role"]["id"] == 1
    for method, path in (("GET", "/api/v1/users"), ("DELETE", "/api/v1/users/me")):
        status, body = await guest.request(method, path, json={"password": temporary})
        assert status == 403 and body["code"] == "password_change_required", path
    status, body = await guest.put(
        "/api/v1/users/me", json={"currentPassword": temporary, "password": temporary}
    )
    assert status == 400 and body["code"] == "password_unchanged"

    status, _ = await guest.put(
        "/api/v1/users/me", json={"currentPassword": temporary, "password": "chosen-one"}
    )
    assert status == 204
    status, page = await guest.get("/api/v1/users")
    assert status == 200 and page["total"] == 2
    _, me = await guest.get("/api/v1/users/me")
    assert me["mustChangePassword"] is False
    assert await can_log_in(instance, "guest.one", temporary) == "invalid_grant"
    assert await can_log_in(instance, "guest.one", "chosen-one") is True


async def test_invite_names_and_permissions(instance: Instance) -> None:
    admin, moderator = await staff(instance)
    status, body = await moderator.post("/api/v1/users/invites", json={"email": "x@example.org"})
    assert status == 403 and body["code"] == "insufficient_role"
    assert await user_row(instance, "x") is None
    # A taken derived name gets a suffix; a taken e-mail or explicit name is a conflict.
    status, body = await admin.post("/api/v1/users/invites", json={"email": "mod@elsewhere.example"})
    assert status == 200 and body["user"]["username"] == "mod2"
    status, body = await admin.post("/api/v1/users/invites", json={"email": "MOD@example.org"})
    assert status == 409 and body["field"] == "email"
    status, body = await admin.post(
        "/api/v1/users/invites", json={"email": "new@example.org", "username": "boss"}
    )
    assert status == 409 and body["field"] == "username"
    status, body = await admin.post("/api/v1/users/invites", json={"email": "not-an-address"})
    assert status == 400 and body["field"] == "email"
    async with instance.shoal.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 3


# The admin API ---------------------------------------------------------------------


async def test_role_checks_on_admin_endpoints(instance: Instance) -> None:
    admin, moderator = await staff(instance)
    user = await instance.user_client("plain")
    _, target = await user.get("/api/v1/users/me")
    uid = target["id"]
    new_user = {"username": "newbie", "password": "password123", "email": "newbie@example.org"}

    for client, expected in ((user, 403), (moderator, 200), (admin, 200)):
        assert (await client.get("/api/v1/users"))[0] == expected
    for client in (user, moderator):
        assert (await client.post("/api/v1/users", json=new_user))[0] == 403
        assert (await client.get(f"/api/v1/users/{uid}"))[0] == 403
        assert (await client.put(f"/api/v1/users/{uid}", json={"videoQuota": 5}))[0] == 403
        assert (await client.delete(f"/api/v1/users/{uid}"))[0] == 403
    assert (await user.post(f"/api/v1/users/{uid}/block"))[0] == 403
    assert await user_row(instance, "newbie") is None
    assert (await user_row(instance, "plain")).video_quota == -1
    status, body = await instance.client.get("/api/v1/users")
    assert status == 401 and body["code"] == "authentication_required"


async def test_admin_creates_reads_updates_and_deletes_users(instance: Instance) -> None:
    admin = await instance.user_client("boss", role=Role.ADMIN)
    body = {
        "username": "newbie",
        "password": "password123",
        "email": "newbie@example.org",
        "role": 1,
        "videoQuota": 1000,
        "videoQuotaDaily": -1,
        "channelName": "newbie_videos",
    }
    status, created = await admin.post("/api/v1/users", json=body)
    assert status == 200, created
    uid = created["user"]["id"]
    status, user = await admin.get(f"/api/v1/users/{uid}")
    assert status == 200
    assert user["role"] == {"id": 1, "label": "Moderator"} and user["videoQuota"] == 1000
    assert user["account"]["id"] == created["user"]["account"]["id"]
    assert [c["name"] for c in user["videoChannels"]] == ["newbie_videos"]

    status, err = await admin.post("/api/v1/users", json={**body, "email": "other@example.org"})
    assert status == 409 and err["field"] == "username"
    status, err = await admin.post(
        "/api/v1/users", json={**body, "username": "other", "email": "o@example.org"}
    )
    assert status == 409 and err["field"] == "channelName"

    status, _ = await admin.put(
        f"/api/v1/users/{uid}", json={"role": 2, "videoQuota": 5, "password": "reset-pass"}
    )
    assert status == 204
    row = await user_row(instance, "newbie")
    assert row.role == Role.USER and row.video_quota == 5
    assert await can_log_in(instance, "newbie", "reset-pass") is True

    status, page = await admin.get("/api/v1/users", params={"search": "NEW", "sort": "username"})
    assert status == 200 and page["total"] == 1 and page["data"][0]["username"] == "newbie"
    status, page = await admin.get("/api/v1/users", params={"count": 1, "sort": "-id"})
    assert page["total"] == 2 and [u["id"] for u in page["data"]] == [uid]
    status, page = await admin.get("/api/v1/users", params={"search": "50%_"})
    assert status == 200 and page["total"] == 0

    status, _ = await admin.delete(f"/api/v1/users/{uid}")
    assert status == 204
    assert await user_row(instance, "newbie") is None
    assert (await admin.get(f"/api/v1/users/{uid}"))[0] == 404
    assert (await admin.delete(f"/api/v1/users/{uid}"))[0] == 404


async def test_admin_cannot_demote_or_delete_themselves(instance: Instance) -> None:
    admin = await instance.user_client("boss", role=Role.ADMIN)
    _, me = await admin.get("/api/v1/users/me")
    status, body = await admin.put(f"/api/v1/users/{me['id']}", json={"role": 2})
    assert status == 403
    status, body = await admin.delete(f"/api/v1/users/{me['id']}")
    assert status == 403
    assert (await user_row(instance, "boss")).role == Role.ADMIN


async def test_block_powers_and_effects(instance: Instance) -> None:
    admin, moderator = await staff(instance)
    other_mod = await instance.user_client("mod2", role=Role.MODERATOR)
    user = await instance.user_client("victim")
    ids = {}
    for name, client in (("boss", admin), ("mod", moderator), ("mod2", other_mod), ("victim", user)):
        ids[name] = (await client.get("/api/v1/users/me"))[1]["id"]

    # A moderator may block a plain user, not a moderator or an admin, nor themselves.
    for name in ("boss", "mod2", "mod"):
        status, body = await moderator.post(f"/api/v1/users/{ids[name]}/block")
        assert status == 403, name
        assert (await user_row(instance, name)).blocked is False
    status, _ = await moderator.post(f"/api/v1/users/{ids['victim']}/block", json={"reason": "spam"})
    assert status == 204

    status, body = await user.get("/api/v1/users/me")
    assert status == 401
    assert await can_log_in(instance, "victim") == "user_blocked"
    assert await can_log_in(instance, "victim", "wrong-password") == "invalid_grant"
    _, row = await admin.get(f"/api/v1/users/{ids['victim']}")
    assert row["blocked"] is True and row["blockedReason"] == "spam"
    _, page = await admin.get("/api/v1/users", params={"blocked": "true"})
    assert [u["username"] for u in page["data"]] == ["victim"]

    # An admin may block a moderator, but not themselves.
    assert (await admin.post(f"/api/v1/users/{ids['mod2']}/block"))[0] == 204
    assert (await other_mod.get("/api/v1/users"))[0] == 401
    assert (await admin.post(f"/api/v1/users/{ids['boss']}/block"))[0] == 403

    assert (await moderator.post(f"/api/v1/users/{ids['victim']}/unblock"))[0] == 204
    assert await can_log_in(instance, "victim") is True
    assert (await user.get("/api/v1/users/me"))[0] == 401  # the old token stays revoked
    assert (await moderator.post(f"/api/v1/users/{ids['mod2']}/unblock"))[0] == 403

"""Sign-up in the open, approval and closed modes, and the moderation of pending sign-ups."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from instance.models import Actor, ActorKind, Role, User
from instance.services.options import set_options
from tests.conftest import Instance, InstanceFactory


def signup(name: str, **extra: Any) -> dict[str, Any]:
    return {"username": name, "password": "password123", "email": f"{name}@example.org", **extra}


async def login_code(instance: Instance, username: str, password: str = "password123") -> int | str:
    """200 when the user can log in, else the error code of the token endpoint."""
    _, client = await instance.client.get("/api/v1/oauth-clients/local")
    status, body = await instance.client.post(
        "/api/v1/users/token",
        data={**client, "grant_type": "password", "username": username, "password": password},
    )
    return 200 if status == 200 else body["code"]


async def counts(instance: Instance) -> tuple[int, int]:
    """(users, local accounts and channels) stored (the instance's Application actor aside)."""
    async with instance.shoal.db.read() as session:
        users = await session.scalar(select(func.count()).select_from(User))
        actors = await session.scalar(
            select(func.count())
            .select_from(Actor)
            .where(Actor.host.is_(None), Actor.kind != ActorKind.APPLICATION)
        )
    return users, actors


async def test_open_registration(instance: Instance) -> None:
    status, body = await instance.client.post(
        "/api/v1/users/register", json=signup("alice", displayName="Alice A")
    )
    assert status == 204 and body is None
    assert await login_code(instance, "alice") == 200
    client = instance.client.as_user(await instance.client.login("alice", "password123"))
    _, me = await client.get("/api/v1/users/me")
    assert me["account"]["displayName"] == "Alice A"
    assert [c["name"] for c in me["videoChannels"]] == ["alice_channel"]

    status, _ = await instance.client.post(
        "/api/v1/users/register",
        json=signup("bob", channel={"name": "bobs_videos", "displayName": "Bob's videos"}),
    )
    assert status == 204
    _, me = await instance.client.as_user(await instance.client.login("bob", "password123")).get(
        "/api/v1/users/me"
    )
    assert [(c["name"], c["displayName"]) for c in me["videoChannels"]] == [("bobs_videos", "Bob's videos")]


async def test_taken_names_and_addresses_are_conflicts(instance: Instance) -> None:
    register = "/api/v1/users/register"
    assert (await instance.client.post(register, json=signup("carol")))[0] == 204
    before = await counts(instance)
    status, body = await instance.client.post(register, json=signup("carol", email="other@example.org"))
    assert status == 409 and body["field"] == "username"
    status, body = await instance.client.post(register, json=signup("carla", email="CAROL@example.org"))
    assert status == 409 and body["field"] == "email"
    # Accounts and channels share one name space.
    status, body = await instance.client.post(register, json=signup("carol_channel"))
    assert status == 409 and body["field"] == "username"
    status, body = await instance.client.post(
        register, json=signup("dora", channel={"name": "carol_channel", "displayName": "x"})
    )
    assert status == 409 and body["field"] == "channel.name"
    status, body = await instance.client.post(
        register, json=signup("dora", channel={"name": "dora", "displayName": "x"})
    )
    assert status == 400 and body["field"] == "channel.name"
    assert await counts(instance) == before


async def test_invalid_sign_ups_name_the_field(instance: Instance) -> None:
    register = "/api/v1/users/register"
    cases = {
        "username": signup("Not Valid!"),
        "password": signup("erin", password="short"),
        "email": signup("erin", email="nope"),
        "displayName": signup("erin", displayName=""),
    }
    for field, body in cases.items():
        status, problem = await instance.client.post(register, json=body)
        assert status == 400 and problem["field"] == field, (field, problem)
    # A name must match whole: "$" alone lets a trailing newline through (PeerTube refuses it).
    for body in (signup("erin\n"), signup("erin", channel={"name": "erin_videos\n", "displayName": "x"})):
        status, problem = await instance.client.post(register, json=body)
        assert status == 400 and problem["field"] in ("username", "channel.name"), problem
    status, problem = await instance.client.post(register, json=signup("shoal"))
    assert status == 400 and problem["code"] == "reserved_name"
    assert await counts(instance) == (0, 0)


async def test_closed_registration_stores_nothing(make_instance: InstanceFactory) -> None:
    instance = await make_instance(registration="closed")
    status, body = await instance.client.post("/api/v1/users/register", json=signup("frank"))
    assert status == 403 and body["code"] == "registration_closed"
    assert await counts(instance) == (0, 0)
    assert await login_code(instance, "frank") == "invalid_grant"


async def test_the_database_option_overrides_the_setting(instance: Instance) -> None:
    await set_options(instance.shoal, {"registration": "closed"})
    status, body = await instance.client.post("/api/v1/users/register", json=signup("gina"))
    assert status == 403 and body["code"] == "registration_closed"
    await set_options(instance.shoal, {"registration": "approval"})
    status, body = await instance.client.post("/api/v1/users/register", json=signup("gina"))
    assert status == 200 and body["state"]["id"] == 1


async def test_approval_accept_and_reject(make_instance: InstanceFactory) -> None:
    instance = await make_instance(registration="approval")
    moderator = await instance.user_client("mod", role=Role.MODERATOR)
    user = await instance.user_client("plain")

    status, hank = await instance.client.post(
        "/api/v1/users/register", json=signup("hank", registrationReason="I make films")
    )
    assert status == 200
    assert hank["state"] == {"id": 1, "label": "Pending"}
    assert hank["username"] == "hank" and hank["channelHandle"] == "hank_channel"
    assert hank["registrationReason"] == "I make films"
    status, iris = await instance.client.post("/api/v1/users/register", json=signup("iris"))
    assert status == 200
    assert await login_code(instance, "hank") == "registration_pending"
    assert await login_code(instance, "hank", "wrong-password") == "invalid_grant"

    # A plain user may neither see nor decide.
    assert (await user.get("/api/v1/users/registrations"))[0] == 403
    assert (await user.post(f"/api/v1/users/registrations/{hank['id']}/accept"))[0] == 403
    assert (await user.post(f"/api/v1/users/registrations/{iris['id']}/reject"))[0] == 403
    assert await login_code(instance, "hank") == "registration_pending"

    status, page = await moderator.get("/api/v1/users/registrations")
    assert status == 200 and page["total"] == 2
    assert {r["username"] for r in page["data"]} == {"hank", "iris"}
    status, page = await moderator.get("/api/v1/users/registrations", params={"search": "hAn"})
    assert [r["username"] for r in page["data"]] == ["hank"]

    status, _ = await moderator.post(
        f"/api/v1/users/registrations/{hank['id']}/accept", json={"moderationResponse": "Welcome"}
    )
    assert status == 204
    assert await login_code(instance, "hank") == 200
    status, body = await moderator.post(f"/api/v1/users/registrations/{hank['id']}/accept")
    assert status == 404 and body["code"] == "registration_not_found"

    users_before, actors_before = await counts(instance)
    status, _ = await moderator.post(f"/api/v1/users/registrations/{iris['id']}/reject")
    assert status == 204
    assert await counts(instance) == (users_before - 1, actors_before - 2)
    assert await login_code(instance, "iris") == "invalid_grant"
    status, page = await moderator.get("/api/v1/users/registrations")
    assert page["total"] == 0
    # The rejected names are free again.
    status, again = await instance.client.post("/api/v1/users/register", json=signup("iris"))
    assert status == 200 and again["state"]["id"] == 1
    # Accepting and rejecting only apply to pending sign-ups.
    _, me = await user.get("/api/v1/users/me")
    assert (await moderator.post(f"/api/v1/users/registrations/{me['id']}/reject"))[0] == 404
    assert (await user.get("/api/v1/users/me"))[0] == 200

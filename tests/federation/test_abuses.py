"""Abuse reports: ``POST /api/v1/abuses`` here, a ``Flag`` to the reported content's instance,
and the report listed for that instance's moderators — in both directions."""

from __future__ import annotations

from typing import Any

from instance.models import Role
from tests.conftest import Instance, InstanceFactory
from tests.federation.conftest import wait_for
from tests.instance.test_videos import add_renditions, new_video


async def resolve(client: Any, url: str) -> dict[str, Any]:
    status, page = await client.get("/api/v1/search/videos", params={"search": url})
    assert status == 200 and page["total"] == 1, page
    return page["data"][0]


async def reports_on(moderator: Any, count: int) -> list[dict[str, Any]]:
    async def listed() -> list[dict[str, Any]] | None:
        status, page = await moderator.get("/api/v1/abuses")
        assert status == 200, page
        return page["data"] if page["total"] >= count else None

    return await wait_for(listed, what=f"{count} reports listed")


async def test_reports_of_remote_content_are_flagged_to_their_instance(
    make_instance: InstanceFactory,
) -> None:
    a: Instance = await make_instance("a")
    b: Instance = await make_instance("b")
    alice = await a.user_client("alice")
    mod_a = await a.user_client("mod_a", role=Role.MODERATOR)
    bob = await b.user_client("bob")
    mod_b = await b.user_client("mod_b", role=Role.MODERATOR)

    video_a = await new_video(a, "alice", "Reported on B")
    await add_renditions(a, video_a)
    status, body = await alice.post(f"/api/v1/videos/{video_a.uuid}/comment-threads", json={"text": "Rude"})
    assert status == 200, body
    on_b = await resolve(bob, f"{a.url}/videos/watch/{video_a.uuid}")

    async def comment_on_b() -> dict[str, Any] | None:
        status, page = await b.client.get(f"/api/v1/videos/{video_a.uuid}/comment-threads")
        return page["data"][0] if status == 200 and page["data"] else None

    comment_b = await wait_for(comment_on_b, what="A's comment crawled on B")

    # Bad reports are refused with a problem document.
    for bad, code in (
        ({"reason": "no target"}, 400),
        ({"reason": "two", "video": {"id": on_b["id"]}, "account": {"id": 1}}, 400),
        ({"reason": "x", "video": {"id": on_b["id"]}}, 400),
        ({"reason": "gone", "video": {"id": 99999}}, 404),
        ({"reason": "gone", "comment": {"id": 99999}}, 404),
    ):
        status, body = await bob.post("/api/v1/abuses", json=bad)
        assert status == code and body["code"], (bad, body)
    assert (await b.client.post("/api/v1/abuses", json={"reason": "anon", "video": {"id": 1}}))[0] == 401
    assert (await bob.get("/api/v1/abuses"))[0] == 403

    # B's user reports A's video, A's comment and A's account: each reaches A's moderators.
    reports = (
        {"reason": "Spam video", "video": {"id": on_b["uuid"]}},
        {"reason": "Insulting comment", "comment": {"id": comment_b["id"]}},
        {"reason": "Spam account", "account": {"id": comment_b["account"]["id"]}},
    )
    for report in reports:
        status, body = await bob.post("/api/v1/abuses", json=report)
        assert status == 200 and isinstance(body["abuse"]["id"], int), body
    on_a = {r["reason"]: r for r in await reports_on(mod_a, 3)}
    assert set(on_a) == {"Spam video", "Insulting comment", "Spam account"}
    assert on_a["Spam video"]["video"]["uuid"] == video_a.uuid and on_a["Spam video"]["isRemote"]
    assert on_a["Insulting comment"]["comment"]["text"] == "Rude"
    assert on_a["Spam account"]["flaggedAccount"]["url"] == f"{a.url}/accounts/alice"
    # The reporter stays private: the Flag comes from B's Application actor.
    assert {r["reporterAccount"]["url"] for r in on_a.values()} == {f"{b.url}/accounts/peertube"}
    on_b_list = (await mod_b.get("/api/v1/abuses"))[1]
    assert on_b_list["total"] == 3 and not any(r["isRemote"] for r in on_b_list["data"])

    # The other way: A's user reports B's video, known on A by URL.
    await b.create_user("carol")
    video_b = await new_video(b, "carol", "Reported on A")
    await add_renditions(b, video_b)
    on_a_video = await resolve(alice, f"{b.url}/videos/watch/{video_b.uuid}")
    status, body = await alice.post(
        "/api/v1/abuses", json={"reason": "Copied", "video": {"id": on_a_video["id"]}}
    )
    assert status == 200, body
    flagged = await reports_on(mod_b, 4)
    assert flagged[0]["reason"] == "Copied" and flagged[0]["video"]["uuid"] == video_b.uuid
    assert flagged[0]["reporterAccount"]["host"] == a.settings.public_host

    # A report about local content stays local.
    status, _ = await alice.post("/api/v1/abuses", json={"reason": "Mine", "video": {"id": video_a.uuid}})
    assert status == 200
    assert len(await reports_on(mod_a, 5)) == 5
    assert (await mod_b.get("/api/v1/abuses"))[1]["total"] == 4

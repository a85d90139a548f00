"""Ratings over REST: like, dislike, clear; counts on the video; my rating."""

from __future__ import annotations

from instance.models import Privacy
from tests.conftest import Instance
from tests.instance.test_videos import new_video


async def test_rate_and_counts(instance: Instance) -> None:
    bob = await instance.user_client("bob")
    carol = await instance.user_client("carol")
    await instance.create_user("alice")
    video = await new_video(instance, "alice", "Rated video")
    rate = f"/api/v1/videos/{video.uuid}/rate"
    mine = f"/api/v1/users/me/videos/{video.id}/rating"

    status, body = await bob.get(mine)
    assert status == 200 and body == {"videoId": video.id, "rating": "none"}
    assert (await bob.put(rate, json={"rating": "like"}))[0] == 204
    assert (await bob.put(rate, json={"rating": "like"}))[0] == 204  # idempotent
    assert (await carol.put(rate, json={"rating": "dislike"}))[0] == 204
    status, details = await instance.client.get(f"/api/v1/videos/{video.uuid}")
    assert (details["likes"], details["dislikes"]) == (1, 1)
    assert (await bob.get(mine))[1]["rating"] == "like"

    assert (await bob.put(rate, json={"rating": "dislike"}))[0] == 204
    status, details = await instance.client.get(f"/api/v1/videos/{video.uuid}")
    assert (details["likes"], details["dislikes"]) == (0, 2)
    assert (await carol.put(rate, json={"rating": "none"}))[0] == 204
    status, details = await instance.client.get(f"/api/v1/videos/{video.uuid}")
    assert (details["likes"], details["dislikes"]) == (0, 1)
    assert (await carol.get(mine))[1]["rating"] == "none"

    status, body = await bob.put(rate, json={"rating": "love"})
    assert status == 400
    status, _ = await instance.client.put(rate, json={"rating": "like"})
    assert status == 401
    private = await new_video(instance, "alice", "Private one", privacy=Privacy.PRIVATE)
    status, body = await bob.put(f"/api/v1/videos/{private.uuid}/rate", json={"rating": "like"})
    assert status == 404 and body["code"] == "video_not_found"

"""The extension surface: one per Shoal, events with one failure policy, ports answered by the
packages that install themselves."""

from __future__ import annotations

import pytest

from instance.extensions import EVENTS, Surface, UnknownEvent, build_surface
from tests.conftest import InstanceFactory
from tests.instance.test_videos import new_video


def test_the_installed_packages_answer_the_ports_and_handle_the_events() -> None:
    surface = build_surface()
    assert surface.remote_actors is not None and surface.swarm_ids is not None
    assert surface.fetch_remote_image is not None and surface.announce_mirror is not None
    assert set(surface.handlers) == set(EVENTS)
    assert len(surface.handlers["video_published"]) == 2  # federation's Create, p2p's torrents
    assert build_surface(()).handlers == {} and build_surface(()).remote_actors is None
    with pytest.raises(UnknownEvent):
        Surface().on("video_exploded", lambda *_: None)


def test_job_kinds_and_federation_tables_belong_to_one_surface() -> None:
    async def handler(shoal, item) -> None:
        pass

    one, two = build_surface(), build_surface()
    core = {"noop", "sleep", "process_video"}
    packages = {"inbox", "deliver", "deliver_batch", "fetch_comments", "make_torrents", "mirror_video"}
    assert set(one.jobs) == core | packages
    assert one.jobs is not two.jobs and one.packages["federation"] is not two.packages["federation"]
    assert one.packages["federation"].routes == two.packages["federation"].routes
    one.jobs.register("test.only_here", handler)
    assert "test.only_here" in one.jobs and "test.only_here" not in two.jobs
    bare = build_surface(())
    assert set(bare.jobs) == core and bare.packages == {} and bare.jobs.consumer_starts == []


async def test_each_shoal_has_its_own_surface_and_a_failing_handler_costs_nothing(
    make_instance: InstanceFactory,
) -> None:
    a = await make_instance("a")
    b = await make_instance("b")
    assert a.shoal.ext is not b.shoal.ext
    heard: list[tuple[str, int]] = []

    async def broken(shoal, comment_id: int) -> None:
        raise RuntimeError("a broken extension")

    async def listening(shoal, comment_id: int) -> None:
        heard.append((shoal.settings.public_url, comment_id))

    a.shoal.ext.on("comment_created", broken)
    a.shoal.ext.on("comment_created", listening)
    alice = await a.user_client("alice")
    video = await new_video(a, "alice", "Comment me")
    status, body = await alice.post(f"/api/v1/videos/{video.uuid}/comment-threads", json={"text": "First"})
    assert status == 200, body  # the comment stands although a handler raised
    assert heard == [(a.url, body["comment"]["id"])]
    bob = await b.user_client("bob")
    other = await new_video(b, "bob", "Elsewhere")
    assert (await bob.post(f"/api/v1/videos/{other.uuid}/comment-threads", json={"text": "Hi"}))[0] == 200
    assert len(heard) == 1  # b's surface never had a's handlers

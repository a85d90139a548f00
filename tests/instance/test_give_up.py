"""A job that gives up leaves its domain row final: the video fails with a reason, the mirror
fails; never "transcoding" or "wanted" forever with no work left to move it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import update

from instance.jobs import PermanentFailure, add_work, claim_work, run_work
from instance.jobs.claims import fail_abandoned
from instance.models import Video, VideoMirror, VideoState, WorkItem
from instance.models.redundancy import MirrorState
from tests.conftest import InstanceFactory
from tests.instance.test_videos import new_video


async def test_a_video_whose_processing_gives_up_fails_with_the_reason(
    make_instance: InstanceFactory,
) -> None:
    instance = await make_instance(worker=False, jobs_sweep_interval=3600)
    await instance.create_user("alice")
    shoal = instance.shoal

    # Its worker vanished during the last attempt: the sweeper fails the row, and the video.
    abandoned = await new_video(instance, "alice", "Abandoned", state=VideoState.PROBED)
    async with shoal.db.write() as session:
        row = await add_work(shoal, session, "process_video", str(abandoned.id), max_attempts=1)
    assert await claim_work(shoal, row.id, "dead-worker", lease=timedelta(seconds=0.1))
    await asyncio.sleep(0.2)
    assert await fail_abandoned(shoal) == 1

    # Its last attempt ends in a refusal raised mid-way (the original is gone): the same.
    orphan = await new_video(instance, "alice", "No original", state=VideoState.RECEIVED)
    async with shoal.db.write() as session:
        await session.execute(update(Video).where(Video.id == orphan.id).values(source_key=None))
        row = await add_work(shoal, session, "process_video", str(orphan.id), max_attempts=1)
    assert await run_work(shoal, row.id, worker_id="worker-a") == "failed"

    for video in (abandoned, orphan):
        async with shoal.db.read() as session:
            current = await session.get(Video, video.id)
        assert current.state == VideoState.FAILED, video.name
        assert current.failure_code == "processing_failed" and "gave up" in current.failure_reason


async def test_a_mirror_whose_copy_gives_up_fails(make_instance: InstanceFactory) -> None:
    instance = await make_instance(worker=False, jobs_sweep_interval=3600)
    await instance.create_user("bob")
    shoal = instance.shoal
    video = await new_video(
        instance, "bob", "Someone else's", remote_url="http://elsewhere.example/videos/watch/1"
    )
    async with shoal.db.write() as session:
        mirror = VideoMirror(video_id=video.id, state=MirrorState.WANTED)
        session.add(mirror)
        await session.flush()
        row = await add_work(shoal, session, "mirror_video", str(mirror.id), max_attempts=1)
    assert await claim_work(shoal, row.id, "dead-worker", lease=timedelta(seconds=0.1))
    await asyncio.sleep(0.2)
    assert await fail_abandoned(shoal) == 1
    async with shoal.db.read() as session:
        current = await session.get(VideoMirror, mirror.id)
        work = await session.get(WorkItem, row.id)
    assert (work.state, current.state) == ("failed", MirrorState.FAILED)
    assert current.last_error and "gave up" in current.last_error


def test_the_state_graphs_name_their_final_states_and_moves() -> None:
    from instance.models.redundancy import MIRROR_STATES
    from instance.models.states import BadTransition
    from instance.models.video import VIDEO_STATES

    assert VIDEO_STATES.final == {VideoState.PUBLISHED, VideoState.FAILED}
    assert MIRROR_STATES.final == {MirrorState.MIRRORED, MirrorState.FAILED}
    assert VIDEO_STATES.allows(VideoState.PROBED, VideoState.RECEIVED)  # a retry starts over
    assert not VIDEO_STATES.allows(VideoState.FAILED, VideoState.RECEIVED)
    assert not VIDEO_STATES.allows(VideoState.RECEIVED, VideoState.TRANSCODED)  # no step skipped
    assert not VIDEO_STATES.allows(VideoState.RECEIVED, VideoState.PUBLISHED)
    try:
        VIDEO_STATES.check(VideoState.PUBLISHED, VideoState.PROBED)
    except BadTransition as exc:
        assert "published" in str(exc)
    else:
        raise AssertionError("a published video went back to probed")


async def test_processing_never_moves_a_final_video(make_instance: InstanceFactory) -> None:
    """A video failed (or deleted) while its job waited: the job stops, the video stays failed."""
    from instance.services.processing import _set

    instance = await make_instance(worker=False)
    await instance.create_user("carol")
    video = await new_video(instance, "carol", "Failed meanwhile", state=VideoState.FAILED)
    try:
        await _set(instance.shoal, video.id, state=VideoState.RECEIVED, progress=0)
    except PermanentFailure as exc:
        assert "cannot go to received" in str(exc)
    else:
        raise AssertionError("a failed video went back to received")
    async with instance.shoal.db.read() as session:
        assert (await session.get(Video, video.id)).state == VideoState.FAILED

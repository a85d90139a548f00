"""The instance starts, answers its config, and speaks problem documents for errors."""

from __future__ import annotations

from instance.app import CHORES, STARTUP_HOOKS
from tests.conftest import Instance, InstanceFactory


async def test_config_answers(instance: Instance) -> None:
    status, body = await instance.client.get("/api/v1/config")
    assert status == 200
    assert body["signup"]["allowed"] is True
    assert body["serverVersion"]


async def test_unknown_route_is_a_problem(instance: Instance) -> None:
    status, body = await instance.client.get("/api/v1/does-not-exist")
    assert status == 404
    assert body["code"] == "not_found" and body["status"] == 404 and body["detail"]


async def test_each_app_runs_its_own_chores_and_startup_hooks(make_instance: InstanceFactory) -> None:
    """Two instances in one process: each times its chores by its own settings, and neither
    inherits the other's list (they were process-wide, registered by the first app)."""
    fast = await make_instance("fast", views_flush_interval=5.0)
    slow = await make_instance("slow", views_flush_interval=120.0)
    intervals = {
        inst.settings.views_flush_interval: {c.name: c.interval for c in inst.app[CHORES]}["flush_views"]
        for inst in (fast, slow)
    }
    assert intervals == {5.0: 5.0, 120.0: 120.0}
    assert fast.app[CHORES] is not slow.app[CHORES]
    assert fast.app[STARTUP_HOOKS] is not slow.app[STARTUP_HOOKS]
    names = [chore.name for chore in fast.app[CHORES]]
    assert len(names) == len(set(names)) and {"refresh_remote_videos", "tracker_sweep"} <= set(names)
    # Both started: each ran its startup hooks (the Application actor exists on each).
    for inst in (fast, slow):
        accept = {"Accept": "application/activity+json"}
        assert (await inst.client.get("/accounts/peertube", headers=accept))[0] == 200

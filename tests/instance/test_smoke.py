"""The instance starts, answers its config, and speaks problem documents for errors."""

from __future__ import annotations

from tests.conftest import Instance


async def test_config_answers(instance: Instance) -> None:
    status, body = await instance.client.get("/api/v1/config")
    assert status == 200
    assert body["signup"]["allowed"] is True
    assert body["serverVersion"]


async def test_unknown_route_is_a_problem(instance: Instance) -> None:
    status, body = await instance.client.get("/api/v1/does-not-exist")
    assert status == 404
    assert body["code"] == "not_found" and body["status"] == 404 and body["detail"]

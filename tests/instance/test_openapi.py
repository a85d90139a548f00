"""The OpenAPI document lists every API route of the running app and is a valid OpenAPI 3.1."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from tests.conftest import Instance

_PLACEHOLDER = re.compile(r"\{(\w+)(?::[^}]*)?\}")


async def test_every_api_route_is_documented(instance: Instance) -> None:
    status, doc = await instance.client.get("/api/v1/openapi.json")
    assert status == 200
    registered = set()
    for route in instance.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method == "HEAD" or not path.startswith("/api/"):
            continue
        registered.add((route.method.lower(), _PLACEHOLDER.sub(r"{\1}", path)))
    assert ("get", "/api/v1/videos/{id}") in registered  # the walk found the routes
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    missing = sorted(registered - documented)
    assert not missing, f"routes missing from the OpenAPI document: {missing}"


async def test_document_is_valid_openapi_31(instance: Instance) -> None:
    status, doc = await instance.client.get("/api/v1/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.1")
    validate(doc)

"""Fuzz every operation of the OpenAPI document against a live instance: no answer may be a 5xx.

Schemathesis draws requests from each operation's own schemas, both ones that fit them and ones
that break them (wrong types, missing fields, any bytes as a body), with path parameters now and
then replaced by real ids of this instance so the handlers behind the lookups run too. They are
sent anonymously, as a user and as an admin. Generation is derandomised and bounded, so a run is
repeatable and takes well under a minute; it runs in a thread while the instance answers on the
test's event loop.

Drawing is most of that minute, and it is a pure function of the OpenAPI document, the known ids
(the fuzzed video has a fixed UUID), this module and the libraries' versions: the cases are drawn
against a placeholder base URL and kept in ``tests/output/fuzz-cases/`` (git-ignored), in a file
named by a hash of all that, so the second run of ``make test`` (and any run after, until one of
them changes) sends the very same requests without drawing them again.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import json
import os
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException
from schemathesis import GenerationMode
from yarl import URL

from instance.models import Role
from tests.conftest import Instance
from tests.instance.test_videos import new_video

EXAMPLES = 8
"""Requests drawn per operation and generation mode."""
CONCURRENCY = 8
REQUEST_TIMEOUT = 20.0
BUDGET_SECONDS = 100.0
# Ways out of the instance that a fuzzer should not take: they would wait on DNS for made-up hosts.
OUTBOUND = {("POST", "/api/v1/server/following"), ("PUT", "/api/v1/server/redundancy/{host}")}
WHO = ("anonymous", "user", "admin")
DRAW_BASE = "http://shoal.fuzz.invalid"
"""The base URL cases are drawn against; replaced by the instance's when they are sent."""
VIDEO_UUID = "0f0f0f0f-1234-4abc-8def-00000000f022"
CACHE_DIR = Path(__file__).resolve().parents[1] / "output" / "fuzz-cases"  # git-ignored


@dataclass
class Case:
    """One request to send, as schemathesis describes it, and who sends it."""

    operation: str
    kwargs: dict[str, Any]
    who: str


def draw_cases(doc: dict[str, Any], base_url: str, known: dict[str, list[str]]) -> list[Case]:
    """Draw the requests of every operation (runs hypothesis: call it from a thread)."""
    schema = schemathesis.openapi.from_dict(doc)
    cases: list[Case] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        if (operation.method.upper(), operation.path) in OUTBOUND:
            continue
        names = [p.name for p in operation.path_parameters]
        real = {name: known.get(name) or known["any"] for name in names}
        for mode in GenerationMode:
            strategies = [operation.as_strategy(generation_mode=mode)]
            if names:
                fixed = st.fixed_dictionaries({name: st.sampled_from(real[name]) for name in names})
                strategies.append(
                    fixed.flatmap(
                        lambda values, op=operation, mode=mode: op.as_strategy(
                            generation_mode=mode, path_parameters=values
                        )
                    )
                )
            cases += _draw(label, st.one_of(strategies), base_url)
    return cases


def cached_cases(doc: dict[str, Any], known: dict[str, list[str]]) -> list[Case]:
    """:func:`draw_cases` against :data:`DRAW_BASE`, from the file of an earlier identical draw
    if there is one (call it from a thread)."""
    versions = [importlib.metadata.version(name) for name in ("hypothesis", "schemathesis")]
    source = Path(__file__).read_bytes()
    key = json.dumps([doc, known, versions, EXAMPLES, hashlib.sha256(source).hexdigest()], sort_keys=True)
    path = CACHE_DIR / f"{hashlib.sha256(key.encode()).hexdigest()}.pickle"
    try:
        return pickle.loads(path.read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
        pass
    cases = draw_cases(doc, DRAW_BASE, known)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(pickle.dumps(cases))
    partial.replace(path)
    return cases


def _draw(label: str, strategy: Any, base_url: str) -> list[Case]:
    drawn: list[Case] = []

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, who=st.sampled_from(WHO))
    def collect(case: Any, who: str) -> None:
        drawn.append(Case(label, case.as_transport_kwargs(base_url=base_url), who))

    try:
        collect()
    except HypothesisException:
        pass  # e.g. no request can break a schema that takes anything: keep what was drawn
    return drawn


def _pairs(params: Any) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, value in (params or {}).items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, bool):
                item = "true" if item else "false"
            out.append((str(name), "" if item is None else str(item)))
    return out


def _request(case: Case, tokens: dict[str, str], base_url: str) -> dict[str, Any]:
    """aiohttp's arguments for a schemathesis request, sent to ``base_url``."""
    kwargs = case.kwargs
    assert kwargs["url"].startswith(DRAW_BASE), kwargs["url"]
    headers = {k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() == "content-type"}
    if case.who in tokens:
        headers["Authorization"] = f"Bearer {tokens[case.who]}"
    out: dict[str, Any] = {
        "method": kwargs["method"],
        "url": URL(base_url + kwargs["url"].removeprefix(DRAW_BASE), encoded=True),
        "params": _pairs(kwargs.get("params")),
        "headers": headers,
        "allow_redirects": False,
    }
    if "json" in kwargs:
        out["data"] = json.dumps(kwargs["json"]).encode()  # ensure_ascii escapes lone surrogates
        headers.setdefault("Content-Type", "application/json")
    elif kwargs.get("files"):
        form = aiohttp.FormData(quote_fields=True)
        for name, (filename, content) in kwargs["files"]:
            if filename is None:
                text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)
                form.add_field(name, text)
            else:
                form.add_field(name, content, filename=filename, content_type="application/octet-stream")
        for name, value in _pairs(kwargs.get("data") if isinstance(kwargs.get("data"), dict) else {}):
            form.add_field(name, value)
        headers.pop("Content-Type", None)
        out["data"] = form
    elif isinstance(kwargs.get("data"), bytes | str):
        out["data"] = kwargs["data"]
    elif isinstance(kwargs.get("data"), dict):
        out["data"] = _pairs(kwargs["data"])
    return out


async def test_no_operation_answers_a_5xx(make_instance) -> None:
    instance: Instance = await make_instance(
        rate_limit_login="100000/60", rate_limit_register="100000/60", rate_limit_upload="100000/60"
    )
    user = await instance.user_client("fuzzer")
    admin = await instance.user_client("fuzzadmin", role=Role.ADMIN)
    video = await new_video(instance, "fuzzer", "A fuzzed video", uuid=VIDEO_UUID)
    status, doc = await instance.client.get("/api/v1/openapi.json")
    assert status == 200
    doc = json.loads(json.dumps(doc).replace(instance.url, DRAW_BASE))  # the same in every run
    known = {
        "id": [str(video.id), video.uuid, video.short_uuid],
        "uuid": [video.uuid],
        "handle": ["fuzzer_channel", "fuzzer_channel@127.0.0.1"],
        "name": ["fuzzer", "fuzzadmin"],
        "kind": ["thumbnails", "previews", "torrents"],
        "state": ["pending", "failed", "completed", "processing"],
        "any": ["1", video.uuid, "fuzzer"],
    }
    started = time.monotonic()
    cases = await asyncio.to_thread(cached_cases, doc, known)
    operations = {case.operation for case in cases}
    documented = sum(len(ops) for ops in doc["paths"].values())
    assert len(operations) >= documented - len(OUTBOUND), sorted(operations)
    tokens = {"user": user.token or "", "admin": admin.token or ""}
    failures: list[str] = []
    limit = asyncio.Semaphore(CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)

    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(case: Case) -> None:
            async with limit:
                try:
                    request = _request(case, tokens, instance.url)
                    async with session.request(**request) as resp:
                        await resp.read()
                except ValueError:
                    return  # aiohttp will not send it (a control character in a header or part name)
                except aiohttp.ClientConnectionError:
                    # An early refusal (an upload answered before its body was read) closes the
                    # connection under the client: that is an answer, and it was not a 5xx.
                    return
            if resp.status >= 500:
                failures.append(f"{resp.status} {case.operation} as {case.who}: {case.kwargs!r:.400}")

        await asyncio.gather(*(one(case) for case in cases))
    elapsed = time.monotonic() - started
    summary = f"{len(failures)} of {len(cases)} requests answered 5xx:\n"
    assert not failures, summary + "\n".join(failures[:30])
    assert elapsed < BUDGET_SECONDS, f"the fuzz run took {elapsed:.0f} s"

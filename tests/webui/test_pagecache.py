"""Anonymous watch pages are shared per app, never mixed with a signed-in visitor's page or with
another app's, and follow edits at once."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from instance import db
from tests.instance.test_auth import session_cookie, web_login
from tests.media import make_clip
from tests.support import upload, wait_done
from webui import pagecache


def _kept(inst) -> dict:
    return pagecache._of_shoal(inst.shoal).pages


async def _get(url: str, cookie: str | None = None) -> tuple[int, str, dict[str, str]]:
    headers = {"Cookie": f"shoal_session={cookie}"} if cookie else {}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        return resp.status, await resp.text(), dict(resp.headers)


async def test_anonymous_watch_page_is_shared_and_follows_edits(make_instance, tmp_path: Path) -> None:
    inst = await make_instance(transcoding_resolutions="240")
    client = await inst.user_client("erin")
    video = await upload(client, make_clip(tmp_path, "v.mp4", 320, 240, 30, 2.0), "Tide pools")
    await wait_done(client, video["id"])
    watch = f"{inst.url}/w/{video['shortUUID']}"

    # A signed-in visitor's page (with their name and CSRF token) is never kept for others.
    status, headers, _ = await web_login(inst, "erin")
    assert status == 303
    cookie = session_cookie(headers).value
    status, mine, _ = await _get(watch, cookie)
    assert status == 200 and "erin" in mine and 'name="csrf-token"' in mine
    status, first, first_headers = await _get(watch)
    assert status == 200 and "Tide pools" in first
    assert 'name="csrf-token"' not in first and "Log out" not in first
    assert first_headers["Content-Security-Policy"]  # security headers still on every answer

    # The next anonymous answer is the kept page: same bytes, no new render — unless a write
    # (a background chore, the worker's) came in between, which starts a new page: try again.
    key = ("watch", f"/w/{video['shortUUID']}")
    for _ in range(20):
        generation = db.write_generation
        status, first, first_headers = await _get(watch)
        kept = _kept(inst).get(key)
        status, second, second_headers = await _get(watch)
        if db.write_generation == generation:
            break
    assert db.write_generation == generation, "the database never stayed quiet for two requests"
    assert status == 200 and second == first and _kept(inst)[key] is kept
    assert second_headers["Content-Security-Policy"] == first_headers["Content-Security-Policy"]

    # An edit is a write: the next anonymous visitor sees it at once.
    generation = db.write_generation
    status, _ = await client.put(f"/api/v1/videos/{video['id']}", json={"name": "Rock pools"})
    assert status == 204 and db.write_generation > generation
    status, third, _ = await _get(watch)
    assert status == 200 and "Rock pools" in third and "Tide pools" not in third

    # Errors are not kept: an unknown video stays a 404 with its own page.
    status, missing, _ = await _get(f"{inst.url}/w/doesnotexist")
    assert status == 404 and ("watch", "/w/doesnotexist") not in _kept(inst)


async def test_two_apps_in_one_process_keep_their_own_pages(make_instance) -> None:
    """The home page is the same path on both: each app must answer its own."""
    alpha = await make_instance("alpha", instance_name="Alpha Videos")
    beta = await make_instance("beta", instance_name="Beta Videos")
    for _ in range(2):  # the second round is served from what each app kept
        for inst, name, other in ((alpha, "Alpha", "Beta"), (beta, "Beta", "Alpha")):
            status, page, _ = await _get(inst.url + "/")
            assert status == 200 and f"{name} Videos" in page and f"{other} Videos" not in page

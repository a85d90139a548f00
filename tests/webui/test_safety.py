"""Hostile text stays text in Chromium; a file that is not a video shows why it failed."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser

from tests.media import make_clip, text_as_mp4
from tests.support import upload, wait_done

from .conftest import Problems, new_context

HOSTILE = '<script>window.__pwned = 1; alert(1)</script><img src=x onerror="window.__pwned = 2; alert(2)">'
HOSTILE_MD = HOSTILE + ' [click](javascript:alert(3)) <a href="javascript:alert(4)">link</a>'


async def test_hostile_title_description_and_comment_run_nothing(
    make_instance, browser: Browser, output_dir: Path, tmp_path: Path
) -> None:
    inst = await make_instance(transcoding_resolutions="240")
    client = await inst.user_client("mallory")
    clip = make_clip(tmp_path, "x.mp4", 320, 240, 30, 2.0)
    video = await upload(client, clip, ("Evil " + HOSTILE)[:120], description=HOSTILE_MD)
    await wait_done(client, video["id"])
    status, body = await client.post(
        f"/api/v1/videos/{video['id']}/comment-threads", json={"text": HOSTILE_MD}
    )
    assert status == 200, body

    # CSP is bypassed so that escaping and sanitising alone are what is tested.
    problems = Problems()
    context = await browser.new_context(base_url=inst.url, bypass_csp=True)
    context.set_default_timeout(60_000)
    dialogs: list[str] = []
    page = await context.new_page()
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: problems.add(str(e)))
    for path in (f"/w/{video['shortUUID']}", "/", f"/videos/embed/{video['uuid']}", "/search?q=evil"):
        await page.goto(path)
        if path.startswith("/w/"):
            await page.wait_for_selector(".comment-text")
            for link in await page.query_selector_all(".description a, .comment a"):
                await link.click(no_wait_after=True)
        await page.screenshot(path=str(output_dir / (path.strip("/").split("/")[0] or "home")) + ".png")
        assert await page.evaluate("() => window.__pwned === undefined"), path
        assert await page.query_selector_all("[onerror], a[href^='javascript']") == [], path
    await page.goto(f"/w/{video['shortUUID']}")
    assert "<script>" in await page.inner_text("h1.video-title")
    await page.wait_for_selector(".comment-text")
    assert "<img src=x" in await page.inner_text(".comment-text")
    assert dialogs == []
    assert problems.items == []
    await context.close()


async def test_upload_of_a_non_video_shows_the_reason(
    make_instance, browser: Browser, output_dir: Path, tmp_path: Path
) -> None:
    inst = await make_instance()
    await inst.create_user("bob", password="bob-password")
    problems = Problems()
    context = await new_context(browser, inst.url, problems)
    page = await context.new_page()
    await page.goto("/login?next=/upload")
    await page.fill("input[name=username]", "bob")
    await page.fill("input[name=password]", "bob-password")
    await page.click("#login-form button[type=submit]")
    await page.wait_for_url("**/upload")
    await page.set_input_files("#file", str(text_as_mp4(tmp_path)))
    await page.fill("input[name=name]", "Not a video")
    await page.click("#upload-button")
    error = page.locator("#processing-error")
    await error.wait_for(state="visible", timeout=120_000)
    assert (await error.inner_text()).strip()
    await page.screenshot(path=str(output_dir / "failed-upload.png"), full_page=True)
    await page.goto("/my-library")
    assert await page.locator(".badge.bad").count() == 1
    await context.close()
    assert problems.items == []

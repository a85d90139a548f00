"""In Chromium: the edit page replaces a video's thumbnail, and shows why a picture is refused."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser

from tests.instance.test_videos import new_video

from .conftest import Problems, new_context
from .test_browser import PNG_2X2, STEP_TIMEOUT


async def test_edit_page_replaces_the_thumbnail(
    make_instance, browser: Browser, output_dir: Path, tmp_path: Path
) -> None:
    inst = await make_instance()
    await inst.create_user("alice", password="alice-password")
    video = await new_video(inst, "alice", "Needs a picture")
    good = tmp_path / "good.png"
    good.write_bytes(PNG_2X2)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a picture at all")
    problems = Problems()
    context = await new_context(browser, inst.url, problems)
    context.set_default_timeout(STEP_TIMEOUT)
    page = await context.new_page()
    await page.goto("/login")
    await page.fill("input[name=username]", "alice")
    await page.fill("input[name=password]", "alice-password")
    await page.click("#login-form button[type=submit]")
    await page.wait_for_url(inst.url + "/")

    await page.goto(f"/videos/edit/{video.short_uuid}")
    await page.set_input_files("#thumbnail-form input[name=thumbnailfile]", str(bad))
    await page.click("#thumbnail-form button[type=submit]")
    error = page.locator("#thumbnail-form .form-error:not([hidden])")
    assert "not a JPEG, PNG or WebP" in await error.inner_text()
    # The refusal (400) is the only problem, and it is expected.
    assert problems.items and all("400" in item for item in problems.items), problems.items
    problems.items.clear()

    await page.set_input_files("#thumbnail-form input[name=thumbnailfile]", str(good))
    await page.click("#thumbnail-form button[type=submit]")
    await page.wait_for_selector("#thumbnail-form .form-result >> text=Thumbnail replaced.")
    await page.reload()
    # The 850×480 preview re-encoded from the 2×2 picture.
    await page.wait_for_function(
        "() => document.getElementById('current-thumbnail').naturalWidth === 850", polling=250
    )
    await page.screenshot(path=str(output_dir / "edit-thumbnail.png"), full_page=True)
    await context.close()
    assert problems.items == []

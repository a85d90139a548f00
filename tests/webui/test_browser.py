"""End to end in Chromium: sign up, create a channel, upload through the page, watch, comment, embed,
moderate."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, Page

from instance.models import Role
from tests.media import make_clip

from .conftest import Problems, new_context

# Generous, condition-based waits: the test must pass on a busy 2-core machine (transcoding,
# Chromium and other test runs share it). Every wait polls a condition; none sleeps.
STEP_TIMEOUT = 120_000  # any click, navigation or selector
PLAY_TIMEOUT = 180_000  # media attached, playback clock, rung switch
PROCESS_TIMEOUT = 600_000  # upload received and transcoded (20 s clip, two rungs)
POLL_MS = 250


# A valid 2×2 PNG (red), chosen as the thumbnail on the upload page.
PNG_2X2 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000002000000020802000000fdd49a73"
    "0000001049444154789c63f8cfc000440c100a001fee03fd8b5f14d40000000049454e44ae426082"
)


async def shot(page: Page, out: Path, name: str) -> None:
    await page.screenshot(path=str(out / f"{name}.png"), full_page=True)


async def play_past(page: Page, seconds: float) -> None:
    """Start the (muted) video and wait until its clock passes ``seconds``."""
    await page.wait_for_function(
        "() => window.shoalPlayer && window.shoalPlayer.video.readyState >= 1",
        timeout=PLAY_TIMEOUT,
        polling=POLL_MS,
    )
    await page.evaluate("() => { const v = window.shoalPlayer.video; v.muted = true; return v.play(); }")
    await page.wait_for_function(
        f"() => window.shoalPlayer.video.currentTime > {seconds}", timeout=PLAY_TIMEOUT, polling=250
    )


async def test_sign_up_upload_watch_comment_embed_block(
    make_instance, browser: Browser, output_dir: Path, tmp_path: Path
) -> None:
    inst = await make_instance(transcoding_resolutions="360,240", registration="open")
    await inst.create_user("boss", password="bosspassword", role=Role.ADMIN)
    clip = make_clip(tmp_path, "e2e.mp4", 640, 360, 30, 20.0)
    poster = tmp_path / "poster.png"
    poster.write_bytes(PNG_2X2)
    problems = Problems()
    context = await new_context(browser, inst.url, problems)
    context.set_default_timeout(STEP_TIMEOUT)
    context.set_default_navigation_timeout(STEP_TIMEOUT)
    page = await context.new_page()

    await page.goto("/")
    await shot(page, output_dir, "01-home-empty")
    await page.goto("/signup")
    await page.fill("input[name=username]", "alice")
    await page.fill("input[name=email]", "alice@example.org")
    await page.fill("input[name=password]", "alice-password")
    await shot(page, output_dir, "02-signup")
    await page.click("#signup-form button[type=submit]")
    await page.wait_for_url("**/my-library")

    await page.fill("#new-channel input[name=name]", "alice_films")
    await page.fill("#new-channel input[name=displayName]", "Alice's films")
    await page.click("#new-channel button[type=submit]")
    await page.wait_for_selector("text=Alice's films")
    await shot(page, output_dir, "03-library")

    await page.goto("/upload")
    await page.select_option("select[name=channelId]", label="Alice's films")
    await page.set_input_files("#file", str(clip))
    await page.fill("input[name=name]", "Sunset over the bay")
    await page.fill("textarea[name=description]", "A **calm** evening. [More](https://example.org/)")
    await page.fill("input[name=tags]", "sunset, bay")
    await page.set_input_files("#thumbnailfile", str(poster))
    await page.click("#upload-button")
    await page.wait_for_function(
        "() => document.getElementById('upload-progress').value === 100",
        timeout=PROCESS_TIMEOUT,
        polling=POLL_MS,
    )
    await shot(page, output_dir, "04-uploading")
    await page.wait_for_selector("#thumbnail-state >> text=Your thumbnail is set.")
    await page.wait_for_selector("#upload-done:not([hidden])", timeout=PROCESS_TIMEOUT)
    await shot(page, output_dir, "05-processed")

    await page.click("#watch-link")
    await page.wait_for_url("**/w/*")
    assert await page.inner_text("h1.video-title") == "Sunset over the bay"
    assert await page.inner_html(".description strong") == "calm"
    await play_past(page, 2.0)
    options = await page.eval_on_selector_all(
        "#quality option", "els => els.map(e => [e.value, e.textContent])"
    )
    assert [label for _, label in options[1:]] == ["360p", "240p"], options
    low = options[-1][0]
    await page.select_option("#quality", low)
    await page.wait_for_function(
        "() => document.getElementById('player').dataset.height === '240'",
        timeout=PLAY_TIMEOUT,
        polling=POLL_MS,
    )
    await page.click('[data-act="stats"]')
    await page.wait_for_function(
        "() => document.getElementById('stats').textContent.includes('240p')",
        timeout=PLAY_TIMEOUT,
        polling=POLL_MS,
    )
    await shot(page, output_dir, "06-watch")

    await page.fill("#new-comment", "Lovely colours")
    await page.click("#comments form.comment-form button[type=submit]")
    await page.wait_for_selector(".comment-text >> text=Lovely colours")
    await page.click(".comment >> button:has-text('Reply')")
    await page.fill(".comment form.reply textarea", "Thank you!")
    await page.click(".comment form.reply button[type=submit]")
    await page.wait_for_selector(".replies .comment-text >> text=Thank you!")
    await shot(page, output_dir, "07-comments")

    uuid = await page.get_attribute("article.watch", "data-video-uuid")
    await page.goto(f"/videos/embed/{uuid}")
    await play_past(page, 2.0)
    await shot(page, output_dir, "08-embed")

    await page.goto("/c/alice_films")
    await page.wait_for_selector("text=Sunset over the bay")
    await shot(page, output_dir, "09-channel")
    await page.goto("/a/alice")
    await page.wait_for_selector("text=Sunset over the bay")
    await shot(page, output_dir, "10-account")
    await page.goto("/search?q=sunset")
    await page.wait_for_selector(".grid >> text=Sunset over the bay")

    await page.click("header button:has-text('Log out')")
    await page.goto("/login")
    await page.fill("input[name=username]", "boss")
    await page.fill("input[name=password]", "bosspassword")
    await page.click("#login-form button[type=submit]")
    await page.wait_for_url(inst.url + "/")
    await page.goto("/admin")
    await page.click("tr[data-user-row=alice] button:has-text('Block')")
    await page.wait_for_selector("tr[data-user-row=alice] .user-state >> text=blocked")
    await shot(page, output_dir, "11-admin")
    await context.close()
    assert problems.items == []

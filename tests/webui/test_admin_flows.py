"""In Chromium: an admin approves and rejects sign-ups; an invited user chooses a password at first login."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import Browser, Page

from instance.models import Role

from .conftest import Problems, new_context

STEP_TIMEOUT = 120_000  # generous: a busy 2-core machine


async def log_in(page: Page, username: str, password: str) -> None:
    await page.goto("/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("#login-form button[type=submit]")


async def test_admin_accepts_and_rejects_sign_ups(make_instance, browser: Browser, output_dir: Path) -> None:
    inst = await make_instance(registration="approval")
    await inst.create_user("boss", password="bosspassword", role=Role.ADMIN)
    for name in ("carol", "dave"):
        status, body = await inst.client.post(
            "/api/v1/users/register",
            json={
                "username": name,
                "email": f"{name}@example.org",
                "password": f"{name}-password",
                "registrationReason": f"{name} <b>likes</b> videos",
            },
        )
        assert status == 200 and body["state"]["label"] == "Pending", body
    problems = Problems()
    context = await new_context(browser, inst.url, problems)
    context.set_default_timeout(STEP_TIMEOUT)
    page = await context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())

    await log_in(page, "carol", "carol-password")
    await page.wait_for_selector("#login-form .form-error:not([hidden])")
    # Refused while pending (400 registration_pending): the only problems allowed, once.
    assert "approval" in await page.inner_text("#login-form .form-error")
    assert problems.items and all("400" in item for item in problems.items), problems.items
    problems.items.clear()

    await log_in(page, "boss", "bosspassword")
    await page.wait_for_url(inst.url + "/")
    await page.goto("/admin")
    rows = page.locator("#registrations [data-registration-row]")
    assert await rows.count() == 2
    # The reason is shown as text, not markup.
    assert await page.locator("[data-registration-row=carol]").inner_text() != ""
    assert await page.locator("[data-registration-row=carol] b").count() == 0
    await page.screenshot(path=str(output_dir / "registrations.png"), full_page=True)
    await page.click("[data-registration-row=carol] button:has-text('Accept')")
    await page.wait_for_selector("[data-registration-row=carol]", state="detached")
    await page.click("[data-registration-row=dave] button:has-text('Reject')")
    await page.wait_for_selector("[data-registration-row=dave]", state="detached")
    await page.wait_for_selector("#registrations >> text=None")
    assert await page.locator("tr[data-user-row=dave]").count() == 0
    assert await page.locator("tr[data-user-row=carol] .user-state").inner_text() == "active"
    await page.click("header button:has-text('Log out')")

    await log_in(page, "carol", "carol-password")
    await page.wait_for_url(inst.url + "/")
    await context.close()
    assert problems.items == []


async def test_invited_user_chooses_a_password_at_first_login(
    make_instance, browser: Browser, output_dir: Path
) -> None:
    inst = await make_instance()
    await inst.create_user("boss", password="bosspassword", role=Role.ADMIN)
    problems = Problems()
    context = await new_context(browser, inst.url, problems)
    context.set_default_timeout(STEP_TIMEOUT)
    page = await context.new_page()

    await log_in(page, "boss", "bosspassword")
    await page.wait_for_url(inst.url + "/")
    await page.goto("/admin")
    await page.fill("#invite-form input[name=email]", "erin@example.org")
    await page.click("#invite-form button[type=submit]")
    result = await page.locator("#invite-form .form-result:not([hidden])").inner_text()
    found = re.search(r"Invited (\S+): temporary password (\S+)", result)
    assert found, result
    username, temporary = found.groups()
    await page.click("header button:has-text('Log out')")

    # The temporary password lets the user in only as far as choosing their own.
    await log_in(page, username, temporary)
    await page.wait_for_url(inst.url + "/settings")
    assert await page.inner_text("h1") == "Choose your password"
    await page.goto("/my-library")
    await page.wait_for_url(inst.url + "/settings")
    await page.screenshot(path=str(output_dir / "choose-password.png"), full_page=True)
    await page.fill("#password-form input[name=currentPassword]", temporary)
    await page.fill("#password-form input[name=password]", "erin-own-password")
    await page.click("#password-form button[type=submit]")
    await page.wait_for_url(inst.url + "/my-library")
    await page.click("header button:has-text('Log out')")

    await log_in(page, username, "erin-own-password")
    await page.wait_for_url(inst.url + "/")
    await page.goto("/settings")
    assert await page.inner_text("h1") == "Settings"
    await context.close()
    assert problems.items == []

"""Shared browser fixtures: Debian's Chromium driven by Playwright, the app under uvicorn on loopback
(``tests/live.py``, with ``oidc-provider-mock`` for staff single sign-on), and users who sign in
with a password through the ``/login`` form, as people do."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from compliance.service import SystemActor
from control_plane import service
from tests.live import LiveApp, Provider, oidc_provider, serve_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with oidc_provider() as p:
        yield p


@pytest.fixture(scope="module")
def live(settings, provider: Provider) -> Iterator[LiveApp]:
    with serve_app(settings, provider) as app:
        yield app


@pytest.fixture(scope="module")
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        await browser.close()


@pytest.fixture
async def page(chromium: Browser) -> AsyncIterator[Page]:
    context = await chromium.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = await context.new_page()
    page.set_default_timeout(15_000)
    yield page
    await context.close()


async def new_page(chromium: Browser, width: int = 1280) -> Page:
    """Another browser (its own cookies): a second person at the same time."""
    context = await chromium.new_context(viewport={"width": width, "height": 900}, locale="en-GB")
    tab = await context.new_page()
    tab.set_default_timeout(15_000)
    return tab


async def password_user(dbs, role: str, tenant: str | None = None) -> tuple[str, str]:
    """A user with a password set, ``(email, password)``: for journeys that do not test invitations."""
    email = f"{role.split('_')[0]}-{uuid.uuid4().hex[:8]}@example.com"
    password = "pw-" + secrets.token_urlsafe(16)
    async with dbs.control_transaction() as session:
        body = {"email": email, "role": role} | ({"tenant": tenant} if tenant else {})
        await service.create_user(session, SystemActor("tests"), body)
        await service.set_password(session, email, password)
    return email, password


async def sign_in_with_password(tab: Page, base_url: str, email: str, password: str, next_path: str = "/") -> None:
    """The ``/login`` form, filled by its labels, as a person would."""
    await tab.goto(f"{base_url}/login?next={next_path}")
    await tab.get_by_label("Email").fill(email)
    await tab.get_by_label("Password", exact=True).fill(password)
    await tab.get_by_role("button", name="Sign in", exact=True).click()
    await expect(tab.locator("header .who")).to_contain_text(email)

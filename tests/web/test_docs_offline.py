"""/docs and /redoc render with the network cut off (air-gapped banks): every script and style
comes from the platform itself, and the CSP (no inline script) does not break them. The pages'
API key box keeps the key in sessionStorage and sends it as a Bearer header."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture
def offline(browser, server_url):
    """A browser context that can reach the platform and nothing else."""
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    local = urlsplit(server_url).netloc
    elsewhere: list[str] = []

    def route(route):
        if urlsplit(route.request.url).netloc == local or route.request.url.startswith(
            ("data:", "blob:")
        ):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", route)
    page = context.new_page()
    violations: list[str] = []
    page.on(
        "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
    )
    yield page, elsewhere, violations
    context.close()


def test_swagger_ui_renders_offline(offline, server_url):
    page, elsewhere, violations = offline
    page.goto(server_url + "/docs")
    page.wait_for_selector(".swagger-ui .opblock-tag", timeout=15_000)
    assert page.locator(".opblock").count() >= 5  # the operations are listed
    assert page.get_by_text("/predict-drawing").first.is_visible()
    assert elsewhere == [] and violations == []


def test_redoc_renders_offline(offline, server_url):
    page, elsewhere, violations = offline
    page.goto(server_url + "/redoc")
    page.wait_for_selector("h1", timeout=20_000)
    assert "DigitFlow" in page.locator("h1").first.inner_text()
    page.wait_for_selector("text=/predict-drawing", timeout=20_000)
    assert elsewhere == []
    assert not [v for v in violations if "script" in v.lower()]


def test_the_key_box_sends_the_key_as_a_bearer_header(offline, server_url):
    page, _, _ = offline
    page.goto(server_url + "/bulk")
    sent: list[str | None] = []
    page.on("request", lambda r: sent.append(r.headers.get("authorization"))
            if "/jobs" in r.url else None)  # fmt: skip
    page.get_by_test_id("api-key-input").fill("df_0123456789ab_secret")
    page.get_by_test_id("api-key-save").click()  # stores it, reloads the page
    page.wait_for_load_state("networkidle")
    assert page.evaluate("sessionStorage.getItem('digitflow-api-key')") == "df_0123456789ab_secret"
    assert page.evaluate("localStorage.length") == 0 and "df_" not in page.url
    assert "Bearer df_0123456789ab_secret" in sent
    page.get_by_test_id("api-key-forget").click()
    assert page.evaluate("sessionStorage.getItem('digitflow-api-key')") is None

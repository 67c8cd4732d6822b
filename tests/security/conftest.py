"""An API on the embedded defaults (migrated SQLite), with short auth caches so that tests see
keys appear and disappear quickly, and helpers to make keys."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from digitflow import keys
from digitflow.db import make_sessionmaker
from digitflow.db.migrations import upgrade
from tests.jobs.support import api_settings

REFRESH = 0.2  # auth_mode_refresh_seconds and auth_cache_seconds in these tests


def security_settings(tmp_path, **overrides):
    values = dict(
        data_dir=tmp_path, max_job_files=50, max_image_bytes=200_000, job_batch_size=8,
        auth_cache_seconds=REFRESH, auth_mode_refresh_seconds=REFRESH,
    )  # fmt: skip
    settings = api_settings(**{**values, **overrides})
    upgrade(settings.resolved_database_url)
    return settings


@pytest.fixture
def settings(tmp_path):
    return security_settings(tmp_path)


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


class KeyMaker:
    def __init__(self, settings):
        self.sessions = make_sessionmaker(settings.resolved_database_url)

    def __call__(self, tenant: str, role: str, name: str = "") -> dict[str, str]:
        """Authorization headers for a new key (and the API notices keys exist)."""
        with self.sessions.begin() as session:
            created = keys.create_key(session, tenant, role, name)
        time.sleep(REFRESH * 1.5)  # past the open-mode refresh
        return {"Authorization": f"Bearer {created.key}"}

    def revoke(self, headers: dict[str, str]) -> None:
        key_id = headers["Authorization"].split("_")[1]
        with self.sessions.begin() as session:
            assert keys.revoke_key(session, key_id) is not None


@pytest.fixture
def make_key(settings) -> KeyMaker:
    return KeyMaker(settings)


@pytest.fixture(autouse=True)
def clear_of_a_minute_edge():
    """The rate limits count fixed windows (api.security): a test that sends a few requests
    against an "N/minute" limit must not straddle the turn of a minute, where every count
    starts again. Start at least 15 s before the next turn."""
    into_minute = time.time() % 60
    if into_minute > 45:
        time.sleep(60 - into_minute + 0.05)

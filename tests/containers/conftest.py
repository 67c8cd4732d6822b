"""The running compose stack that scripts/test-containers.sh (`make test-containers`) brought up.

These tests talk to it over HTTP only; without DIGITFLOW_STACK_URL (a plain `pytest` run) they
skip and say how to run them.
"""

from __future__ import annotations

import os

import httpx
import pytest

STACK_URL = os.environ.get("DIGITFLOW_STACK_URL")
STACK_KEY = os.environ.get("DIGITFLOW_STACK_KEY") or None
STACK_PROJECT = os.environ.get("DIGITFLOW_STACK_PROJECT", "digitflow-ct")


def pytest_collection_modifyitems(items):
    if STACK_URL:
        return
    skip = pytest.mark.skip(reason="needs the compose stack: run `make test-containers`")
    for item in items:
        if "tests/containers/" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def stack() -> httpx.Client:
    headers = {"Authorization": f"Bearer {STACK_KEY}"} if STACK_KEY else {}
    # Long: a 1,000-file upload is stored document by document (Blob + Postgres) before 202.
    with httpx.Client(base_url=STACK_URL, headers=headers, timeout=600) as client:
        yield client

"""The real API app with the real default model, in process (FastAPI's TestClient)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.config import Settings
from api.main import create_app
from devtools.mnist import mnist_test_set
from devtools.scans import canvas_drawing, data_url, png  # noqa: F401 (shared with tests/api)
from digitflow.settings import PlatformSettings


@pytest.fixture(scope="session")
def model_dir() -> Path:
    # models/default unless MODEL_DIR says otherwise — the same rule the platform follows.
    return PlatformSettings().model_dir


def make_client(**overrides) -> TestClient:
    return TestClient(create_app(Settings(**overrides)), raise_server_exceptions=False)


@pytest.fixture(scope="session")
def client(model_dir, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("var")
    with make_client(model_dir=model_dir, data_dir=data_dir) as client:
        yield client


@pytest.fixture(scope="session")
def mnist_test_digits() -> tuple[np.ndarray, np.ndarray]:
    """The first 40 digits of the official MNIST test set (uint8 [N, 28, 28], labels)."""
    images, labels = mnist_test_set()
    return images[:40], labels[:40]


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["detail"], str) and len(body["detail"]) > 10, body
    if code is not None:
        assert body["code"] == code, body
    return body

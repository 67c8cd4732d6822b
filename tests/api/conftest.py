"""The real API app with the real default model, in process (FastAPI's TestClient)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.config import Settings
from api.main import create_app
from digitflow.settings import PlatformSettings
from training.data import default_data_dir, read_idx


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
    folder = default_data_dir()
    images = read_idx(folder / "t10k-images-idx3-ubyte.gz")[:40]
    labels = read_idx(folder / "t10k-labels-idx1-ubyte.gz")[:40]
    return images, labels


def png(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", **options)
    return out.getvalue()


def canvas_drawing(digit: np.ndarray, side: int = 280, size: int = 160, at=(60, 40)) -> bytes:
    """A digit as the browser canvas sends it: dark ink as alpha over a transparent background."""
    alpha = Image.new("L", (side, side), 0)
    alpha.paste(Image.fromarray(digit).resize((size, size), Image.Resampling.BILINEAR), at)
    rgba = Image.new("RGBA", (side, side), (17, 24, 39, 0))
    rgba.putalpha(alpha)
    return png(rgba)


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["detail"], str) and len(body["detail"]) > 10, body
    if code is not None:
        assert body["code"] == code, body
    return body

"""Every way an input can be wrong gets a 4xx JSON answer that says what was wrong."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.api.conftest import assert_error, canvas_drawing, data_url, make_client, png
from tests.recognition.images import png_header_only


def scan_bytes(fmt: str) -> bytes:
    pixels = np.full((120, 90), 240, np.uint8)
    pixels[20:100, 40:52] = 15
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, fmt)
    return out.getvalue()


def upload(client, data: bytes, name="file.png", mime="image/png", field="file"):
    return client.post("/predict", files={field: (name, data, mime)})


def draw(client, image):
    return client.post("/predict-drawing", json={"image": image})


@pytest.mark.parametrize("data", [b"hello, this is text", b"%PDF-1.7\n" + b"0" * 200, b"\x00" * 64])
def test_not_an_image(client, data):
    body = assert_error(upload(client, data), 400, "undecodable_image")
    assert "not an image" in body["detail"]
    assert_error(draw(client, data_url(data)), 400, "undecodable_image")


def test_zero_byte_file(client):
    assert_error(upload(client, b""), 400, "undecodable_image")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(client, fmt):
    data = scan_bytes(fmt)
    cut = data[: len(data) * 2 // 3]
    body = assert_error(upload(client, cut, f"cut.{fmt.lower()}"), 400, "truncated_image")
    assert "truncated" in body["detail"]
    assert_error(draw(client, data_url(cut)), 400, "truncated_image")


def test_empty_drawing(client):
    blank = png(Image.new("RGBA", (280, 280), (0, 0, 0, 0)))
    body = assert_error(draw(client, data_url(blank)), 422, "empty_image")
    assert "no ink" in body["detail"]
    white = png(Image.new("L", (200, 200), 255))
    assert_error(upload(client, white), 422, "empty_image")


def test_too_many_pixels(client):
    bomb = png_header_only(30000, 30000)
    body = assert_error(upload(client, bomb), 413, "image_too_large")
    assert "pixels" in body["detail"]
    assert_error(draw(client, data_url(bomb)), 413, "image_too_large")


@pytest.fixture(scope="module")
def small_limit_client(model_dir, tmp_path_factory):
    with make_client(model_dir=model_dir, max_image_bytes=100_000,
                     data_dir=tmp_path_factory.mktemp("var")) as client:
        yield client


def test_too_many_bytes(small_limit_client):
    big = bytes(150_000)
    body = assert_error(upload(small_limit_client, big), 413, "payload_too_large")
    assert "100000" in body["detail"] or "larger" in body["detail"]
    assert_error(draw(small_limit_client, data_url(big)), 413)


def test_too_many_bytes_without_content_length_is_counted_as_it_streams(small_limit_client):
    def chunks():
        for _ in range(50):
            yield b"x" * 10_000

    response = small_limit_client.post(
        "/predict-drawing", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")


def test_declared_content_length_over_the_limit_is_refused_before_reading(small_limit_client):
    response = small_limit_client.post(
        "/predict-drawing", content=b"{}",
        headers={"Content-Type": "application/json", "Content-Length": "999999999"},
    )
    assert_error(response, 413, "payload_too_large")


def test_wrong_content_type(client):
    url = data_url(canvas_drawing(np.eye(28, dtype=np.uint8) * 255))
    body = assert_error(client.post("/predict", json={"image": url}), 415, "unsupported_media_type")
    assert "multipart/form-data" in body["detail"]
    response = client.post("/predict-drawing", content=url, headers={"Content-Type": "text/plain"})
    assert_error(response, 415, "unsupported_media_type")
    response = client.post("/predict-drawing", files={"file": ("a.png", b"x", "image/png")})
    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "image",
    [
        "not a data url",
        "data:image/png;base64,@@@not-base64@@@",
        "data:image/png,rawbytes",
        "data:;base64,AAAA",
        "https://example.com/digit.png",
    ],
)
def test_malformed_data_url(client, image):
    assert_error(draw(client, image), 400, "invalid_data_url")


def test_missing_or_invalid_fields(client):
    body = assert_error(upload(client, scan_bytes("PNG"), field="image"), 422, "validation_error")
    assert "file" in body["detail"]
    body = assert_error(client.post("/predict-drawing", json={}), 422, "validation_error")
    assert "image" in body["detail"]
    assert_error(client.post("/predict-drawing", json={"image": 7}), 422, "validation_error")
    assert_error(client.post("/predict-drawing", json=["image"]), 422, "validation_error")
    response = client.post(
        "/predict-drawing", content=b'{"image": "data:',
        headers={"Content-Type": "application/json"},
    )
    body = assert_error(response, 422, "validation_error")
    assert "JSON" in body["detail"]


def test_unknown_path_and_method_are_json_too(client):
    assert_error(client.get("/no-such-page"), 404)
    assert client.get("/predict").status_code == 405

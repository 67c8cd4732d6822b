"""POST /predict and /predict-drawing: right answers, full answers, big payloads."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from recognition.synthetic import render_scan
from tests.api.conftest import canvas_drawing, data_url, png

ANSWER_KEYS = {
    "text", "digit", "confidence", "probabilities", "digits", "separators", "needs_review",
    "review_reasons", "model_version",
}  # fmt: skip


def check_answer(body: dict, client) -> None:
    """A one-digit answer: the field shape with `digit` and `probabilities` kept."""
    assert set(body) == ANSWER_KEYS
    probabilities = np.array(body["probabilities"])
    assert probabilities.shape == (10,)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert body["digit"] == int(probabilities.argmax())
    assert body["text"] == str(body["digit"])
    [digit] = body["digits"]
    assert digit["digit"] == body["digit"] and digit["probabilities"] == body["probabilities"]
    assert set(digit["box"]) == {"x", "y", "width", "height"}
    # The confidence carries the mass on "not a digit": never above the digit's own probability.
    assert body["confidence"] == pytest.approx(digit["confidence"])
    assert body["confidence"] <= probabilities.max() + 1e-9
    card = client.get("/model-info").json()
    assert body["model_version"] == card["version"]
    assert body["needs_review"] == bool(body["review_reasons"])
    low = body["confidence"] < card["review"]["threshold"]
    assert low == ("low_confidence" in body["review_reasons"])


def upload(client, data: bytes, name: str = "digit.png", mime: str = "image/png"):
    return client.post("/predict", files={"file": (name, data, mime)})


def draw(client, url: str):
    return client.post("/predict-drawing", json={"image": url})


def test_scans_dark_on_light_are_read(client, mnist_test_digits):
    images, labels = mnist_test_digits
    rng = np.random.default_rng(3)
    answers = []
    for digit, label in zip(images[:20], labels[:20], strict=True):
        fmt = "JPEG" if len(answers) % 2 else "PNG"
        response = upload(client, render_scan(digit, rng, fmt), f"scan.{fmt.lower()}")
        assert response.status_code == 200, response.text
        check_answer(response.json(), client)
        answers.append(response.json()["digit"] == label)
    assert sum(answers) >= 19, answers


def test_a_white_on_black_mnist_digit_is_read(client, mnist_test_digits):
    images, labels = mnist_test_digits
    response = upload(client, png(Image.fromarray(images[0])))
    assert response.status_code == 200, response.text
    assert response.json()["digit"] == labels[0]


def test_canvas_drawings_at_any_size_and_position_are_read(client, mnist_test_digits):
    images, labels = mnist_test_digits
    placements = [(160, (60, 40)), (90, (10, 170)), (250, (15, 20)), (120, (150, 5))]
    right = 0
    for i, (digit, label) in enumerate(zip(images[20:40], labels[20:40], strict=True)):
        size, at = placements[i % len(placements)]
        response = draw(client, data_url(canvas_drawing(digit, size=size, at=at)))
        assert response.status_code == 200, response.text
        check_answer(response.json(), client)
        right += response.json()["digit"] == label
    assert right >= 19


def noisy_page_with_digit(digit: np.ndarray, side: int) -> bytes:
    """A large scan whose noise defeats compression: several megabytes of PNG."""
    rng = np.random.default_rng(5)
    page = rng.normal(230, 12, (side, side))
    ink = np.asarray(Image.fromarray(digit).resize((side // 2, side // 2)), dtype=np.float64)
    page[side // 4 : side // 4 + side // 2, side // 4 : side // 4 + side // 2] -= ink * 0.85
    return png(Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)))


def test_payloads_well_above_one_megabyte_are_accepted(client, mnist_test_digits):
    images, labels = mnist_test_digits
    data = noisy_page_with_digit(images[1], 1400)
    assert len(data) > 1_500_000
    response = draw(client, data_url(data))
    assert response.status_code == 200, response.text
    assert response.json()["digit"] == labels[1]
    response = upload(client, data)
    assert response.status_code == 200, response.text
    assert response.json()["digit"] == labels[1]


def test_other_image_formats_are_read(client, mnist_test_digits):
    images, labels = mnist_test_digits
    rng = np.random.default_rng(9)
    for fmt, mime in [("TIFF", "image/tiff"), ("BMP", "image/bmp"), ("GIF", "image/gif"),
                      ("WEBP", "image/webp")]:
        scan = Image.open(io.BytesIO(render_scan(images[2], rng, "PNG")))
        out = io.BytesIO()
        scan.save(out, fmt)
        response = upload(client, out.getvalue(), f"scan.{fmt.lower()}", mime)
        assert response.status_code == 200, (fmt, response.text)
        assert response.json()["digit"] == labels[2], fmt

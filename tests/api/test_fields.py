"""Both endpoints read whole fields and honour `layout`; non-digit marks are never confident."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.api.conftest import data_url, png
from tests.support.marks import MARKS, mark_scan
from training.synthetic_fields import FieldSpec, render_field


def upload(client, data: bytes, layout: str | None = None, as_query: bool = False):
    if layout and as_query:
        return client.post(f"/predict?layout={layout}", files={"file": ("f.png", data)})
    form = {"layout": layout} if layout else None
    return client.post("/predict", files={"file": ("f.png", data, "image/png")}, data=form)


@pytest.fixture(scope="module")
def boxed_fields(mnist_test_digits):
    images, labels = mnist_test_digits
    rng = np.random.default_rng(21)
    specs = [FieldSpec(count=n, structure="box", height=36, rotation=1.5) for n in (2, 3, 4, 5)]
    return [render_field(spec, images, labels, rng) for spec in specs]


def test_predict_reads_a_boxed_amount_with_boxes_per_digit(client, boxed_fields):
    right = 0
    for made in boxed_fields:
        response = upload(client, made.image)
        assert response.status_code == 200, response.text
        body = response.json()
        right += body["text"] == made.text
        assert len(body["digits"]) == len(body["text"])
        assert body["digit"] == body["digits"][0]["digit"]
        lefts = [d["box"]["x"] for d in body["digits"]]
        assert lefts == sorted(lefts) and len(set(lefts)) == len(lefts)
        expected = np.prod([d["confidence"] for d in body["digits"]])
        assert body["confidence"] == pytest.approx(expected)
        assert body["needs_review"] == bool(body["review_reasons"])
    assert right >= 3


def test_layout_is_honoured_as_form_field_and_query(client, boxed_fields):
    made = boxed_fields[2]
    assert len(upload(client, made.image, "field").json()["text"]) == len(made.text)
    assert len(upload(client, made.image, "digit").json()["text"]) == 1
    assert len(upload(client, made.image, "digit", as_query=True).json()["text"]) == 1
    refused = upload(client, made.image, "sideways")
    assert refused.status_code == 422
    assert refused.json()["code"] == "validation_error" and "layout" in refused.json()["detail"]


def test_predict_drawing_reads_digits_side_by_side(client, mnist_test_digits):
    images, labels = mnist_test_digits
    alpha = Image.new("L", (420, 280), 0)
    for k, x in enumerate((30, 160, 290)):
        alpha.paste(Image.fromarray(images[k]).resize((110, 110)), (x, 80))
    rgba = Image.new("RGBA", alpha.size, (17, 24, 39, 0))
    rgba.putalpha(alpha)
    url = data_url(png(rgba))
    body = client.post("/predict-drawing", json={"image": url}).json()
    assert body["text"] == "".join(str(int(label)) for label in labels[:3])
    assert len(body["digits"]) == 3
    single = client.post("/predict-drawing", json={"image": url, "layout": "digit"}).json()
    assert len(single["text"]) == 1
    query = client.post("/predict-drawing?layout=digit", json={"image": url}).json()
    assert len(query["text"]) == 1


@pytest.mark.parametrize("mark", MARKS)
def test_non_digit_marks_are_flagged_or_refused_on_both_endpoints(client, mark):
    data = mark_scan(mark)
    for response in (
        upload(client, data),
        client.post("/predict-drawing", json={"image": data_url(data)}),
    ):
        if response.status_code == 422:
            assert response.json()["code"] == "no_digits"
            continue
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["needs_review"], body
        assert body["review_reasons"]

"""The canvas fast path with access control in place: open, but a key that is sent is checked
and counted; a client over its decode-heavy limit is refused before its image enters the
batch."""

from __future__ import annotations

import base64

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from api.main import create_app
from tests.api.conftest import canvas_drawing, data_url
from tests.recognition.images import encode
from tests.security.conftest import KeyMaker, security_settings
from tests.security.test_hostile import lossless_webp

DRAWING = {"image": data_url(canvas_drawing(np.eye(28, dtype=np.uint8) * 255))}


def test_canvas_stays_open_but_a_sent_key_is_checked_and_limited(tmp_path):
    settings = security_settings(tmp_path, rate_limit_per_key="3/minute")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        make_key = KeyMaker(settings)
        alice = make_key("acme", "submitter")
        assert client.post("/predict-drawing", json=DRAWING).status_code == 200  # no key
        codes = [client.post("/predict-drawing", json=DRAWING, headers=alice).status_code
                 for _ in range(4)]  # fmt: skip
        assert codes == [200, 200, 200, 429]
        bogus = {"Authorization": "Bearer df_0123456789ab_" + "A" * 43}
        refused = client.post("/predict-drawing", json=DRAWING, headers=bogus)
        assert refused.status_code == 401 and refused.json()["code"] == "unauthenticated"
        make_key.revoke(alice)
        client.app.state.auth.forget(alice["Authorization"].split("_")[1])
        assert client.post("/predict-drawing", json=DRAWING, headers=alice).status_code == 401


def test_an_over_limit_heavy_upload_never_enters_the_batch(tmp_path):
    settings = security_settings(tmp_path, rate_limit_heavy_per_address="1/minute")
    near = lossless_webp(2000, 2000)  # 4 MP: over the inline budget, under the hard limit
    small = encode(Image.new("L", (100, 100), 255), "PNG")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        batcher = client.app.state.batcher
        assert client.post("/predict", files={"file": ("n.webp", near)}).status_code == 422
        submitted = batcher.requests
        refused = client.post("/predict", files={"file": ("n.webp", near)})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert batcher.requests == submitted  # refused from its header alone
        assert client.post("/predict", files={"file": ("s.png", small)}).status_code == 422
        blank = encode(Image.new("L", (64, 64), 255), "PNG")
        blank_url = "data:image/png;base64," + base64.b64encode(blank).decode()
        inline = client.post("/predict-drawing", json={"image": blank_url})
        assert inline.status_code == 422  # blank, read inline: the heavy limit does not apply


def test_a_drawing_bomb_is_refused_from_its_header_before_the_batch(tmp_path):
    """The data URL's first bytes are read on the event loop: a 40 MP WebP in a drawing is 413
    at once, and a near-limit one goes straight to the heavy path."""
    bomb, near = lossless_webp(8000, 5000), lossless_webp(2000, 2000)
    with TestClient(
        create_app(security_settings(tmp_path)), raise_server_exceptions=False
    ) as client:
        batcher, budget = client.app.state.batcher, client.app.state.budget
        submitted = batcher.requests
        as_url = "data:image/webp;base64,{}".format
        refused = client.post(
            "/predict-drawing", json={"image": as_url(base64.b64encode(bomb).decode())}
        )
        assert refused.status_code == 413 and refused.json()["code"] == "image_too_large"
        assert batcher.requests == submitted
        heavy = budget.heavy_decodes
        blank = client.post(
            "/predict-drawing", json={"image": as_url(base64.b64encode(near).decode())}
        )
        assert blank.status_code == 422  # a blank page, found so in the helper process
        assert budget.heavy_decodes == heavy + 1
        assert batcher.requests == submitted  # never decoded inside the canvas batch

"""POST /predict-drawing is served by a pure ASGI fast path (api.predict.fastpath), past FastAPI's
routing: it must still be counted under its route, keep the security headers, refuse the way the
route does, and leave every other method and path to FastAPI."""

import base64
import re

import numpy as np
import pytest

from tests.api.conftest import canvas_drawing, data_url, make_client


def _count(metrics: str, status: str) -> float:
    pattern = (r'digitflow_http_request_duration_seconds_count\{[^}]*method="POST"[^}]*'
               r'route="/predict-drawing"[^}]*'
               rf'status="{status}"[^}}]*\}} ([0-9.e+]+)')  # fmt: skip
    match = re.search(pattern, metrics)
    return float(match.group(1)) if match else 0.0


def test_canvas_requests_are_counted_under_their_route(client, mnist_test_digits):
    url = data_url(canvas_drawing(mnist_test_digits[0][0]))
    before = client.get("/metrics").text
    answer = client.post("/predict-drawing", json={"image": url})
    assert answer.status_code == 200
    assert answer.headers["x-content-type-options"] == "nosniff"  # hardening still wraps it
    assert answer.json()["digit"] == int(mnist_test_digits[1][0])
    refused = client.post("/predict-drawing", content=b"x", headers={"Content-Type": "text/plain"})
    assert refused.status_code == 415
    after = client.get("/metrics").text
    assert _count(after, "200") == _count(before, "200") + 1
    assert _count(after, "415") == _count(before, "415") + 1


def test_other_methods_still_go_through_fastapi(client):
    answer = client.get("/predict-drawing")
    assert answer.status_code == 405
    assert answer.json()["code"] == "http_405"


def test_a_bug_on_the_fast_path_is_a_json_500_not_a_crash(tmp_path, monkeypatch):
    with make_client(data_dir=tmp_path) as client:

        async def broken(*args, **kwargs):
            raise RuntimeError("a bug")

        monkeypatch.setattr(client.app.state.budget, "predict", broken)
        url = data_url(canvas_drawing(np.eye(28, dtype=np.uint8) * 255))
        answer = client.post("/predict-drawing", json={"image": url})
        assert answer.status_code == 500
        assert answer.json() == {"detail": "internal server error", "code": "internal_error"}


@pytest.mark.parametrize("layout", ["digit", "auto"])
def test_the_query_layout_is_honoured_on_the_fast_path(client, layout):
    url = data_url(canvas_drawing(np.eye(28, dtype=np.uint8) * 255))
    answer = client.post(f"/predict-drawing?layout={layout}", json={"image": url})
    assert answer.status_code == 200
    bad = client.post("/predict-drawing?layout=sideways", json={"image": url})
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"


def test_peek_reads_a_pngs_header_from_its_first_characters_and_other_images_further():
    """The event loop sizes a canvas PNG from its first 44 base64 characters (signature and
    IHDR: what check_image reads); a JPEG gets the first ~3 KB (past EXIF to its frame)."""
    import io

    from PIL import Image

    from api.predict.router import PEEK_CHARS, peek_data_url
    from recognition import check_image

    def body(data: bytes, mime: str) -> bytes:
        return b'{"image": "data:' + mime.encode() + b";base64," + base64.b64encode(data) + b'"}'

    png, jpeg = io.BytesIO(), io.BytesIO()
    Image.new("RGBA", (280, 200)).save(png, "PNG")
    Image.new("L", (640, 480), 255).save(jpeg, "JPEG", exif=b"Exif\x00\x00" + bytes(2000))
    head = peek_data_url(body(png.getvalue(), "image/png"))
    assert head == png.getvalue()[:33] and check_image(head) == (280, 200)
    head = peek_data_url(body(jpeg.getvalue(), "image/jpeg"))
    assert len(head) == PEEK_CHARS // 4 * 3 and check_image(head) == (640, 480)
    assert peek_data_url(b'{"image": "data:image/png;base64,!!!!iVBOR"}') is None
    assert peek_data_url(b'{"image": "data:image/png;base64,iVBORw0KGgo="}') == png.getvalue()[:8]

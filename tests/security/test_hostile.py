"""The hostile-input review of issue 9, replayed: every input answers 4xx (never 5xx) and costs
little. Each case names what was observed before the fix."""

import csv
import io
import json
import time
import uuid
import zipfile

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.main import create_app
from tests.jobs.support import scans, zip_of
from tests.recognition.images import encode
from tests.security.conftest import security_settings


def lossless_webp(width: int, height: int) -> bytes:
    """A blank lossless WebP: a few hundred bytes that decode to width x height pixels."""
    return encode(Image.new("L", (width, height), 255), "WEBP", lossless=True)


def png16(width: int, height: int) -> bytes:
    return encode(Image.new("I;16", (width, height), 40000), "PNG")


def drawing(data: bytes) -> dict:
    import base64

    return {"image": "data:image/webp;base64," + base64.b64encode(data).decode()}


def assert_4xx(response, status: int | None = None) -> dict:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if status is not None:
        assert response.status_code == status, response.text[:300]
    body = response.json()
    assert body["detail"] and body["code"]
    return body


# --- decode bombs ----------------------------------------------------------------------------


def test_the_40_megapixel_webp_bomb_is_refused_from_its_header(client):
    bomb = lossless_webp(8000, 5000)
    assert len(bomb) < 5000
    started = time.perf_counter()
    assert_4xx(client.post("/predict", files={"file": ("b.webp", bomb)}), 413)
    assert_4xx(client.post("/predict-drawing", json=drawing(bomb)), 413)
    # refused from the header: decoding 40 MP would take seconds and ~200 MB
    assert time.perf_counter() - started < 3.0


def test_the_16_bit_png_bomb_is_refused(client):
    bomb = png16(3000, 2000)  # 6 MP: within the 8-bit budget, over the 16-bit quarter
    assert_4xx(client.post("/predict", files={"file": ("b.png", bomb)}), 413)


def test_a_near_limit_image_is_decoded_outside_the_canvas_batch(client):
    budget = client.app.state.budget
    before = budget.heavy_decodes
    near = lossless_webp(2800, 2800)  # 7.8 MP, just under the budget
    assert_4xx(client.post("/predict", files={"file": ("near.webp", near)}), 422)  # blank
    assert budget.heavy_decodes == before + 1
    small = encode(Image.new("L", (200, 200), 255), "PNG")
    assert_4xx(client.post("/predict", files={"file": ("s.png", small)}), 422)
    assert budget.heavy_decodes == before + 1  # a small image stays in the batch


def test_each_client_gets_a_limited_number_of_heavy_decodes(tmp_path):
    settings = security_settings(tmp_path, rate_limit_heavy_per_address="2/minute")
    near = lossless_webp(2000, 2000)
    small = encode(Image.new("L", (100, 100), 255), "PNG")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        codes = [client.post("/predict", files={"file": ("n.webp", near)}).status_code
                 for _ in range(3)]  # fmt: skip
        assert codes == [422, 422, 429]  # blank pages, then refused before decoding
        assert client.post("/predict", files={"file": ("s.png", small)}).status_code == 422


def test_a_large_jpeg_scan_is_read_at_reduced_scale_not_refused(tmp_path):
    page = np.full((4000, 6000), 245, np.uint8)  # 24 MP, 3x the budget
    page[1000:3000, 2800:3200] = 10  # a '1'
    scan = encode(Image.fromarray(page), "JPEG")
    settings = security_settings(tmp_path, max_image_bytes=len(scan) + 1000)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.post("/predict", files={"file": ("scan.jpg", scan)})
    assert response.status_code == 200, response.text
    assert response.json()["digit"] == 1


# --- bodies that used to be 500s --------------------------------------------------------------


def test_deeply_nested_json_is_422(client):
    body = "[" * 100_000 + "]" * 100_000
    headers = {"content-type": "application/json"}
    assert_4xx(client.post("/predict-drawing", content=body, headers=headers), 422)


def test_a_300_character_multipart_boundary_is_400(client):
    boundary = "b" * 300
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.png\""
            f"\r\n\r\nabc\r\n--{boundary}--\r\n")  # fmt: skip
    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    assert_4xx(client.post("/jobs", content=body, headers=headers), 400)
    assert_4xx(client.post("/predict", content=body, headers=headers))


def test_a_zip_whose_central_directory_lies_past_its_end(client):
    archive = bytearray(zip_of({"a.png": scans(1)[0][1]}))
    end = archive.rfind(b"PK\x05\x06")
    archive[end + 16 : end + 20] = (10**9).to_bytes(4, "little")  # directory offset
    response = client.post("/jobs", files=[("files", ("z.zip", bytes(archive)))])
    assert response.status_code < 500
    if response.status_code == 202:
        assert response.json()["rejected"][0]["code"] in {"invalid_zip", "corrupt_zip_member"}


def test_a_superscript_cursor_is_422(client):
    job = client.post("/jobs", files=[("files", (n, d)) for n, d, _ in scans(1)]).json()
    assert_4xx(client.get(f"/jobs/{job['id']}/results?cursor=\u00b9"), 422)


# --- amplification and counts -----------------------------------------------------------------


def test_rejected_names_are_capped_and_summarised(client):
    members = {f"{'x' * 900}/{i:04d}.png": b"not an image" for i in range(45)}
    long_outer = '=HYPERLINK("http://evil")' + "y" * 2000 + ".zip"
    files = [("files", (long_outer, zip_of(members)))] + [
        ("files", (f"bad{i}.png", b"junk")) for i in range(4)
    ]
    settings_files = 50
    assert len(members) + 4 < settings_files
    job = client.post("/jobs", files=files).json()
    assert len(json.dumps(job["rejected"])) < 40_000
    assert all(len(r["filename"]) <= 255 and len(r["reason"]) <= 300 for r in job["rejected"])


def test_rejections_past_the_cap_are_one_line_per_reason(tmp_path):
    settings = security_settings(tmp_path, max_job_files=1000)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        files = [("files", (f"bad{i}.png", b"junk")) for i in range(300)]
        response = client.post("/jobs", files=files)  # nothing readable: 422 and no job
    assert response.status_code == 422
    rejected = response.json()["rejected"]
    assert len(rejected) == 101  # 100 by name, then one summary line
    assert rejected[-1]["filename"] == "(200 more files)"
    assert rejected[-1]["code"] == rejected[0]["code"]


def test_a_zip_with_too_many_entries_is_refused_before_its_directory_is_read(client):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for i in range(200):
            archive.writestr(f"d{i}/", b"")  # directories count too
    response = client.post("/jobs", files=[("files", ("dirs.zip", out.getvalue()))])
    assert_4xx(response, 422)  # nothing readable: no job
    assert response.json()["rejected"][0]["code"] == "zip_too_large"


def test_thousands_of_form_fields_are_refused(client):
    fields = [(f"f{i}", (None, "x")) for i in range(2000)]
    assert_4xx(client.post("/jobs", files=fields), 413)
    assert_4xx(client.post("/predict", files=fields))


def test_oversized_headers_are_431(client):
    assert_4xx(client.get("/jobs", headers={"x-padding": "a" * 40_000}), 431)
    many = {f"x-h{i}": "1" for i in range(150)}
    assert_4xx(client.get("/health", headers=many), 431)


def test_unknown_hosts_are_refused(client):
    body = assert_4xx(client.get("/jobs", headers={"host": "attacker.example"}), 400)
    assert body["code"] == "invalid_host"
    assert client.get("/health", headers={"host": "localhost:8000"}).status_code == 200


# --- CSV export ------------------------------------------------------------------------------

FORMULA_NAMES = ["=HYPERLINK(\"http://x\",\"y\").png", "=cmd|' /C calc'!A0.png", "@SUM(1+1).png",
                 "+1+1.png", "-2+3.png", "\tstart.png", "\rstart.png"]  # fmt: skip


def test_no_csv_cell_starts_a_formula(client, settings):
    from tests.jobs.test_api import run_batches

    images = scans(len(FORMULA_NAMES))
    files = [
        ("files", (name, data)) for name, (_, data, _) in zip(FORMULA_NAMES, images, strict=True)
    ]
    job = client.post("/jobs", files=files + [("files", ("=bad.png", b"junk"))]).json()
    run_batches(settings, job["id"])
    text = client.get(f"/jobs/{job['id']}/results?format=csv").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(FORMULA_NAMES)
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), row
        assert row["needs_review"] in {"true", "false"}
        assert len(row["confidence"].split(".")[1]) <= 4
    # (the test client percent-encodes tab, CR and quotes in multipart file names)
    escaped = [row["filename"] for row in rows if row["filename"].startswith("'")]
    assert len(escaped) >= 5 and "'@SUM(1+1).png" in escaped and "'-2+3.png" in escaped


# --- what health endpoints say ----------------------------------------------------------------


@pytest.mark.parametrize("what", ["database", "model"])
def test_ready_and_model_info_never_reveal_hosts_or_paths(tmp_path, what):
    broken = {
        "database": {"database_url": "postgresql+psycopg://app:s3cret@db.internal.example:6543/x"},
        "model": {"model_dir": tmp_path / "secret-models-dir"},
    }[what]
    settings = security_settings(tmp_path, **broken) if what == "model" else None
    if settings is None:
        from tests.jobs.support import api_settings

        settings = api_settings(data_dir=tmp_path, **broken)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        for path in ("/ready", "/model-info"):
            text = client.get(path).text
            for secret in ("db.internal", "6543", "s3cret", "secret-models-dir", str(tmp_path),
                           "Traceback", "psycopg"):  # fmt: skip
                assert secret not in text, (path, secret, text)


def test_model_info_names_no_paths(client):
    card = client.get("/model-info").json()

    def strings(value):
        if isinstance(value, dict):
            for item in value.values():
                yield from strings(item)
        elif isinstance(value, list):
            for item in value:
                yield from strings(item)
        elif isinstance(value, str):
            yield value

    found = [text for text in strings(card) if text.startswith("/") or "://" in text]
    assert card["version"] and found == []


def test_every_page_carries_the_security_headers(client):
    for path in (
        "/",
        "/bulk",
        "/docs",
        "/redoc",
        "/jobs",
        "/health",
        "/nope",
        f"/jobs/{uuid.uuid4()}",
    ):
        headers = client.get(path).headers
        assert "script-src 'self'" in headers["content-security-policy"], path
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert (
            "unsafe-inline"
            not in headers["content-security-policy"].split("script-src")[1].split(";")[0]
        )
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"

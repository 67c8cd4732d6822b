"""Liveness, readiness, model card, docs and the page — and the truth when the model is missing."""

from __future__ import annotations

from tests.api.conftest import assert_error, make_client


def test_health_is_ok(client):
    assert client.get("/health").json() == {"status": "ok"}


def test_ready_reports_the_model_check(client):
    checks = client.get("/ready").json()["checks"]
    assert checks["model"] == "ok"


def test_model_info_comes_from_the_card(client, model_dir):
    from recognition import ModelCard

    card = ModelCard.load(model_dir)
    info = client.get("/model-info").json()
    assert info["version"] == card.version
    assert info["review"]["threshold"] == card.review.threshold
    assert info["calibration"]["temperature"] == card.calibration.temperature
    assert info["metrics"] == card.metrics
    # where the training data lived is cut to its last name: /model-info names no paths
    source = dict(card.data["source"])
    source["path"] = source["path"].rstrip("/").rsplit("/", 1)[-1]
    assert info["data"] == {**card.data, "source": source}


def test_model_that_fails_to_load_is_not_ready_but_alive(tmp_path):
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "model_card.json").write_text("{not json")
    with make_client(model_dir=broken, data_dir=tmp_path / "var") as client:
        assert client.get("/health").status_code == 200
        response = client.get("/ready")
        body = assert_error(response, 503, "not_ready")
        assert "model" in body["detail"]
        assert str(tmp_path) not in body["detail"]  # what is wrong, never where (no paths)
        assert body["checks"]["model"] != "ok"
        assert_error(client.get("/model-info"), 503, "model_unavailable")
        answer = client.post("/predict-drawing", json={"image": "data:image/png;base64,AAAA"})
        assert_error(answer, 503, "model_unavailable")


def test_docs_redoc_and_schema(client):
    assert client.get("/docs").status_code == 200
    assert client.get("/redoc").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/predict", "/predict-drawing", "/health", "/ready", "/model-info"):
        assert path in paths
    drawing = paths["/predict-drawing"]["post"]["requestBody"]["content"]
    assert "image" in drawing["application/json"]["schema"]["properties"]


def test_the_canvas_page_and_its_assets(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for hook in (
        'data-testid="canvas"',
        'data-testid="prediction"',
        'data-testid="clear"',
        'aria-live="polite"',
    ):
        assert hook in page.text
    assert client.get("/static/canvas.js").status_code == 200
    assert "touch-action: none" in client.get("/static/style.css").text

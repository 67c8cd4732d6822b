"""One public shape for a prediction: the same scans read by `/predict` and by a bulk job (its
JSON results and its CSV) answer the same reading, under the same keys."""

import csv
import io

import pytest
from fastapi.testclient import TestClient

from api.jobs.schemas import CSV_COLUMNS, Result
from api.main import create_app
from api.predict.schemas import PredictionBase, PredictionPublic
from digitflow.db.migrations import upgrade
from tests.jobs.support import api_settings, scans
from tests.jobs.test_api import files_field, run_batches

SHARED = set(PredictionBase.model_fields)


@pytest.fixture
def settings(tmp_path):
    settings = api_settings(data_dir=tmp_path)
    upgrade(settings.resolved_database_url)
    return settings


def test_predict_and_job_results_answer_the_same_reading(settings):
    items = scans(12)
    with TestClient(create_app(settings)) as client:
        answers = []
        for name, data, _ in items:
            response = client.post("/predict", files={"file": (name, data, "image/png")})
            assert response.status_code == 200, response.text
            answers.append(response.json())
        job = client.post("/jobs", files=files_field((n, d) for n, d, _ in items)).json()
        run_batches(settings, job["id"])
        results = client.get(f"/jobs/{job['id']}/results").json()["items"]
        table = client.get(f"/jobs/{job['id']}/results", params={"format": "csv"}).text

    rows = list(csv.DictReader(io.StringIO(table)))
    assert list(rows[0]) == CSV_COLUMNS
    for answer, result, row in zip(answers, results, rows, strict=True):
        # Every key of the shared shape, in both; the sync answer adds only its own extras.
        assert SHARED - {"fields"} <= set(answer) <= set(PredictionPublic.model_fields)
        assert SHARED <= set(result) and result["fields"] is None
        for key in ("text", "review_reasons", "model_version"):
            assert answer[key] == result[key], key
        assert answer["confidence"] == pytest.approx(result["confidence"], abs=1e-6)
        assert [d["box"] for d in answer["digits"]] == [d["box"] for d in result["digits"]]
        assert [d["digit"] for d in answer["digits"]] == [d["digit"] for d in result["digits"]]
        # The CSV is the same Result, cell by cell.
        assert row["text"] == result["text"] and row["document_id"] == result["document_id"]
        assert float(row["confidence"]) == pytest.approx(result["confidence"], abs=1e-4)
        assert row["needs_review"] == str(result["needs_review"]).lower()


def test_csv_columns_are_fields_of_the_result():
    assert set(CSV_COLUMNS) <= set(Result.model_fields)
    assert SHARED <= set(Result.model_fields)
    # Nothing of the prediction is required on a result: a queued or failed document has none.
    assert not any(Result.model_fields[key].is_required() for key in SHARED)


def test_a_reading_keeps_only_the_public_keys():
    from api.predict.schemas import prediction_json

    digit = {"digit": 7, "confidence": 0.9, "probabilities": [0.01] * 9 + [0.91],
             "box": {"x": 1, "y": 2, "width": 3, "height": 4}, "internal": "dropped"}  # fmt: skip
    reading = {"text": "7", "digit": 7, "confidence": 0.9, "probabilities": digit["probabilities"],
               "needs_review": False, "review_reasons": [], "digits": [digit], "separators": [],
               "secret_debug": 1}  # fmt: skip
    body = PredictionPublic.model_validate_json(prediction_json(reading, "v1"))
    dumped = body.model_dump(exclude_unset=True)
    assert "secret_debug" not in dumped and "internal" not in dumped["digits"][0]
    assert dumped["model_version"] == "v1" and "fields" not in dumped and "layout" not in dumped


def test_boxes_stored_as_lists_are_answered_as_objects():
    # The first field reader stored [x, y, width, height]; results answer one shape for both.
    digit = {"digit": 4, "confidence": 0.9, "probabilities": [0.1] * 10, "box": [4, 6, 40, 44]}
    result = Result.model_validate({"document_id": "00000000-0000-0000-0000-000000000001",
                                    "position": 0, "filename": "a.png", "status": "succeeded",
                                    "error_code": None, "error": None, "timings": None,
                                    "digits": [digit]})  # fmt: skip
    assert result.model_dump()["digits"][0]["box"] == {"x": 4, "y": 6, "width": 40, "height": 44}

"""Reviewed documents loop back into training: the export round-trips through the training data
preparation, and fine-tuning the current model on it runs and records what went in."""

import io
import json
from collections import defaultdict

import numpy as np
import pytest
from PIL import Image

from digitflow.db import make_sessionmaker
from digitflow.storage import LocalStorage
from recognition import Recognizer, prepare, segment_image
from recognition.review import ReviewPolicy
from tests.jobs.support import MODEL_DIR, scans
from tests.review.conftest import as_, process
from training import data as mnist
from training.reviewed import DIGITS_CSV, FIELDS_CSV, export_reviewed

EVERYTHING = ReviewPolicy(threshold=1.0)


def field_png(images: list[bytes]) -> bytes:
    """Digit scans side by side with a paper gap between them: a field."""
    digits = [Image.open(io.BytesIO(data)).convert("L") for data in images]
    width = sum(d.width for d in digits) + 12 * (len(digits) + 1)
    field = Image.new("L", (width, digits[0].height + 16), 235)
    x = 12
    for digit in digits:
        field.paste(digit, (x, 8))
        x += digit.width + 12
    out = io.BytesIO()
    field.save(out, "PNG")
    return out.getvalue()


def review_everything(client, labels: dict[str, str]) -> dict[str, str]:
    """Claim all and decide: the true label (accept when the model read it), one unreadable."""
    items = client.post("/review/claim", json={"limit": 100}, headers=as_("r1")).json()["items"]
    finals = {}
    for n, item in enumerate(items):
        truth = labels[item["filename"]]
        if n == 0:
            body = {"action": "unreadable"}
        elif truth == item["model_text"]:
            body = {"action": "accept"}
        else:
            body = {"action": "correct", "text": truth}
        response = client.post(f"/review/{item['document_id']}", json=body, headers=as_("r1"))
        assert response.status_code == 200, response.text
        if n:
            finals[item["document_id"]] = truth
    return finals


@pytest.fixture
def exported(client, settings, recognizer, tmp_path):
    digit_scans = scans(24, start=500)
    files = [("files", (n, d, "image/png")) for n, d, _ in digit_scans]
    job = client.post("/jobs", files=files, headers=as_("submitter")).json()["id"]
    process(settings, recognizer, job, EVERYTHING)
    pairs = [scans(2, start=600 + 2 * i) for i in range(3)]
    field_files = [
        (f"field_{i}.png", field_png([d for _, d, _ in pair])) for i, pair in enumerate(pairs)
    ]
    field_job = client.post(
        "/jobs", files=[("files", (n, d, "image/png")) for n, d in field_files],
        data={"layout": "field"}, headers=as_("submitter"),
    ).json()["id"]  # fmt: skip
    process(settings, recognizer, field_job, EVERYTHING)
    labels = {n: str(label) for n, _, label in digit_scans}
    labels |= {
        f"field_{i}.png": "".join(str(label) for _, _, label in pair)
        for i, pair in enumerate(pairs)
    }
    finals = review_everything(client, labels)
    out = tmp_path / "reviewed"
    sessions = make_sessionmaker(settings.resolved_database_url)
    manifest = export_reviewed(sessions, LocalStorage(settings.resolved_storage_dir), out, "acme")
    return out, manifest, finals, {n: d for n, d, _ in digit_scans}, field_files


def test_export_round_trips_into_training_data_preparation(exported, tmp_path):
    out, manifest, finals, digit_bytes, field_files = exported
    assert manifest["documents"] == len(finals) == 26  # 24 digits + 3 fields - 1 unreadable
    assert {item["document_id"]: item["text"] for item in manifest["items"]} == finals
    assert manifest["fields"] == sum(item["kind"] == "field" for item in manifest["items"])
    assert manifest["fields"] >= 2
    # The seed's CSV form: label, split and 784 pixels; training.data reads it as it is.
    header = (out / DIGITS_CSV).read_text().splitlines()[0].split(",")
    assert header[:2] == ["label", "split"] and len(header) == 786
    data = mnist.load_csv(out / DIGITS_CSV)
    assert len(data.x_test) == 0 and data.x_train.shape[1:] == (28, 28)
    expected_digits = "".join(item["text"] for item in manifest["items"] if item["digits_exported"])
    assert "".join(str(d) for d in data.y_train) == expected_digits
    assert len(data.y_train) == manifest["digits"] >= 23 + 2 * 2
    fields_csv = (out / FIELDS_CSV).read_text()
    assert all(
        text in fields_csv
        for text in (i["text"] for i in manifest["items"] if i["kind"] == "field")
    )
    exported_scans = {p.read_bytes() for p in (out / "fields").iterdir()}
    assert exported_scans <= {data for _, data in field_files}
    # A digit's pixels are the serving normalisation of its scan, as 0-255.
    normalised = [
        np.clip(np.rint(prepare(d) * 255), 0, 255).astype(np.uint8) for d in digit_bytes.values()
    ]
    digit_rows = [
        row for row, item in zip(data.x_train, _rows_by_item(manifest), strict=True)
        if item["kind"] == "digit"
    ]  # fmt: skip
    assert len(digit_rows) == 23
    assert all(any(np.array_equal(row, n) for n in normalised) for row in digit_rows)

    # The preparation step adds them to the training part only.
    prepared = tmp_path / "prepared"
    assert mnist.main(["--subset", "300", "--reviewed", str(out), "--out", str(prepared)]) == 0
    split = mnist.load_split(prepared)
    base = mnist.split(mnist.load_mnist(), subset=300)
    assert len(split.y_train) == len(base.y_train) + manifest["digits"]
    assert (len(split.y_val), len(split.y_test)) == (len(base.y_val), len(base.y_test))
    assert (
        json.loads((prepared / "source.json").read_text())["reviewed"]["digits"]
        == manifest["digits"]
    )


def _rows_by_item(manifest) -> list[dict]:
    """The manifest item each CSV row came from (a field gives one row per digit)."""
    return [item for item in manifest["items"] if item["digits_exported"] for _ in item["text"]]


def _served_boxes(client, job_id: str, document_id: str) -> list[tuple[int, ...]]:
    """The digit boxes of the reading the worker served and stored for one document."""
    response = client.get(f"/jobs/{job_id}/results", headers=as_("submitter"))
    assert response.status_code == 200, response.text
    (result,) = [r for r in response.json()["items"] if r["document_id"] == document_id]
    return [tuple(d["box"][k] for k in ("x", "y", "width", "height")) for d in result["digits"]]


def test_fields_are_cut_into_the_digits_the_platform_served(exported, client):
    """Train/serve skew guard: each exported digit of a field is, pixel for pixel, the crop the
    worker fed the model for that digit (found by the box the worker stored), so a fine-tune
    learns from what serving reads. Another segmenter (the old `segment_digits`) cuts
    differently and fails here."""
    out, manifest, _, _, _ = exported
    rows = mnist.load_csv(out / DIGITS_CSV).x_train
    rows_of = defaultdict(list)
    for row, item in zip(rows, _rows_by_item(manifest), strict=True):
        rows_of[item["document_id"]].append(row)
    compared = 0
    for item in (i for i in manifest["items"] if i["kind"] == "field"):
        assert item["digits_exported"], item
        served = _served_boxes(client, item["job_id"], item["document_id"])
        if len(served) != len(item["text"]):
            continue  # the reviewer changed the digit count: no served crop per digit
        (scan,) = (out / "fields").glob(f"{item['document_id']}.*")
        segmentation = segment_image(scan.read_bytes(), item["layout"])
        crop_at = {
            (b.x, b.y, b.width, b.height): index
            for slot in segmentation.slots for h in slot
            for index, b in zip(h.crops, h.boxes, strict=True)
        }  # fmt: skip
        expected = segmentation.crops[[crop_at[box] for box in served]]
        expected = np.clip(np.rint(expected * 255), 0, 255).astype(np.uint8)
        assert np.array_equal(np.stack(rows_of[item["document_id"]]), expected)
        compared += 1
    assert compared >= 2


@pytest.mark.slow
def test_finetuning_on_the_export_runs_and_records_what_went_in(exported, tmp_path):
    from training.finetune import finetune

    out, manifest, *_ = exported
    split = mnist.split(mnist.load_mnist(), subset=400)
    model_out = tmp_path / "model"
    card = finetune(MODEL_DIR, split, out, model_out, epochs=1)
    assert card.data["reviewed"]["documents"] == manifest["documents"]
    assert card.data["reviewed"]["digits"] == manifest["digits"]
    assert set(card.data["reviewed"]["document_ids"]) == {
        i["document_id"] for i in manifest["items"]
    }
    assert card.data["previous_model"]["version"] == Recognizer(MODEL_DIR).version
    new, old = card.metrics["default"]["test"], card.metrics["previous"]["test"]
    assert new["count"] == old["count"] == len(split.y_test)
    assert new["accuracy"] > 0.9 and old["accuracy"] > 0.9
    assert "previous" in (model_out / "finetune.md").read_text()
    recognizer = Recognizer(model_out)  # the new directory serves
    assert recognizer.version == card.version != Recognizer(MODEL_DIR).version

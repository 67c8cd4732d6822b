"""The export's parts, each on its own: report template, calibration error from the bins,
the LiteRT/Keras parity check through the serving core, the one sha256 helper."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from recognition.card import CARD_FILENAME, KERAS_FILENAME, TFLITE_FILENAME, ModelCard
from training import data as mnist
from training import export
from training.evaluate import calibration_error, expected_calibration_error, reliability_bins
from training.report import TEMPLATE, TEMPLATES, render_report

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "default"
PLOTS = {"Reliability diagram": "reliability.png", "Risk-coverage curve": "risk_coverage.png"}


def test_calibration_error_is_the_bins_weighted_gap():
    # Two bins used: 0.95 (3 digits, 2 right) and 0.55 (1 digit, right).
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.05, 0.95], [0.55, 0.45]])
    labels = np.array([0, 0, 0, 0])
    bins = reliability_bins(probs, labels, bins=10)
    assert bins["counts"].sum() == 4 and bins["counts"][9] == 3 and bins["counts"][5] == 1
    by_hand = 3 / 4 * abs(2 / 3 - 0.95) + 1 / 4 * abs(1.0 - 0.55)
    assert calibration_error(bins) == pytest.approx(by_hand)
    assert expected_calibration_error(probs, labels, bins=10) == pytest.approx(by_hand)


def test_report_comes_from_its_own_template_and_shows_the_cards_figures():
    assert (TEMPLATES / TEMPLATE).is_file()
    card = ModelCard.load(SHIPPED)
    text = render_report(card, PLOTS)
    test = card.metrics["default"]["test"]
    assert text.startswith(f"# DigitFlow model {card.version}\n")
    assert f"| test accuracy | {100 * test['accuracy']:.2f}% |" in text
    # Every confusion-matrix row, in order, with its counts.
    for digit, row in enumerate(test["confusion_matrix"]):
        assert f"| **{digit}** | " + " | ".join(map(str, row)) + " |" in text
    assert "![Risk-coverage curve](risk_coverage.png)" in text
    assert f"`{TFLITE_FILENAME}` sha256 `{card.sha256[TFLITE_FILENAME]}`" in text
    # The field threshold section appears only when the card has one.
    assert ("## Field review threshold" in text) == ("field_review" in card.model_dump())


def test_the_shipped_report_is_what_the_template_renders_from_the_card():
    card = ModelCard.load(SHIPPED)
    assert (SHIPPED / "report.md").read_text() == render_report(card, PLOTS)


def test_one_sha256_helper_and_verify_card_files_catches_a_changed_file(tmp_path):
    shutil.copytree(SHIPPED, tmp_path / "model")
    model_dir = tmp_path / "model"
    tflite = model_dir / TFLITE_FILENAME
    assert mnist.sha256_file(tflite) == hashlib.sha256(tflite.read_bytes()).hexdigest()
    export.verify_card_files(model_dir)
    tflite.write_bytes(tflite.read_bytes() + b"\0")
    with pytest.raises(ValueError, match="sha256 does not match"):
        export.verify_card_files(model_dir)


def _tiny_split(real_mnist) -> mnist.Split:
    return mnist.split(real_mnist, subset=200)


def _metrics() -> dict:
    return {
        "default": {
            "calibration": {"temperature": 1.0, "fitted_on": "validation"},
            "review": {"threshold": 0.9, "target_error": 0.001, "chosen_on": "validation"},
        }
    }


def test_export_checks_litert_against_keras_through_the_recognizer(tmp_path, real_mnist):
    from training.model import build_model

    model = build_model("default")
    split = _tiny_split(real_mnist)
    images = mnist.model_inputs(split.x_test[: export.PARITY_IMAGES])[..., 0]
    card = export.export({"default": (model, {})}, split, tmp_path, _metrics(), images)
    assert 0 <= card.model_dump()["tflite_max_abs_difference"] <= export.TFLITE_TOLERANCE
    saved = json.loads((tmp_path / CARD_FILENAME).read_text())
    assert saved["tflite_max_abs_difference"] == card.model_dump()["tflite_max_abs_difference"]
    assert export.verify_card_files(tmp_path).version == card.version
    assert export.litert_parity(tmp_path, images) == pytest.approx(
        saved["tflite_max_abs_difference"]
    )


def test_export_refuses_a_litert_file_that_disagrees(tmp_path, real_mnist, monkeypatch):
    import keras

    from training.model import build_model

    keras.utils.set_random_seed(1)
    confident = build_model("default")  # other random weights, and sure of its answers
    weights = confident.get_weights()
    weights[-2] = weights[-2] * 100.0
    confident.set_weights(weights)
    other = export.to_tflite(confident)
    monkeypatch.setattr(export, "to_tflite", lambda model: other)
    split = _tiny_split(real_mnist)
    images = mnist.model_inputs(split.x_test[: export.PARITY_IMAGES])[..., 0]
    keras.utils.set_random_seed(2)
    with pytest.raises(RuntimeError, match="LiteRT and Keras disagree"):
        export.export(
            {"default": (build_model("default"), {})}, split, tmp_path, _metrics(), images
        )
    assert not (tmp_path / TFLITE_FILENAME).exists() and (tmp_path / KERAS_FILENAME).exists()

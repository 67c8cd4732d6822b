"""Calibration and review-policy maths on synthetic inputs whose answers are known."""

import numpy as np
import pytest

from recognition.inference import calibrate
from training.evaluate import (
    choose_threshold,
    classification_metrics,
    evaluate,
    expected_calibration_error,
    fit_temperature,
    review_outcome,
    risk_coverage,
)


def toy(n: int, rng, sharpness: float = 1.0):
    """Probabilities over 10 classes drawn from logits, labels drawn from those probabilities.

    With sharpness 1 the model is calibrated by construction; above 1 its reported
    probabilities are sharper (overconfident) than the labels' true distribution.
    """
    logits = rng.normal(0.0, 3.0, size=(n, 10))
    true = np.exp(logits - logits.max(1, keepdims=True))
    true /= true.sum(1, keepdims=True)
    labels = (rng.random((n, 1)) < true.cumsum(1)).argmax(1)  # one draw per row
    reported = calibrate(true, 1.0 / sharpness)
    return reported, labels


def test_ece_of_a_calibrated_model_is_near_zero():
    probs, labels = toy(20_000, np.random.default_rng(0))
    assert expected_calibration_error(probs, labels) < 0.015


def test_ece_of_an_overconfident_model_is_large():
    probs, labels = toy(20_000, np.random.default_rng(1), sharpness=3.0)
    assert expected_calibration_error(probs, labels) > 0.1


def test_ece_by_hand():
    # Two bins used: 0.95 confidence all right (gap 0.05), 0.55 confidence half right (gap 0.05).
    probs = np.zeros((4, 10))
    probs[:2, 0], probs[:2, 1] = 0.95, 0.05
    probs[2:, 0], probs[2:, 1] = 0.55, 0.45
    labels = np.array([0, 0, 0, 1])
    assert expected_calibration_error(probs, labels) == pytest.approx(0.05)


def test_temperature_undoes_overconfidence():
    probs, labels = toy(20_000, np.random.default_rng(2), sharpness=2.0)
    temperature = fit_temperature(probs, labels)
    assert temperature == pytest.approx(2.0, rel=0.1)
    assert expected_calibration_error(calibrate(probs, temperature), labels) < 0.015


def test_temperature_of_a_calibrated_model_is_about_one():
    probs, labels = toy(20_000, np.random.default_rng(3))
    assert fit_temperature(probs, labels) == pytest.approx(1.0, rel=0.1)


def test_temperature_below_one_for_underconfident_models():
    probs, labels = toy(20_000, np.random.default_rng(4), sharpness=0.5)
    assert fit_temperature(probs, labels) < 0.7


def test_risk_coverage_by_hand():
    confidence = np.array([0.99, 0.9, 0.9, 0.8, 0.5])
    correct = np.array([True, True, False, True, False])
    thresholds, coverage, risk = risk_coverage(confidence, correct)
    # Tied confidences are accepted or rejected together.
    np.testing.assert_allclose(thresholds, [0.99, 0.9, 0.8, 0.5])
    np.testing.assert_allclose(coverage, [0.2, 0.6, 0.8, 1.0])
    np.testing.assert_allclose(risk, [0.0, 1 / 3, 1 / 4, 2 / 5])


def test_threshold_is_the_widest_acceptance_within_the_target():
    confidence = np.array([0.99, 0.98, 0.97, 0.96, 0.9, 0.8])
    correct = np.array([True, True, True, True, False, True])
    assert choose_threshold(confidence, correct, target_error=0.0) == 0.96
    assert choose_threshold(confidence, correct, target_error=0.2) == 0.8
    outcome = review_outcome(confidence, correct, 0.96)
    assert outcome["review_rate"] == pytest.approx(2 / 6)
    assert outcome["auto_accept_error"] == 0.0 and outcome["auto_accepted"] == 4
    # If even the most confident digit is wrong, everything goes to review.
    assert choose_threshold(np.array([0.9, 0.8]), np.array([False, True]), 0.0) == 1.0


def test_classification_metrics_by_hand():
    probs = np.eye(10)[[0, 1, 1, 2]]
    labels = np.array([0, 1, 2, 2])
    m = classification_metrics(probs, labels)
    assert m["accuracy"] == 0.75 and m["errors"] == 1
    assert m["confusion_matrix"][2][1] == 1 and m["confusion_matrix"][2][2] == 1
    assert m["per_class_accuracy"]["2"] == 0.5 and m["per_class_accuracy"]["0"] == 1.0


def test_evaluate_fits_on_validation_and_reports_on_test():
    rng = np.random.default_rng(5)
    val_probs, y_val = toy(5_000, rng, sharpness=2.0)
    test_probs, y_test = toy(5_000, rng, sharpness=2.0)
    m = evaluate(val_probs, y_val, test_probs, y_test, target_error=0.05)
    assert m["calibration"]["temperature"] > 1.5
    assert m["test"]["ece_calibrated"] < m["test"]["ece_uncalibrated"]
    assert m["validation"]["auto_accept_error"] <= 0.05
    assert 0 < m["test"]["review_rate"] < 1
    assert m["test"]["risk_at_coverage"]["1"] == pytest.approx(1 - m["test"]["accuracy"])

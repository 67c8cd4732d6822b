import numpy as np
import pytest

from recognition import Recognizer, calibrate, normalize_mnist, prepare
from recognition.inference import NOT_A_DIGIT_FROM, digit_view
from recognition.synthetic import render_scan
from tests.recognition.conftest import DEFAULT_MODEL_DIR


def test_calibration_is_identity_at_temperature_one_and_softens_above():
    p = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1]])
    assert np.allclose(calibrate(p, 1.0), p)
    softened = calibrate(p, 2.0)
    assert np.allclose(softened.sum(axis=1), 1.0)
    assert (softened.max(axis=1) < p.max(axis=1)).all()
    assert (softened.argmax(axis=1) == p.argmax(axis=1)).all()


def test_batch_answers_match_one_by_one_answers(recognizer, mnist):
    images = normalize_mnist(mnist.x_test[:40])
    batched = recognizer.raw_probabilities(images)
    single = np.concatenate([recognizer.raw_probabilities(image[None]) for image in images])
    assert np.allclose(batched, single, atol=1e-5)


def test_a_digit_reads_the_same_whatever_else_is_in_its_batch(recognizer, mnist):
    # The int8 model quantizes activations as it runs: per image, never over the batch.
    images = normalize_mnist(mnist.x_test[:64])
    alone = recognizer.raw_probabilities(images[:1])
    others = images.copy()
    others[1:] = np.clip(others[1:] * 3.0, 0, 1)  # much brighter neighbours
    assert np.array_equal(recognizer.raw_probabilities(others)[:1], alone)


def test_litert_serving_model_agrees_with_the_keras_contract(recognizer, mnist):
    from training.export import TFLITE_TOLERANCE

    keras = Recognizer(DEFAULT_MODEL_DIR, backend="keras")
    images = normalize_mnist(mnist.x_test[:1000])
    served, contract = recognizer.raw_probabilities(images), keras.raw_probabilities(images)
    assert np.abs(served - contract).max() <= TFLITE_TOLERANCE
    assert (served.argmax(axis=1) != contract.argmax(axis=1)).sum() <= 1


def test_predictions_carry_calibrated_confidence_and_review_flag(recognizer, mnist):
    predictions = recognizer.predict(normalize_mnist(mnist.x_test[:500]))
    for p in predictions:
        assert len(p.probabilities) == 10 and sum(p.probabilities) == pytest.approx(1.0)
        assert p.digit == int(np.argmax(p.probabilities))
        # Which digit, given that it is one: the digits' renormalised probability. A mark the
        # model finds at least as likely no digit keeps its share among all 11 outputs.
        among_all = max(p.probabilities) * (1 - p.not_a_digit)
        expected = max(p.probabilities) if p.not_a_digit < NOT_A_DIGIT_FROM else among_all
        assert p.confidence == pytest.approx(expected)
        assert p.plausibility == pytest.approx(among_all)
        assert p.needs_review == (p.confidence < recognizer.threshold)
    accuracy = np.mean([p.digit for p in predictions] == mnist.y_test[:500])
    assert accuracy >= 0.99


def test_which_digit_and_whether_a_digit_are_answered_apart():
    # A digit with a trace of "not a digit", a mark the model calls no digit, a 10-class output.
    calibrated = np.array(
        [
            [0.0, 0.0, 0.0, 0.63, 0.0, 0.0, 0.0, 0.0, 0.07, 0.0, 0.30],
            [0.0, 0.0, 0.0, 0.0, 0.38, 0.0, 0.0, 0.0, 0.0, 0.02, 0.60],
        ]
    )
    probabilities, confidence, reject = digit_view(calibrated)
    assert probabilities.sum(axis=1) == pytest.approx([1.0, 1.0])
    assert confidence == pytest.approx([0.9, 0.38])  # 0.63 / 0.7; the mark keeps 0.38 of all
    assert reject == pytest.approx([0.30, 0.60])
    _, ten_classes, none = digit_view(calibrated[:, :10] / calibrated[:, :10].sum(1, keepdims=True))
    assert ten_classes == pytest.approx([0.9, 0.95]) and not none.any()


def test_empty_batch(recognizer):
    assert recognizer.predict(np.zeros((0, 28, 28), np.float32)) == []


def test_scans_keep_their_accuracy_through_the_core(recognizer, mnist):
    """Robustness bar: MNIST test digits re-rendered as scans (dark on light, noisy paper,
    other sizes and positions, PNG or JPEG) are read at >= 99.0%. benchmarks/robustness.py
    measures all 10,000; this checks a fixed-seed sample of 2,000."""
    rng = np.random.default_rng(2026)
    indices = rng.choice(len(mnist.y_test), 2000, replace=False)
    images = np.stack([prepare(render_scan(mnist.x_test[i], rng)) for i in indices])
    digits = [p.digit for p in recognizer.predict(images)]
    assert np.mean(digits == mnist.y_test[indices]) >= 0.99

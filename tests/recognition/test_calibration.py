"""Served confidences are the card's temperature-scaled probabilities, not the raw softmax."""

import numpy as np

from recognition import ModelCard, calibrate, normalize_mnist
from recognition.inference import digit_view
from tests.recognition.conftest import DEFAULT_MODEL_DIR


def test_served_probabilities_are_calibrated_with_the_cards_temperature(recognizer, mnist):
    temperature = ModelCard.load(DEFAULT_MODEL_DIR).calibration.temperature
    assert recognizer.temperature == temperature and abs(temperature - 1) > 0.01
    images = normalize_mnist(mnist.x_test[:300])
    raw = recognizer.raw_probabilities(images)
    served = recognizer.probabilities(images)
    assert np.allclose(served, calibrate(raw, temperature), atol=1e-6)
    assert not np.allclose(served, raw, atol=1e-3)
    confidences = [p.confidence for p in recognizer.predict(images)]
    # A digit's confidence comes from the calibrated outputs (recognition.inference.digit_view).
    assert np.allclose(confidences, digit_view(served)[1], atol=1e-6)

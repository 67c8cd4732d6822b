"""Synthetic cheques (training/cheques.py) from the real MNIST test digits."""

import numpy as np
import pytest

from tests.recognition.conftest import mnist, recognizer  # noqa: F401 (shared fixtures)
from tests.review.conftest import client, settings  # noqa: F401 (review page tests)
from training.cheques import TEMPLATES, random_spec, render_cheque


@pytest.fixture(scope="session")
def cheques(mnist):  # noqa: F811
    """40 cheques: every template, currency, amount style and scan effect, test digits only."""
    rng = np.random.default_rng(2026)
    return [
        render_cheque(
            random_spec(rng, TEMPLATES[i % len(TEMPLATES)]), mnist.x_test, mnist.y_test, rng
        )  # fmt: skip
        for i in range(40)
    ]

"""Synthetic cheques (training/cheques.py) from the real MNIST test digits."""

from pathlib import Path

import numpy as np
import pytest

from recognition import Recognizer
from training.cheques import TEMPLATES, random_spec, render_cheque
from training.data import load_mnist

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "default"


@pytest.fixture(scope="session")
def mnist():
    return load_mnist()


@pytest.fixture(scope="session")
def recognizer() -> Recognizer:
    return Recognizer(DEFAULT_MODEL_DIR)


@pytest.fixture(scope="session")
def cheques(mnist):
    """40 cheques: every template, currency, amount style and scan effect, test digits only."""
    rng = np.random.default_rng(2026)
    return [
        render_cheque(
            random_spec(rng, TEMPLATES[i % len(TEMPLATES)]), mnist.x_test, mnist.y_test, rng
        )  # fmt: skip
        for i in range(40)
    ]

from pathlib import Path

import numpy as np
import pytest

from recognition import Recognizer
from training.data import load_mnist

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "default"


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST files from ../shared/data/mnist (never copied into the repository)."""
    return load_mnist()


@pytest.fixture(scope="session")
def recognizer() -> Recognizer:
    return Recognizer(DEFAULT_MODEL_DIR)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)

"""Fixtures for the training tests: the real MNIST files from ../shared/data/mnist, read once."""

import pytest

from training import data as mnist


@pytest.fixture(scope="session")
def real_mnist() -> mnist.Mnist:
    folder = mnist.default_data_dir()
    if not folder.is_dir():
        pytest.fail(f"MNIST not found at {folder}; set ${mnist.DATA_DIR_ENV}", pytrace=False)
    return mnist.load_mnist(folder)

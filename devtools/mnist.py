"""The official MNIST test digits (from the shared data folder, never copied into the repo)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def mnist_test_set() -> tuple[np.ndarray, np.ndarray]:
    """All 10,000 test images (uint8 [N, 28, 28]) and their labels, read once per process."""
    from training.data import IDX_FILES, default_data_dir, read_idx

    folder = default_data_dir()
    return read_idx(folder / IDX_FILES["test_images"]), read_idx(folder / IDX_FILES["test_labels"])


def mnist_sample(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`count` distinct test digits drawn at random (reproducibly, by `seed`) and their labels."""
    images, labels = mnist_test_set()
    pick = np.random.default_rng(seed).choice(len(labels), count, replace=False)
    return images[pick], labels[pick]

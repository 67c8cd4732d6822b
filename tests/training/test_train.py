"""Training helpers that the tiny pipeline run does not reach."""

import numpy as np

from training.data import model_inputs
from training.train import with_scans


def test_with_scans_renders_the_chosen_share_of_digits_and_leaves_marks_alone(real_mnist):
    digits = model_inputs(real_mnist.x_train[:60])
    marks = np.zeros((20, 28, 28, 1), dtype=np.float32)
    marks[:, 10:18, 4:24] = 1.0  # dashes: label 10, "not a digit"
    x = np.concatenate((digits, marks))
    y = np.concatenate((real_mnist.y_train[:60], np.full(20, 10)))

    scanned = with_scans(x, y, 0.5, seed=3)

    changed = np.flatnonzero((scanned != x).any(axis=(1, 2, 3)))
    assert len(changed) == 30 and (y[changed] < 10).all()
    assert np.array_equal(scanned[60:], marks) and np.array_equal(x[:60], digits)  # a copy
    assert scanned.dtype == np.float32 and 0.0 <= scanned.min() and scanned.max() <= 1.0
    assert np.array_equal(scanned, with_scans(x, y, 0.5, seed=3))  # the seed fixes the run

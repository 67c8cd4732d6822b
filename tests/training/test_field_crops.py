"""The default recipe's field stage learns on digits as the field reader crops them."""

import numpy as np

from recognition import Recognizer
from tests.recognition.conftest import DEFAULT_MODEL_DIR
from training.field_crops import field_crops


def test_field_crops_are_served_crops_labelled_in_order(real_mnist):
    images, labels = real_mnist.x_train[:3000], real_mnist.y_train[:3000]
    x, y = field_crops(images, labels, 60, seed=5)
    again = field_crops(images, labels, 60, seed=5)
    np.testing.assert_array_equal(x, again[0])  # a seed gives the same crops
    # Most of 60 fields of ~4 digits segment beyond doubt; the others are left out whole.
    assert 120 <= len(y) <= 60 * 12 and x.shape == (len(y), 28, 28, 1)
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    # In MNIST form like the served crops, and each labelled with its own digit: the shipped
    # model reads them as their labels (a crop shifted against its label would not).
    predictions = Recognizer(DEFAULT_MODEL_DIR).predict(x[..., 0])
    assert np.mean([p.digit for p in predictions] == y) >= 0.97

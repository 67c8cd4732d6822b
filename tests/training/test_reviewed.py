"""`training.reviewed.served_crops`: which of the segmenter's readings a reviewed text takes.

The export cuts each reviewed document with the serving segmenter; where the segmenter offers
several readings of some ink, the reviewed text decides. These pin that choice on hand-built
segmentations (crop i is filled with the value i, so a crop names itself)."""

import numpy as np

from recognition.segment import Box, Hypothesis, Segmentation
from training.reviewed import served_crops


def _crops(n: int) -> np.ndarray:
    return np.stack([np.full((28, 28), i, np.float32) for i in range(n)])


def _h(*crops: int, changed: bool = False, prior: float = 1.0) -> Hypothesis:
    return Hypothesis(crops, tuple(Box(10 * i, 0, 8, 8) for i in crops), changed, prior)


def _names(crops: np.ndarray | None) -> list[int] | None:
    return None if crops is None else [int(c[0, 0]) for c in crops]


def test_each_slot_gives_the_hypothesis_that_makes_the_count():
    # Slot 1: one broken digit (crop 0) or its two pieces (1, 2); slot 2: one plain digit (3).
    slots = ((_h(0), _h(1, 2, changed=True, prior=0.5)), (_h(3),))
    segmentation = Segmentation(_crops(4), slots, ())
    assert _names(served_crops(segmentation, 2)) == [0, 3]
    assert _names(served_crops(segmentation, 3)) == [1, 2, 3]
    assert served_crops(segmentation, 4) is None
    assert served_crops(segmentation, 1) is None  # no plain digit, no one-digit reading


def test_of_equal_counts_the_marks_as_they_are_win():
    # Two slots, each either whole or split: 3 digits two ways, the likelier prior wins.
    slots = (
        (_h(0), _h(1, 2, changed=True, prior=0.3)),
        (_h(3), _h(4, 5, changed=True, prior=0.6)),
    )
    segmentation = Segmentation(_crops(6), slots, ())
    assert _names(served_crops(segmentation, 3)) == [0, 4, 5]
    swapped = Segmentation(_crops(6), (slots[1], slots[0]), ())
    assert _names(served_crops(swapped, 3)) == [4, 5, 0]
    assert _names(served_crops(segmentation, 2)) == [0, 3]
    assert _names(served_crops(segmentation, 4)) == [1, 2, 4, 5]


def test_a_one_digit_text_takes_the_whole_image_as_served():
    # Serving reads the plain digit whenever the reading comes to one digit (recognition.fields).
    plain = _h(2)
    segmentation = Segmentation(_crops(3), ((_h(0), _h(1, changed=True, prior=0.5)),), (), plain)
    assert _names(served_crops(segmentation, 1)) == [2]
    assert served_crops(segmentation, 2) is None


def test_crops_keep_their_pixels():
    segmentation = Segmentation(np.random.default_rng(3).random((2, 28, 28), np.float32),
                                ((_h(0),), (_h(1),)), ())  # fmt: skip
    assert np.array_equal(served_crops(segmentation, 2), segmentation.crops)

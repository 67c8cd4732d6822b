"""The segmenter's cheaper steps on cheque amount cuts (issue 11): each gives the very pixels
or values of the plainer expression it replaces."""

import cv2
import numpy as np

from recognition.segment import (
    _ACROSS,
    _ink,
    _inked,
    _line_mask,
    _line_rows,
    _Page,
    _pieces,
    _printed_width,
    _sums,
    _top_decile,
)


def _lined(rng, height: int, width: int) -> np.ndarray:
    """Faint ink with printed lines (a box's top and bottom, a side) and noise."""
    image = (rng.random((height, width)) < rng.uniform(0.05, 0.4)).astype(np.uint8)
    top, bottom = int(rng.integers(0, height // 4)), int(rng.integers(3 * height // 4, height))
    image[top : top + int(rng.integers(1, 4)), int(rng.integers(0, 10)) :] = 1
    image[bottom - int(rng.integers(1, 4)) : bottom, : width - int(rng.integers(0, 10))] = 1
    side = int(rng.integers(0, width))
    image[top:bottom, side : side + 2] = 1
    return image


def test_lines_looked_for_only_in_the_bounds_rows_are_all_the_lines():
    rng = np.random.default_rng(11)
    for _ in range(300):
        faint = _lined(rng, int(rng.integers(20, 100)), int(rng.integers(40, 300)))
        height, width = faint.shape
        for horizontal, along in ((True, width), (False, height)):
            for length in (max(8, along // 2), max(5, along // 15), max(8, int(0.9 * along))):
                thick = cv2.dilate(faint, _ACROSS[horizontal])
                at = _line_rows(faint, length, horizontal, thick)
                expected = _line_mask(faint, length, horizontal)
                assert np.array_equal(_line_mask(faint, length, horizontal, at, thick), expected)


def test_sums_and_inked_are_numpys():
    rng = np.random.default_rng(12)
    for _ in range(50):
        image = (rng.random(tuple(rng.integers(1, 80, 2))) < rng.uniform(0, 0.3)).astype(np.uint8)
        assert _inked(image) == bool(image.any())
        for axis in (0, 1):
            assert np.array_equal(_sums(image, axis), image.sum(axis=axis))


def test_top_decile_of_levels_is_numpys_percentile():
    rng = np.random.default_rng(13)
    for _ in range(500):
        levels = rng.integers(0, int(rng.integers(1, 256)) + 1, (1, int(rng.integers(1, 3000))))
        levels = levels.astype(np.uint8)
        above = 0.5 * float(levels.max())
        if levels.max() == 0:
            continue
        values = levels.astype(np.float32)
        expected = float(np.percentile(values[values > above], 90))
        assert _top_decile(levels, above) == expected


def test_ink_levels_are_the_plain_expressions_bit_for_bit():
    """`_ink` converts to uint8 by OpenCV and takes its percentile from a histogram: the same
    bits as clipping, numpy's truncating conversion and numpy's percentile."""
    rng = np.random.default_rng(14)
    for _ in range(100):
        height, width = (int(v) for v in rng.integers(20, 90, 2))
        gray = rng.uniform(0.6, 1.0, (height, width)).astype(np.float32)
        gray[rng.random((height, width)) < 0.1] = rng.uniform(-0.1, 0.3)  # ink, some below 0
        ink = np.clip(np.subtract(1.0, gray, dtype=np.float32) * 255.0, 0, 255).astype(np.uint8)
        small = cv2.resize(ink, (max(1, width // 4), max(1, height // 4)),
                           interpolation=cv2.INTER_AREA)  # fmt: skip
        side = max(5, min(small.shape) // 2) | 1
        paper = cv2.morphologyEx(small, cv2.MORPH_OPEN, np.ones((side, side), np.uint8))
        paper = cv2.resize(paper, (width, height), interpolation=cv2.INTER_LINEAR)
        flat = cv2.subtract(ink, paper).astype(np.float32)
        flat /= max(float(np.percentile(flat[flat > 0.5 * flat.max()], 90)), 1.0)
        assert np.array_equal(_ink(gray).view(np.uint32), np.clip(flat, 0, 1).view(np.uint32))


def test_a_pieces_mask_is_the_same_asked_again(mnist):
    """The page keeps a mask once made (a digit's lean, cuts and crop share it)."""
    gray = np.ones((72, 200), np.float32)
    for k in range(4):
        gray[14:42, 20 + 45 * k : 48 + 45 * k] = 1.0 - mnist.x_test[k] / 255.0
    page = _Page(gray, deskew=False)
    for piece in _pieces(page):
        top, mask = page.mask(piece.ids, piece.x0, piece.x1)
        labels = page.labels[top : top + mask.shape[0], piece.x0 : piece.x1]
        assert np.array_equal(mask, np.isin(labels, piece.ids))
        assert page.mask(piece.ids, piece.x0, piece.x1)[1] is mask


def test_a_boxs_lines_are_cut_back_to_their_printed_width():
    """Ink merged with a printed line past the thickness it was printed with (a bar under a
    box's top, a 1 against its left side, a foot on an underline) is given back to the digits;
    a comb's wall, apart from the side, stays a line."""
    horizontal, vertical = np.zeros((40, 100), np.uint8), np.zeros((40, 100), np.uint8)
    horizontal[2:4, 2:98] = horizontal[36:38, 2:98] = 1  # top and bottom, 2 px
    horizontal[4:7, 20:40] = 1  # a 7's bar merged under the top
    vertical[2:38, 2:4] = vertical[2:38, 96:98] = 1  # the sides
    vertical[6:34, 4:8] = 1  # a 1 merged with the left side
    vertical[2:38, 30:32] = 1  # a comb's wall
    cut_h, cut_v = _printed_width(horizontal, vertical)
    assert cut_h[2:5].sum() == horizontal[2:5].sum() and not cut_h[5:7].any()
    assert np.array_equal(cut_h[30:], horizontal[30:])
    assert cut_v[:, 2:5].sum() == vertical[:, 2:5].sum() and not cut_v[:, 5:8].any()
    assert np.array_equal(cut_v[:, 30:], vertical[:, 30:])
    underline = np.zeros((40, 100), np.uint8)
    underline[35:37, :] = 1
    underline[32:35, 60:80] = 1  # a 2's foot merged above it
    cut_u, _ = _printed_width(underline, np.zeros_like(underline))
    assert cut_u[35:37].all() and cut_u[34, 60:80].all() and not cut_u[32:34].any()

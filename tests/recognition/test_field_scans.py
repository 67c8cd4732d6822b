"""300 dpi field scans read as decoded (uint8, at the reduced decode size) rather than through a
float copy, and the plain path's frame search made cheaper: each cheaper step is checked
against the plain one it replaces, and fields smaller than a 300 dpi scan, single digits and
drawings against the path they always took."""

import io

import numpy as np
import pytest
from PIL import Image

from recognition import WORK_MIN_SIDE, decode_image, read_segmentations, segment_image
from recognition.decode import (
    DEFAULT_MAX_PIXELS,
    _factor,
    _grey_jpeg,
    _luminance,
    check_image,
    decode_page,
)
from recognition.frames import _runs, _views
from recognition.segment import PLAIN_MAX_ASPECT, SHRINK_FROM, SHRINK_SIDE, _ink, find_digits
from recognition.synthetic import render_scan
from training.synthetic_fields import fields, render_field, scan_spec


def _gathered_runs(view: np.ndarray, first: np.ndarray, limit: int) -> np.ndarray:
    """The plain expression `_runs` replaces: `limit` rows gathered in every column."""
    rows, cols = view.shape
    steps = np.arange(limit)[:, None]
    index = np.minimum(first.astype(np.int64)[None, :] + steps, rows - 1)
    run = view[index, np.arange(cols)[None, :]] & (first[None, :] + steps < rows)
    return np.where(run.all(axis=0), limit, run.argmin(axis=0))


def test_frame_side_runs_are_the_gathered_runs():
    """In every column asked for, the same run of ink as gathering `limit` rows: thin and
    thick sides, runs reaching the image's edge, limits under and over the probe."""
    rng = np.random.default_rng(14)
    for _ in range(600):
        rows, cols = rng.integers(1, 80, 2)
        mask = rng.random((rows, cols)) < rng.uniform(0.05, 0.98)
        for view in _views(mask):
            inked = view.any(axis=0)
            if not inked.any():
                continue
            first = np.where(inked, view.argmax(axis=0), view.shape[0]).astype(np.float32)
            which = inked & (rng.random(inked.shape) < 0.7)
            limit = int(rng.integers(2, 70))
            got = _runs(view, first, which, limit)
            expected = _gathered_runs(view, first, limit)
            assert got.dtype == expected.dtype
            assert np.array_equal(got[which], expected[which])


def test_ink_of_uint8_levels_is_the_ink_of_their_floats(mnist):
    """`_ink` reads uint8 levels through a table to the very ink of level / 255 as float, on
    light and dark paper, at an exact tie between them, and on real 300 dpi scans."""
    rng = np.random.default_rng(15)
    images = [rng.integers(0, 256, (40, 90)).astype(np.uint8) for _ in range(20)]
    images += [255 - image // 3 for image in images] + [image // 3 for image in images]
    tie = np.full((20, 60), 200, np.uint8)  # half light, half dark: the median decides
    tie[:10] = 20
    images.append(tie)
    for made in fields("scan300", 12, mnist.x_test, mnist.y_test, seed=15):
        images.append(decode_page(made.image)[0])
    for levels in images:
        assert np.array_equal(_ink(levels), _ink(levels.astype(np.float32) / 255.0))


def _as_floats(data: bytes):
    """`segment_image` as it was: a field's decoded page as float in [0, 1], then the
    segmenter; an image short enough to be one digit through `decode_image`."""
    width, height = check_image(data)
    short = min(width, height)
    if max(width, height) <= PLAIN_MAX_ASPECT * short:
        gray = decode_image(data, DEFAULT_MAX_PIXELS, WORK_MIN_SIDE)
        return find_digits(gray, pixel_scale=width / gray.shape[1])
    wide = -(-width * SHRINK_SIDE // short) if short >= SHRINK_FROM else 0
    pixels, span = decode_page(data, DEFAULT_MAX_PIXELS, wide)
    return find_digits(pixels.astype(np.float32) / 255.0, pixel_scale=span)


def _same(a, b) -> bool:
    return np.array_equal(a.crops, b.crops) and a.slots == b.slots and a.separators == b.separators


@pytest.mark.parametrize("kind", ["plain", "box", "comb", "separators", "long"])
def test_fields_smaller_than_a_300_dpi_scan_read_as_before(mnist, kind):
    """Fields of MNIST-sized digits (shorter side under SHRINK_FROM) take the float path they
    always took: the same crops, hypotheses and separators."""
    for made in fields(kind, 15, mnist.x_test, mnist.y_test, seed=16):
        if min(check_image(made.image)) < SHRINK_FROM:
            assert _same(segment_image(made.image), _as_floats(made.image))


def test_300_dpi_scans_read_as_uint8_read_as_their_floats(mnist, recognizer):
    """300 dpi fields read as decoded (uint8): where the decoded page is already at working size
    the very same segmentation as through floats; where it is shrunk further (uint8 rounding),
    the same text."""
    rng = np.random.default_rng(17)
    made = [render_field(scan_spec(rng), mnist.x_test, mnist.y_test, rng) for _ in range(60)]
    fast = [segment_image(m.image) for m in made]
    plain = [_as_floats(m.image) for m in made]
    identical = sum(_same(a, b) for a, b in zip(fast, plain, strict=True))
    assert identical >= 0.8 * len(made), identical
    texts = [r.text for r in read_segmentations(fast, recognizer)]
    assert texts == [r.text for r in read_segmentations(plain, recognizer)]
    assert sum(t == m.text for t, m in zip(texts, made, strict=True)) >= 0.9 * len(made)


def test_grey_jpegs_decode_to_pillows_luminance(mnist):
    """A whole greyscale JPEG decoded by OpenCV gives `_luminance` of Pillow's own image to
    the bit, shrunk or not; colour, over-budget and cut-short JPEGs are left to Pillow."""
    rng = np.random.default_rng(18)
    jpegs = [render_scan(mnist.x_test[i], rng, image_format="JPEG") for i in range(40)]
    jpegs += [m.image for m in fields("jpeg", 20, mnist.x_test, mnist.y_test, seed=18)]
    for data in jpegs:
        assert _grey_jpeg(data, DEFAULT_MAX_PIXELS) is not None
        for min_side in (None, 28, 128):
            image = Image.open(io.BytesIO(data))
            image.load()
            width, height = image.size
            expected = _luminance(image, _factor(width, height, min_side))
            assert np.array_equal(decode_image(data, min_side=min_side), expected)
    colour = io.BytesIO()
    Image.open(io.BytesIO(jpegs[0])).convert("RGB").save(colour, "JPEG")
    width, height = Image.open(io.BytesIO(jpegs[0])).size
    assert _grey_jpeg(colour.getvalue(), DEFAULT_MAX_PIXELS) is None
    assert _grey_jpeg(jpegs[0], width * height - 1) is None
    assert _grey_jpeg(jpegs[0][:-40], DEFAULT_MAX_PIXELS) is None

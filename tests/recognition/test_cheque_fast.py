"""The cheque locator's cheaper steps give what the plain ones gave (issue 11)."""

import cv2
import numpy as np
import pytest

from recognition.cheque import (
    AmountBox,
    _grown_all,
    _Line,
    _measured,
    _paper,
    _work_page,
    amount_crop,
)
from recognition.fields import Box


def _pages(seed: int, count: int):
    rng = np.random.default_rng(seed)
    for i in range(count):
        shape = int(rng.integers(1, 700)), int(rng.integers(1, 2800))
        if i % 2:
            yield rng.integers(0, 256, shape, dtype=np.uint8)
        else:
            yield np.clip(rng.normal(200, 40, shape), 0, 255).astype(np.uint8)


def test_the_work_page_is_inter_area_to_the_byte_for_every_factor():
    factors = set()
    for page in _pages(1, 120):
        height, width = page.shape
        factor = max(1, round(width / 600))
        size = (width // factor, max(1, height // factor))
        if factor == 1:
            expected = page
        else:
            cut = page[: size[1] * factor, : size[0] * factor]
            expected = cv2.resize(cut, size, interpolation=cv2.INTER_AREA)
        work, scale = _work_page(page)
        assert np.array_equal(work, expected)
        assert scale == width / expected.shape[1]
        factors.add(factor)
    assert {1, 2, 3, 4} <= factors


def test_the_paper_median_is_numpys():
    rng = np.random.default_rng(2)
    for _ in range(500):
        crop = rng.integers(rng.integers(0, 256), 256, (rng.integers(1, 40), rng.integers(1, 90)))
        crop = crop.astype(np.uint8)
        level = int(rng.integers(0, 256))
        paper = crop[crop > level]
        expected = np.uint8(np.median(paper)) if paper.size else np.uint8(255)
        assert _paper(crop, level) == expected


def test_the_opening_never_reaches_past_the_3x3_dilation():
    # Why _lines no longer masks the opening with binary's 3x3 dilation: it never changed it.
    rng = np.random.default_rng(3)
    for _ in range(300):
        binary = (rng.random((rng.integers(3, 60), rng.integers(3, 200))) < rng.random()) * 255
        binary = binary.astype(np.uint8)
        thick = cv2.dilate(binary, np.ones((3, 1), np.uint8))
        kernel = np.ones((1, int(rng.integers(8, 30))), np.uint8)
        mask = cv2.morphologyEx(thick, cv2.MORPH_OPEN, kernel)
        assert np.array_equal(mask, mask & cv2.dilate(binary, np.ones((3, 3), np.uint8)))


def _one_line_fit(component: np.ndarray, x: int, y: int) -> tuple[float, float, float]:
    """The plain per-line fit the batched one replaced: intercept, slope, thickness."""
    ink = (component > 0).astype(np.float64)
    weight = ink.sum(axis=0)
    centres = np.arange(len(ink)) @ ink / np.maximum(weight, 1)
    counts = np.bincount(weight.astype(int))
    typical = counts[1:].argmax() + 1.0
    columns = np.flatnonzero((weight > 0) & (weight <= typical * 1.5 + 1))
    slope, intercept = np.polyfit(columns, centres[columns], 1)
    return y + intercept - slope * x, slope, max(1.0, typical - 2)


def test_lines_measured_together_fit_as_each_alone():
    mask = np.zeros((120, 600), np.uint8)
    boxes = []
    for i, (slope, thick) in enumerate(((0.0, 3), (0.02, 4), (-0.015, 3))):
        x0, y0 = 40 + 150 * i, 30 + 30 * i
        for x in range(x0, x0 + 130):
            top = round(y0 + slope * (x - x0))
            mask[top : top + thick, x] = 255
        mask[y0 - 8 : y0 + 8, x0 + 60 : x0 + 63] = 255  # a digit crossing the line
        ys, xs = np.nonzero(mask[:, x0 : x0 + 130])
        boxes.append((x0, int(ys.min()), 130, int(ys.max() - ys.min() + 1)))
    for line, (x, y, w, h) in zip(_measured(mask, boxes), boxes, strict=True):
        intercept, slope, thickness = _one_line_fit(mask[y : y + h, x : x + w], x, y)
        assert (line.x0, line.x1) == (x, x + w)
        assert line.slope == pytest.approx(slope, abs=1e-9)
        assert line.intercept == pytest.approx(intercept, abs=1e-6)
        assert line.thickness == thickness


def test_lines_grown_together_grow_as_each_alone():
    rng = np.random.default_rng(4)
    page = ((rng.random((80, 500)) < 0.08) * 255).astype(np.uint8)
    page[20, 50:450:2] = 255  # a dotted line
    page[50, 120:480] = 255
    lines = [_Line(150, 250, 20.0, 0.0, 1.0), _Line(200, 300, 50.2, 0.001, 1.0),
             _Line(5, 60, 70.0, -0.01, 1.0), _Line(440, 498, 10.0, 0.0, 1.0)]  # fmt: skip
    assert _grown_all(lines, page) == [_grown_all([line], page)[0] for line in lines]
    assert _grown_all(lines, page)[1].x1 > 300


def test_a_rotated_box_is_cut_straight_at_the_readers_height():
    page = np.full((400, 900), 230, np.uint8)
    angle = 3.0
    # A dark bar along the box's middle, rotated with the box about its top-left corner.
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    for u in range(20, 580):
        for v in range(70, 80):
            page[round(100 + s * u + c * v), round(200 + c * u - s * v)] = 20
    found = AmountBox(Box(200, 100, 600, 150), "box", angle, None, 1.0)
    crop = amount_crop(page, found, 72)
    assert crop.shape == (72, 288)
    rows = np.flatnonzero(crop[:, 20:270].mean(axis=1) < 0.5)
    assert len(rows) >= 3 and rows.min() >= 30 and rows.max() <= 40  # level, where it was


def test_the_cheque_pictures_still_draw_the_locators_ink_and_lines():
    from training.cheque_pictures import _inks, _lines  # what they import

    work = np.full((200, 600), 220, np.uint8)
    work[100:103, 250:560] = 60  # a printed line
    work[60:62, 300:520] = 205  # faint ink: no line of its own
    binary, faint = _inks(work)
    lines, _ = _lines(binary, faint)
    assert len(lines) == 1 and abs(lines[0].x0 - 250) <= 1 and abs(lines[0].x1 - 560) <= 1
    assert faint[60, 400] and not binary[60, 400]

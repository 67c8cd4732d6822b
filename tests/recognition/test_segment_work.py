"""The segmenter's cheaper steps: large fields worked on at a whole-factor shrink, and steps
rewritten for speed that must give the same pixels as the plain OpenCV calls they replace."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from recognition import segment_image
from recognition.segment import (
    _KERNEL3,
    SHRINK_FROM,
    SHRINK_SIDE,
    WORK_SIDE,
    _binarise,
    _bridged,
    _ink,
    _labelled,
    _working,
)
from training.synthetic_fields import render_field, scan_spec


@pytest.mark.parametrize(
    ("shape", "factor"), [((150, 600), 2), ((200, 800), 3), ((SHRINK_FROM, 500), 2)]
)
def test_large_fields_are_a_box_average_by_a_whole_factor(rng, shape, factor):
    gray = rng.random(shape, dtype=np.float32)
    work, scale = _working(gray)
    height, width = shape[0] // factor, shape[1] // factor
    assert work.shape == (height, width) and scale == pytest.approx(1 / factor)
    assert SHRINK_SIDE <= min(work.shape) < 2 * SHRINK_SIDE
    boxes = gray[: height * factor, : width * factor].reshape(height, factor, width, factor)
    np.testing.assert_allclose(work, boxes.mean(axis=(1, 3)), atol=1e-5)


@pytest.mark.parametrize(("shape", "side"), [((SHRINK_FROM - 1, 400), WORK_SIDE), ((80, 300), 80)])
def test_fields_of_mnist_sized_digits_keep_their_working_size(rng, shape, side):
    """Below SHRINK_FROM nothing changes: at most WORK_SIDE pixels on the shorter side."""
    work, scale = _working(rng.random(shape, dtype=np.float32))
    assert min(work.shape) == side and scale == pytest.approx(side / shape[0], rel=0.01)


def scans(mnist, rng, number: int, **spec) -> list:
    """300 dpi fields (`scan_spec`), with some of the spec set."""
    out = []
    for _ in range(number):
        made = scan_spec(rng, count=spec.get("count"))
        made.jpeg_quality = spec.get("jpeg_quality", made.jpeg_quality)
        made.structure = spec.get("structure", made.structure)
        out.append(render_field(made, mnist.x_test, mnist.y_test, rng))
    return out


@pytest.mark.parametrize("jpeg", [None, 85])
def test_300_dpi_boxes_are_in_the_uploads_pixels(mnist, rng, jpeg):
    """PNGs shrunk by a whole factor and JPEGs decoded at 1/2 scale: each digit's box lies in
    the upload and is about as tall as the digits were drawn (70-110 px)."""
    for made in scans(mnist, rng, 6, count=4, jpeg_quality=jpeg, structure="box"):
        width, height = Image.open(io.BytesIO(made.image)).size
        assert min(width, height) >= SHRINK_FROM
        slots = segment_image(made.image, "field").slots
        boxes = [h.boxes[0] for slot in slots for h in slot[:1]]
        assert len(boxes) == 4
        for b in boxes:
            assert 0 <= b.x and b.x + b.width <= width and 0 <= b.y and b.y + b.height <= height
            assert 0.6 * made.spec.height <= b.height <= 1.3 * made.spec.height


def test_grana_labelling_is_opencvs_default(mnist, rng):
    """`_labelled` (Grana's algorithm) gives the labels and stats of OpenCV's default."""
    for made in scans(mnist, rng, 12):
        image = np.asarray(Image.open(io.BytesIO(made.image)).convert("L"), np.float32) / 255
        for binary in _binarise(_ink(_working(image)[0])):
            count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
            got = _labelled(binary)
            assert got[0] == count and (got[1] == labels).all() and (got[2] == stats).all()


def bridged_as_before(binary, horizontal, vertical):
    """Line removal's last step as it was written first: both ways, always."""
    near_h, near_v = cv2.dilate(horizontal, _KERNEL3), cv2.dilate(vertical, _KERNEL3)
    clean = binary & ~(near_h | near_v)
    thickness = int(max(horizontal.sum(axis=0).max(), vertical.sum(axis=1).max()))
    span = min(thickness, 8) + 4
    bridges = cv2.morphologyEx(clean, cv2.MORPH_CLOSE, np.ones((span, 1), np.uint8)) & near_h
    bridges |= cv2.morphologyEx(clean, cv2.MORPH_CLOSE, np.ones((1, span), np.uint8)) & near_v
    return clean | bridges


@pytest.mark.parametrize("ways", [(True, False), (False, True), (True, True)])
def test_bridging_only_the_ways_with_lines_changes_nothing(rng, ways):
    for _ in range(20):
        binary = (rng.random((60, 200)) < 0.3).astype(np.uint8)
        lines = [np.zeros_like(binary), np.zeros_like(binary)]
        if ways[0]:
            lines[0][[5, 6, 50], 10:190] = 1
        if ways[1]:
            lines[1][5:55, [12, 13, 180]] = 1
        expected = bridged_as_before(binary, *lines)
        assert (_bridged(binary, *lines, ways) == expected).all()

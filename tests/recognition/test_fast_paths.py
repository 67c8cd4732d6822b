"""The fast paths give the very same answers as the plain code they replaced.

`plain_digit` and `to_mnist` were made cheap (in-place float steps, the ink box from the
components' boxes, a bound that skips the search for a faint printed box): these tests hold
them to the straightforward code, bit for bit, on a few hundred rendered MNIST scans, canvas
drawings and boxed digits, and hold the bound to the morphology it stands in for. The field
segmenter's shortcuts (medians, percentile, long-line openings) are held to numpy's and OpenCV's
own results.
"""

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from devtools.scans import canvas_drawing, canvas_png, scan_png
from recognition import ImageError, decode_image, read_segmentations, segment_image, to_mnist
from recognition.decode import (
    _composite,
    _drawing_luminance,
    _idat_stream,
    _inflated,
    decode_png,
)
from recognition.preprocess import (
    DESPECKLE_MIN_SIDE,
    INK_LEVEL,
    NOISE_FLOOR,
    _despeckle,
    ink_and_mask,
)
from recognition.segment import (
    LABELS_16U_MAX_PIXELS,
    _labelled,
    _line_mask,
    _line_rows,
    plain_digit,
)
from recognition.synthetic import render_scan
from training.synthetic_fields import FieldSpec, render_field


def reference_despeckle(mask: np.ndarray) -> np.ndarray:
    """`_despeckle` as it was first written: each pixel's 8 neighbours counted in numpy."""
    padded = np.pad(mask, 1).astype(np.uint8)
    height, width = mask.shape
    neighbours = sum(
        padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if dy or dx
    )
    return mask & (neighbours >= 3)


def test_despeckle_is_the_neighbour_count(mnist):
    rng = np.random.default_rng(5)
    masks = [rng.random(shape) < share for shape in ((140, 140), (64, 300), (3, 5), (1, 1))
             for share in (0.05, 0.3, 0.8)]  # fmt: skip
    masks += [np.kron(d > 80, np.ones((5, 5), bool)) for d in mnist.x_test[:50]]
    for mask in masks:
        assert np.array_equal(_despeckle(mask), reference_despeckle(mask))
        assert np.array_equal(_despeckle(mask[:, ::2]), reference_despeckle(mask[:, ::2]))


def reference_to_mnist(gray: np.ndarray) -> np.ndarray:
    """`to_mnist` as it was written before it was made fast: plain numpy and Pillow."""
    gray = np.asarray(gray, dtype=np.float32)
    paper = float(np.median(np.concatenate((gray[0], gray[-1], gray[:, 0], gray[:, -1]))))
    ink = (1.0 - gray) if paper > 0.5 else gray
    ink = ink - (1.0 - paper if paper > 0.5 else paper)
    ink = ink / float(ink.max())
    ink[ink < NOISE_FLOOR] = 0.0
    mask = ink > INK_LEVEL
    if min(mask.shape) >= DESPECKLE_MIN_SIDE and reference_despeckle(mask).any():
        mask = reference_despeckle(mask)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    height, width = crop.shape
    scale = 20 / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size != (width, height):
        image = Image.fromarray(np.ascontiguousarray(crop), mode="F")
        crop = np.asarray(image.resize(size, Image.Resampling.BILINEAR))
    crop = np.clip(crop / max(float(crop.max()), 1e-6), 0.0, 1.0)
    total = float(crop.sum())
    cy = float((crop.sum(axis=1) * np.arange(crop.shape[0])).sum()) / total
    cx = float((crop.sum(axis=0) * np.arange(crop.shape[1])).sum()) / total
    top = int(np.clip(round(13.5 - cy), 0, 28 - crop.shape[0]))
    left = int(np.clip(round(13.5 - cx), 0, 28 - crop.shape[1]))
    out = np.zeros((28, 28), dtype=np.float32)
    out[top : top + crop.shape[0], left : left + crop.shape[1]] = crop
    return out


@pytest.fixture(scope="module")
def uploads(mnist) -> list[bytes]:
    """Bulk-benchmark scans (56x56 PNG), scans at any size (PNG and JPEG), canvas drawings."""
    rng = np.random.default_rng(4040)
    digits = mnist.x_test
    return (
        [scan_png(digits[i]) for i in range(150)]
        + [render_scan(digits[i], rng) for i in range(150, 300)]
        + [canvas_png(digits[i], rng) for i in range(300, 360)]
    )


def test_to_mnist_is_the_plain_expressions_bit_for_bit(uploads):
    for data in uploads:
        gray = decode_image(data, min_side=128)
        assert np.array_equal(to_mnist(gray), reference_to_mnist(gray))


def test_single_digits_take_the_fast_path_with_the_same_answers(uploads, recognizer):
    """The fast path's crop is `to_mnist`'s, so the digit and confidence are main's old ones."""
    before = recognizer.predict(np.stack([reference_to_mnist(decode_image(d, min_side=128))
                                          for d in uploads]))  # fmt: skip
    segmentations = [segment_image(data) for data in uploads]
    one = [s for s in segmentations if len(s.crops) == 1]
    assert len(one) >= 0.95 * len(uploads), len(one)
    readings = read_segmentations(segmentations, recognizer)
    for seg, reading, old in zip(segmentations, readings, before, strict=True):
        if len(seg.crops) == 1:
            assert (reading.digit, reading.confidence) == (old.digit, old.confidence)
            assert reading.probabilities == old.probabilities
    same = sum(r.text == str(b.digit) for r, b in zip(readings, before, strict=True))
    assert same >= len(uploads) - 2, same


def test_plain_digit_crop_and_box_are_to_mnists(uploads):
    for data in uploads[::3]:
        gray = decode_image(data, min_side=128)
        kind, hypothesis, crop = plain_digit(gray)
        assert np.array_equal(crop, reference_to_mnist(gray)), kind
        box = hypothesis.boxes[0]
        assert box.width > 0 and box.height > 0
        assert box.x + box.width <= gray.shape[1] and box.y + box.height <= gray.shape[0]


def _images_with_lines(mnist) -> list[np.ndarray]:
    """Faint masks with printed boxes, underlines and lines running off the image's sides."""
    rng = np.random.default_rng(77)
    images = []
    for i in range(60):
        structure = ("box", "underline", "comb", "none")[i % 4]
        made = render_field(FieldSpec(count=1 + i % 2, structure=structure, rotation=i % 5 - 2),
                            mnist.x_test, mnist.y_test, rng)  # fmt: skip
        gray = decode_image(made.image, min_side=128)
        images.append((gray < 0.6).astype(np.uint8))
    cut = np.zeros((40, 60), np.uint8)
    cut[10, 45:] = 1  # a line running off the right side, shorter than half the width
    cut[30, :14] = 1  # and one off the left side
    images += [cut, cut.T.copy(), np.ones((3, 5), np.uint8)]
    return images


def test_line_bound_never_misses_a_line(mnist):
    """The cheap bound that lets `_ruled` skip its morphology finds every row and column where
    the morphology finds a line (a superset), lines cut off at the image's sides included."""
    for faint in _images_with_lines(mnist):
        height, width = faint.shape
        for horizontal, along in ((True, width), (False, height)):
            for length in (max(8, along // 2), max(8, int(0.9 * along)), 12):
                lines = _line_mask(faint, length, horizontal)
                found = set(np.flatnonzero(lines.any(axis=1 if horizontal else 0)).tolist())
                bound = set(_line_rows(faint, length, horizontal).tolist())
                assert found <= bound, (horizontal, length, sorted(found - bound))


def test_fast_statistics_are_numpys_to_the_bit():
    """The segmenter's medians and percentile, done without numpy's generic overhead, give
    numpy's very values: ties, even and odd counts, integer-valued ink and float32 rows."""
    from recognition.preprocess import _median
    from recognition.segment import _mostly_light, _row_medians, _top_decile

    rng = np.random.default_rng(9)
    for size in (1, 2, 3, 8, 9, 40, 41, 500, 2001):
        ints = rng.integers(0, 256, size).astype(np.float32)  # integer-valued, many ties
        floats = rng.random(size, dtype=np.float32)
        levels = ints.astype(np.uint8)[None]
        for above in (0.0, 63.5, 127.0, 200.0):
            chosen = ints[ints > above]
            if len(chosen):
                assert _top_decile(levels, above) == float(np.percentile(chosen, 90))
        for values in (ints, floats, np.full(size, 0.5, np.float32)):
            assert _median(values) == float(np.median(values))
            assert _mostly_light(values) == (float(np.median(values)) > 0.5)
        halves = np.concatenate([np.full(size, 0.25), np.full(size, 0.75)]).astype(np.float32)
        assert _mostly_light(halves) == (float(np.median(halves)) > 0.5)
        for stretch in (1, 2, 5, 6):
            rows = rng.random((8, stretch), dtype=np.float32)
            assert np.array_equal(_row_medians(rows), np.median(rows, axis=1))
            cols = np.sort(rng.integers(0, 300, (8, stretch)), axis=1)
            assert np.array_equal(_row_medians(cols, ordered=True), np.median(cols, axis=1))


def test_line_opening_is_opencvs_to_the_pixel():
    """The long-line opening done in log2 steps is OpenCV's (anchor, image edges and all)."""
    import cv2

    from recognition.segment import _open_along

    rng = np.random.default_rng(3)
    for _ in range(600):
        height, width = (int(v) for v in rng.integers(1, 120, 2))
        image = (rng.random((height, width)) < rng.uniform(0.3, 0.99)).astype(np.uint8)
        length, horizontal = int(rng.integers(1, 160)), bool(rng.integers(0, 2))
        kernel = np.ones((1, length) if horizontal else (length, 1), np.uint8)
        expected = cv2.morphologyEx(image, cv2.MORPH_OPEN, kernel)
        assert np.array_equal(_open_along(image, length, horizontal), expected)


def _pngs(mnist) -> list[bytes]:
    """Canvas drawings (RGBA), grey scans, and the same digits as RGB and over several IDAT
    chunks (Pillow splits a large stream), at sizes from a 56x56 scan to a wide field."""
    rng = np.random.default_rng(77)
    digits = mnist.x_test
    out = [canvas_png(digits[i], rng) for i in range(40)]
    out += [scan_png(digits[i], scale) for i in range(40, 60) for scale in (2, 5)]
    for i in range(60, 70):
        image = Image.open(io.BytesIO(scan_png(digits[i], 4))).convert("RGB")
        out.append(_encoded(image))
    wide = np.tile(255 - digits[70], (8, 90)).astype(np.uint8)
    wide -= rng.integers(0, 40, wide.shape, dtype=np.uint8)  # noise: a stream of many chunks
    out.append(_encoded(Image.fromarray(wide)))
    return out


def _encoded(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_png_inflated_by_libdeflate_decodes_to_libspngs_own_pixels(mnist):
    """`decode_png` hands libspng the pixel stream inflated by libdeflate: the pixels must be
    the ones libspng decodes from the file as sent, for every kind of PNG the paths take."""
    pyspng = pytest.importorskip("pyspng")
    pytest.importorskip("deflate")
    pngs = _pngs(mnist)
    for data in pngs:
        assert _inflated(data) is not None  # the fast inflate is taken, not skipped
        assert np.array_equal(decode_png(data, 10**8), pyspng.load(data))
    assert _idat_stream(pngs[-1]) is not None and pngs[-1].count(b"IDAT") > 1


def test_png_with_a_damaged_chunk_is_left_to_libspng(mnist):
    """A broken CRC, a cut-short file or a corrupt pixel stream is not inflated aside: the file
    goes to libspng as sent, which reports it as before (and Pillow then names the damage)."""
    pyspng = pytest.importorskip("pyspng")
    pytest.importorskip("deflate")
    data = canvas_png(mnist.x_test[0], np.random.default_rng(1))
    at = data.find(b"IDAT") + 20
    flipped = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
    for damaged in (flipped, data[: len(data) // 2], data[:-12]):
        assert _inflated(damaged) is None
        try:
            sent = pyspng.load(damaged)
        except (RuntimeError, ValueError):
            sent = None
        got = decode_png(damaged, 10**8)
        assert (got is None) == (sent is None)  # without IEND, libspng still reads the pixels
        assert got is None or np.array_equal(got, sent)
    with pytest.raises(ImageError):
        decode_image(flipped)


def test_drawings_segment_alike_without_the_printed_box_search(mnist, recognizer):
    """`drawn=True` (the canvas route) skips the search for a faint printed box: canvas drawings
    of single digits, and of two and three digits side by side, segment to the same crops and
    read the same as through the plain code."""
    rng = np.random.default_rng(909)
    digits = mnist.x_test
    drawings = [canvas_png(digits[i], rng) for i in range(400, 700)]
    for start in range(700, 760, 3):
        count = 2 + start % 2
        row = np.concatenate([digits[start + k] for k in range(count)], axis=1)
        drawings.append(canvas_drawing(row, side=280, size=90 * count, at=(5, 90)))
    plain = [segment_image(data) for data in drawings]
    drawn = [segment_image(data, drawn=True) for data in drawings]
    for a, b in zip(plain, drawn, strict=True):
        assert np.array_equal(a.crops, b.crops) and a.slots == b.slots and a.plain == b.plain
    texts = [r.text for r in read_segmentations(drawn, recognizer)]
    assert texts == [r.text for r in read_segmentations(plain, recognizer)]
    assert sum(len(t) > 1 for t in texts) >= 15  # the rows were read as fields


def test_sixteen_bit_labels_find_the_same_components(mnist):
    """`_labelled` (a single digit's components, 16-bit labels where they fit) finds the same
    components, boxes and areas as OpenCV's 32-bit labelling, on MNIST masks and on scattered
    specks up to its size bound (where labels are most numerous)."""
    rng = np.random.default_rng(31)
    masks = [(mnist.x_test[i] > 80).astype(np.uint8) for i in range(200)]
    side = int(LABELS_16U_MAX_PIXELS**0.5)
    masks += [(rng.random((side, side)) < share).astype(np.uint8) for share in (0.05, 0.2, 0.5)]
    masks.append(np.ones((1, LABELS_16U_MAX_PIXELS), np.uint8) * (np.arange(65534) % 2 == 0))
    for mask in masks:
        count, labels, stats, _ = _labelled(mask)
        ref_count, _, ref_stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        assert count == ref_count
        assert sorted(stats.tolist()) == sorted(ref_stats.tolist())
        assert labels.dtype == np.uint16 and int(labels.max()) == count - 1


def test_composite_in_place_is_the_plain_expression():
    """`_composite` composites in place: the same bits as `premultiplied + background * (1 -
    opacity)`, onto white for dark marks and onto black for light ones."""
    rng = np.random.default_rng(5)
    for light in (False, True):
        opacity = rng.random((140, 140), dtype=np.float32)
        premultiplied = opacity * np.float32(0.9 if light else 0.1)
        background = 0.0 if light else 1.0
        expected = premultiplied + background * (1.0 - opacity)
        got = _composite(premultiplied.copy(), opacity.copy())
        assert got.dtype == np.float32 and np.array_equal(got, expected)


def test_drawings_on_dark_take_their_border_as_paper(mnist):
    """A drawing (`drawn`) looks for no paper rings inside a dark border: light strokes on a
    dark canvas (MNIST's own digits) give the very same ink and mask as the plain path."""
    for image in mnist.x_test[:300]:
        gray = image.astype(np.float32) / 255.0
        ink, mask = ink_and_mask(gray)
        drawn_ink, drawn_mask = ink_and_mask(gray, drawn=True)
        assert np.array_equal(ink, drawn_ink) and np.array_equal(mask, drawn_mask)


def reference_rgba_luminance(pixels: np.ndarray, factor: int) -> np.ndarray:
    """RGBA to composited luminance as `_array_luminance` first did it: the whole image."""
    height, width = pixels.shape[:2]

    def shrink(channel: np.ndarray) -> np.ndarray:
        if factor > 1:
            size = (width // factor, height // factor)
            channel = cv2.resize(channel, size, interpolation=cv2.INTER_AREA)
        return channel.astype(np.float32) * np.float32(1 / 255)

    alpha = np.ascontiguousarray(pixels[:, :, 3])
    gray = cv2.cvtColor(pixels, cv2.COLOR_RGBA2GRAY)
    premultiplied, opacity = shrink(cv2.multiply(gray, alpha, scale=1 / 255)), shrink(alpha)
    opaque = float(opacity.sum())
    if opaque == 0:
        return np.ones_like(opacity)
    background = 1.0 if premultiplied.sum() / opaque < 0.5 else 0.0
    return premultiplied + background * (1.0 - opacity)


def test_drawing_luminance_is_the_whole_images(mnist):
    """A canvas's luminance is worked out inside the box of its visible pixels only: the same
    bits as over the whole image, for canvas drawings at any position, shrunk 1-4x, and for
    random colours under opacity at odd offsets (light and dark), and a blank canvas."""
    rng = np.random.default_rng(77)
    cases = [decode_png(canvas_png(mnist.x_test[i], rng, side), 10**7)
             for i in range(60) for side in (280, 560, 300)]  # fmt: skip
    for k in range(60):
        height, width = (int(v) for v in rng.integers(40, 300, 2))
        pixels = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
        pixels[..., 3] = 0
        y, x = int(rng.integers(0, height - 2)), int(rng.integers(0, width - 2))
        pixels[y : y + int(rng.integers(1, 40)), x : x + int(rng.integers(1, 40)), 3] = 200
        pixels[..., :3] //= 1 + 3 * (k % 2)
        cases.append(pixels)
    cases.append(np.zeros((280, 280, 4), np.uint8))
    compared = 0
    for pixels in cases:
        for factor in (1, 2, 3, 4):
            if pixels.shape[0] % factor or pixels.shape[1] % factor:
                continue
            expected = reference_rgba_luminance(pixels, factor)
            got = _drawing_luminance(pixels, factor)
            assert got.dtype == np.float32 and np.array_equal(got, expected)
            compared += 1
    assert compared > 300

"""The page decoder (OpenCV for whole JPEGs, libspng for grey PNGs) gives the Pillow path's
answer, pixel for pixel, and the amount is read from a cut at the reader's resolution."""

import io

import numpy as np
import pytest
from PIL import Image

from recognition.cheque import amount_crop, locate_amount
from recognition.decode import _pillow_page, decode_page
from recognition.doctypes import CHEQUE, PAGE_MIN_WIDTH, READ_HEIGHT, read_document
from recognition.errors import ImageTooLarge, TruncatedImage, UndecodableImage


def _page(width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pixels = rng.normal(225, 8, (height, width)).clip(0, 255).astype(np.uint8)
    pixels[height // 2 - 3 : height // 2 + 3, width // 4 : 3 * width // 4] = 25
    return pixels


def _encode(pixels: np.ndarray, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, fmt, **options)
    return out.getvalue()


@pytest.mark.parametrize(
    "width, height, fmt",
    [(900, 410, "JPEG"), (1800, 825, "JPEG"), (2400, 900, "JPEG"), (7000, 3000, "JPEG"),
     (1200, 550, "PNG"), (2400, 1101, "PNG"), (700, 300, "PNG")],
)  # fmt: skip
def test_same_pixels_and_scale_as_decode_page(width, height, fmt):
    data = _encode(_page(width, height), fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    expected, expected_scale = _pillow_page(data, 8_000_000, PAGE_MIN_WIDTH)
    page, scale = decode_page(data, 8_000_000, PAGE_MIN_WIDTH)
    assert page.dtype == np.uint8 and page.shape == expected.shape
    assert scale == expected_scale and np.array_equal(page, expected)
    assert PAGE_MIN_WIDTH <= page.shape[1] < 2 * PAGE_MIN_WIDTH or width < 2 * PAGE_MIN_WIDTH


def test_a_jpeg_over_the_pixel_budget_is_decoded_smaller_not_refused():
    data = _encode(_page(4000, 2000), "JPEG", quality=80)  # 8 MP: over a 1.5 MP budget
    page, scale = decode_page(data, 8_000_000, 2000)
    assert scale == 2.0 and page.shape == (1000, 2000)  # as wide as asked for
    page, scale = decode_page(data, 1_500_000, 2000)
    assert scale == 4.0 and page.shape == (500, 1000)  # 1/4 is the first scale within budget
    with pytest.raises(ImageTooLarge):  # over the budget even at 1/8: refused on the header
        decode_page(data, 100_000, PAGE_MIN_WIDTH)


def test_damaged_and_other_files_are_named_as_decode_page_names_them():
    data = _encode(_page(1200, 500), "JPEG", quality=85)
    with pytest.raises(TruncatedImage):
        decode_page(data[: len(data) // 2], 8_000_000, PAGE_MIN_WIDTH)
    with pytest.raises(UndecodableImage):
        decode_page(b"\xff\xd8\xff" + b"\0" * 100 + b"\xff\xd9", 8_000_000, 800)
    rgba = np.dstack([np.stack([_page(900, 400)] * 3, axis=2), np.full((400, 900), 255, np.uint8)])
    data = _encode(rgba, "PNG")  # not a grey PNG: Pillow's path, transparency and all
    page, scale = decode_page(data, 8_000_000, PAGE_MIN_WIDTH)
    assert np.array_equal(page, decode_page(data, 8_000_000, PAGE_MIN_WIDTH)[0]) and scale == 1


def test_amount_is_cut_at_the_readers_height_and_boxes_stay_on_the_page(cheques, recognizer):
    tall = 0
    for cheque in cheques[:10]:
        page, scale = decode_page(cheque.image, 8_000_000, PAGE_MIN_WIDTH)
        found = locate_amount(page)
        crop = amount_crop(page, found, READ_HEIGHT)
        assert crop.shape[0] == min(READ_HEIGHT, found.box.height)
        assert abs(crop.shape[1] / crop.shape[0] - found.box.width / found.box.height) < 0.05
        tall += found.box.height > READ_HEIGHT
        amount = read_document(cheque.image, CHEQUE, recognizer).as_dict()["fields"]["amount"]
        box = amount["box"]
        for digit in amount["digits"]:  # in the uploaded page's pixels, inside the amount box
            d = digit["box"]
            assert box["x"] - 3 <= d["x"] and d["x"] + d["width"] <= box["x"] + box["width"] + 3
            assert box["y"] - 3 <= d["y"] and d["y"] + d["height"] <= box["y"] + box["height"] + 3
    assert tall >= 3  # the shrinking was exercised


def test_exif_orientation_is_ignored_as_pillow_ignores_it():
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees": OpenCV would apply it unless told not to
    data = _encode(_page(1700, 780), "JPEG", quality=85, exif=exif.tobytes())
    page, scale = decode_page(data, 8_000_000, PAGE_MIN_WIDTH)
    expected, expected_scale = _pillow_page(data, 8_000_000, PAGE_MIN_WIDTH)
    assert page.shape == expected.shape == (390, 850) and np.array_equal(page, expected)
    assert scale == expected_scale == 2.0  # still landscape: not turned


@pytest.mark.parametrize("mode", ["RGB", "CMYK"])
def test_a_colour_jpeg_gets_pillows_pixels(mode):
    # A colour JPEG's grey is libjpeg's luminance channel through OpenCV and Pillow alike (a grey
    # from the decoded RGB would differ by up to ~20 levels on noise); CMYK stays with Pillow.
    colour = np.random.default_rng(2).integers(0, 256, (500, 1200, 3)).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(colour).convert(mode).save(out, "JPEG", quality=85)
    data = out.getvalue()
    for min_width in (0, PAGE_MIN_WIDTH):
        expected, expected_scale = _pillow_page(data, 8_000_000, min_width)
        page, scale = decode_page(data, 8_000_000, min_width)
        assert scale == expected_scale and np.array_equal(page, expected)


def test_a_colour_jpeg_takes_opencvs_reduced_decode(monkeypatch):
    """A colour scan is decoded by OpenCV like a grey one, not by Pillow (~40% less CPU)."""
    from recognition import decode

    colour = np.random.default_rng(3).integers(0, 256, (500, 1700, 3)).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(colour).save(out, "JPEG", quality=85)
    expected = decode._pillow_page(out.getvalue(), 8_000_000, PAGE_MIN_WIDTH)  # the same pixels

    def no_pillow(*_):
        raise AssertionError("a colour JPEG went through Pillow")

    monkeypatch.setattr(decode, "_pillow_page", no_pillow)
    page, scale = decode_page(out.getvalue(), 8_000_000, PAGE_MIN_WIDTH)
    assert page.shape == (250, 850) and scale == 2.0 and np.array_equal(page, expected[0])

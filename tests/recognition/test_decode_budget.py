"""The decode budget's arithmetic (`recognition.decode._fit_budget`), at each boundary: a JPEG
over the budget is decoded by libjpeg at the largest of 1/2, 1/4, 1/8 scale that fits, and
refused only when even 1/8 does not; any other image over the budget is refused from its header
with its size and the limit; 16-bit images get a quarter of the budget. Written against the
mutants that passed every other test (docs/mutation.md)."""

import functools
import io

import numpy as np
import pytest
from PIL import Image

from recognition.decode import WIDE_COST, check_image, decode_image, decode_page
from recognition.errors import ImageTooLarge, TruncatedImage
from tests.recognition.images import dark_bar_on_white, encode

WIDTH, HEIGHT = 240, 96  # divisible by 8: every reduced scale is exact


def _noise(dtype=np.uint8, scale: int = 1) -> Image.Image:
    pixels = np.random.default_rng(7).integers(0, 256, (HEIGHT, WIDTH))
    return Image.fromarray((pixels * scale).astype(dtype))


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    out = io.BytesIO()
    _noise().save(out, "JPEG")
    return out.getvalue()


@pytest.mark.parametrize(
    "max_pixels, shape",
    [
        (WIDTH * HEIGHT, (HEIGHT, WIDTH)),  # at the budget: every pixel
        (WIDTH * HEIGHT - 1, (HEIGHT // 2, WIDTH // 2)),
        (WIDTH * HEIGHT // 4, (HEIGHT // 2, WIDTH // 2)),  # 1/2 scale exactly at the budget
        (WIDTH * HEIGHT // 4 - 1, (HEIGHT // 4, WIDTH // 4)),
        (WIDTH * HEIGHT // 16, (HEIGHT // 4, WIDTH // 4)),
        (WIDTH * HEIGHT // 16 - 1, (HEIGHT // 8, WIDTH // 8)),
        (WIDTH * HEIGHT // 64, (HEIGHT // 8, WIDTH // 8)),
    ],
)
def test_a_jpeg_over_the_budget_is_decoded_at_the_largest_scale_that_fits(jpeg, max_pixels, shape):
    assert decode_image(jpeg, max_pixels).shape == shape
    # The header check takes it too, and says the image's own size.
    assert check_image(jpeg, max_pixels) == (WIDTH, HEIGHT)


def test_a_jpeg_over_the_budget_even_at_an_eighth_is_refused(jpeg):
    limit = WIDTH * HEIGHT // 64 - 1
    message = f"the image is {WIDTH}x{HEIGHT} pixels, above the limit of {limit} pixels"
    for read in (decode_image, check_image):
        with pytest.raises(ImageTooLarge) as error:
            read(jpeg, limit)
        assert str(error.value) == message and error.value.code == "image_too_large"


@pytest.mark.parametrize("fmt", ["BMP", "WEBP", "TIFF"])
def test_other_formats_get_no_reduced_decode(fmt):
    data = encode(_noise(), fmt)
    assert decode_image(data, WIDTH * HEIGHT).shape == (HEIGHT, WIDTH)
    limit = WIDTH * HEIGHT - 1
    for read in (decode_image, check_image):
        with pytest.raises(ImageTooLarge, match=f"above the limit of {limit} pixels$"):
            read(data, limit)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_sixteen_bit_images_get_a_quarter_of_the_budget(fmt):
    data = encode(_noise(np.uint16, 257), fmt)
    budget = WIDE_COST * WIDTH * HEIGHT
    assert decode_image(data, budget).shape == (HEIGHT, WIDTH)
    assert check_image(data, budget) == (WIDTH, HEIGHT)
    quarter = (budget - 1) // WIDE_COST
    for read in (decode_image, check_image):
        with pytest.raises(ImageTooLarge, match=f"above the limit of {quarter} pixels$"):
            read(data, budget - 1)


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF", "BMP", "GIF"])
def test_a_truncated_file_says_so(fmt):
    data = encode(dark_bar_on_white((400, 300)), fmt)
    with pytest.raises(TruncatedImage) as error:
        decode_image(data[: len(data) * 3 // 4])
    assert str(error.value) == "the image file is truncated: its pixel data ends early"
    assert error.value.code == "truncated_image"


@pytest.mark.parametrize(
    "size, max_pixels", [((201, 101), 5150), ((1001, 999), 250_000), ((803, 7), 2000)]
)
def test_a_jpeg_whose_sides_do_not_divide_by_the_scale_still_decodes_within_the_budget(
    size, max_pixels
):
    # Pillow rounds the asked-for draft size down to a whole quotient: a size rounded up made it
    # choose the next smaller scale and decode over the budget (201x101 at 5,151 pixels of 5,150).
    pixels = np.random.default_rng(3).integers(0, 256, size[::-1]).astype(np.uint8)
    data = encode(Image.fromarray(pixels), "JPEG")
    assert decode_image(data, max_pixels).size <= max_pixels
    page, scale = decode_page(data, max_pixels)
    assert page.size <= max_pixels and scale > 1


def test_a_page_jpeg_over_the_budget_is_reduced_without_a_target_width(jpeg):
    page, scale = decode_page(jpeg, WIDTH * HEIGHT // 4)
    assert page.shape == (HEIGHT // 2, WIDTH // 2) and scale == 2
    # A target width that asks for more shrinking than the budget wins.
    page, scale = decode_page(jpeg, WIDTH * HEIGHT // 4, min_width=WIDTH // 8)
    assert page.shape[1] <= WIDTH // 4 and scale >= 4


@functools.cache
def _jpegs() -> dict[str, bytes]:
    grey, colour = _noise(), _noise().convert("RGB")
    thumbnail = io.BytesIO()
    _noise().resize((64, 40)).save(thumbnail, "JPEG")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the size is still the stored one, as Pillow reports it
    made = {}
    for name, image, options in [
        ("grey", grey, {}), ("colour", colour, {}), ("progressive", grey, {"progressive": True}),
        ("exif", colour, {"exif": exif.tobytes()}), ("cmyk", colour.convert("CMYK"), {}),
        ("app1 thumbnail", grey, {"exif": b"Exif\x00\x00" + thumbnail.getvalue()}),
    ]:  # fmt: skip
        out = io.BytesIO()
        image.save(out, "JPEG", **options)
        made[name] = out.getvalue()
    return made


@pytest.mark.parametrize("name", list(_jpegs()))
def test_a_jpegs_size_from_its_header_is_pillows(name):
    """JPEGs are sized from their frame header without Pillow: the same size, kinds that path
    does not take (CMYK) included."""
    data = _jpegs()[name]
    assert check_image(data) == Image.open(io.BytesIO(data)).size == (WIDTH, HEIGHT)

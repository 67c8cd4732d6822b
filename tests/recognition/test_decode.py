import base64

import numpy as np
import pytest
from PIL import Image

from recognition import (
    EmptyImage,
    ImageTooLarge,
    InvalidDataURL,
    UndecodableImage,
    decode_data_url,
    decode_image,
    prepare,
    to_mnist,
)
from tests.recognition.images import dark_bar_on_white, encode, png_header_only


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF", "BMP", "GIF", "WEBP"])
def test_every_supported_format_decodes_to_luminance(fmt):
    gray = decode_image(encode(dark_bar_on_white(), fmt))
    assert gray.shape == (90, 120) and gray.dtype == np.float32
    assert gray[40, 60] < 0.2 and gray[5, 5] > 0.85  # ink dark, paper light


def test_tiff_reads_the_first_page():
    first, second = dark_bar_on_white(), Image.new("L", (120, 90), 255)
    data = encode(first, "TIFF", save_all=True, append_images=[second])
    assert decode_image(data)[40, 60] < 0.2


def test_canvas_png_with_transparent_background_reads_as_ink_on_paper():
    # A browser canvas: black strokes, everything else fully transparent (0, 0, 0, 0).
    rgba = np.zeros((200, 200, 4), np.uint8)
    rgba[40:160, 90:110, 3] = 255
    gray = decode_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert gray[100, 100] == pytest.approx(0.0) and gray[10, 10] == pytest.approx(1.0)
    digit = to_mnist(gray)
    assert digit.max() == pytest.approx(1.0) and digit[0, 0] == 0.0  # white ink on black


def test_light_strokes_on_transparency_are_composited_onto_black():
    rgba = np.zeros((200, 200, 4), np.uint8)
    rgba[40:160, 90:110] = 255
    gray = decode_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert gray[100, 100] == pytest.approx(1.0) and gray[10, 10] == pytest.approx(0.0)


def test_data_url_round_trip():
    png = encode(dark_bar_on_white(), "PNG")
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    assert decode_data_url(url) == png


@pytest.mark.parametrize(
    "url, says",
    [
        ("iVBORw0KGgo=", "of the form"),  # no data: prefix
        ("data:text/plain;base64,aGVsbG8=", "of the form"),  # not an image type
        ("data:;base64,aGVsbG8=", "image type"),  # no type at all
        ("data:image/png,rawbytes", "base64 encoding"),  # not base64
        ("data:image/png;charset=utf-8,aGVsbG8=", "base64 encoding"),
        ("data:image/png;base64,not*base64!", "not valid base64"),
    ],
)
def test_malformed_data_urls_are_typed_errors(url, says):
    with pytest.raises(InvalidDataURL, match=says) as error:
        decode_data_url(url)
    assert error.value.code == "invalid_data_url"


def test_data_urls_are_read_whatever_their_case_and_surrounding_space():
    png = encode(dark_bar_on_white(), "PNG")
    payload = base64.b64encode(png).decode()
    assert decode_data_url(f"  DATA:Image/PNG;BASE64,{payload}\n") == png
    assert decode_data_url(f"data:image/webp;charset=x;base64,{payload}") == png


def test_data_url_over_the_byte_limit_is_refused_before_decoding():
    url = "data:image/png;base64," + "A" * 4000
    with pytest.raises(ImageTooLarge, match="limit of 1000 bytes") as error:
        decode_data_url(url, max_bytes=1000)
    assert error.value.code == "image_too_large"
    # 4,000 base64 characters are 3,000 bytes: exactly the limit passes, one byte less does not.
    assert len(decode_data_url(url, max_bytes=3000)) == 3000
    with pytest.raises(ImageTooLarge):
        decode_data_url(url, max_bytes=2999)


@pytest.mark.parametrize("data", [b"", b"not an image at all", bytes(range(256)) * 4])
def test_bytes_that_are_not_an_image(data):
    with pytest.raises(UndecodableImage):
        decode_image(data)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF", "BMP", "GIF"])
def test_truncated_files_are_typed_errors(fmt):
    data = encode(dark_bar_on_white((400, 300)), fmt)
    with pytest.raises(UndecodableImage):
        decode_image(data[: len(data) // 2])


@pytest.mark.parametrize("width, height", [(10_000, 5_000), (30_000, 30_000)])
def test_pixel_bomb_is_refused_from_the_header(width, height):
    with pytest.raises(ImageTooLarge, match="pixels"):
        decode_image(png_header_only(width, height), max_pixels=40_000_000)


@pytest.mark.parametrize(
    "image",
    [
        Image.new("L", (50, 50), 255),
        Image.new("L", (50, 50), 0),
        Image.new("L", (50, 50), 128),
        Image.new("RGBA", (50, 50), (0, 0, 0, 0)),
    ],
    ids=["white", "black", "gray", "transparent"],
)
def test_images_without_ink_are_empty(image):
    with pytest.raises(EmptyImage):
        prepare(encode(image, "PNG"))


def test_sixteen_bit_and_palette_images():
    wide = (np.asarray(dark_bar_on_white(), np.uint16) * 257).astype(np.uint16)
    gray = decode_image(encode(Image.fromarray(wide), "PNG"))
    assert gray[40, 60] < 0.2 and gray[5, 5] > 0.85
    palette = dark_bar_on_white().convert("P")
    assert decode_image(encode(palette, "GIF"))[40, 60] < 0.2


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
@pytest.mark.parametrize("size", [(280, 280), (301, 77), (57, 41)])
def test_libspng_decodes_pngs_as_pillow_does(monkeypatch, mode, size):
    """The fast PNG path (libspng + OpenCV) and Pillow agree to within rounding (1/255), shrunk
    or not, with whole or partial shrink boxes."""
    import recognition.decode as decode

    assert decode.pyspng is not None  # a core dependency: the fast path is the one tested
    rng = np.random.default_rng(size[0])
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8).squeeze()
    if mode == "RGBA":
        pixels[..., :3] //= 3  # dark marks: not at the dark/light background decision's edge
    data = encode(Image.fromarray(pixels, mode), "PNG")
    fast = decode_image(data, min_side=28)
    monkeypatch.setattr(decode, "pyspng", None)
    slow = decode_image(data, min_side=28)
    assert fast.shape == slow.shape and fast.dtype == slow.dtype == np.float32
    assert np.abs(fast - slow).max() <= 1 / 255 + 1e-6


def test_pngs_libspng_does_not_take_still_decode(monkeypatch):
    """Palette with tRNS transparency, grey + alpha, 16-bit: Pillow's path, same answers."""
    import recognition.decode as decode

    ink = dark_bar_on_white()
    for image in (ink.convert("P"), ink.convert("LA"), ink.convert("I;16")):
        assert decode.decode_png(encode(image, "PNG"), 10**6) is None
        assert decode_image(encode(image, "PNG"))[40, 60] < 0.2
    palette = ink.convert("P")
    palette.info["transparency"] = 255
    assert decode.decode_png(encode(palette, "PNG", transparency=255), 10**6) is None

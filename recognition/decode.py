"""Bytes in, grayscale pixels out.

Reads PNG, JPEG, TIFF (first page), BMP, GIF (first frame) and WebP, and `data:image/...;base64,`
URLs as sent by a browser canvas. Transparency is composited onto a background that contrasts
with the ink, so a canvas PNG with dark strokes on a transparent background reads as dark ink on
white paper, and light strokes on transparency as light ink on black.
"""

import base64
import binascii
import io
import re
import warnings

import numpy as np
from PIL import Image, ImageStat, UnidentifiedImageError

from recognition.errors import (
    ImageTooLarge,
    InvalidDataURL,
    TruncatedImage,
    UndecodableImage,
)

SUPPORTED_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "GIF", "WEBP")
DEFAULT_MAX_PIXELS = 40_000_000

_DATA_URL = re.compile(r"^data:(image/[a-z0-9.+-]+)?(;[^,]*)?,", re.IGNORECASE)


def decode_data_url(url: str, max_bytes: int | None = None) -> bytes:
    """The bytes inside a `data:image/...;base64,` URL."""
    match = _DATA_URL.match(url.strip()[:200])
    if not match:
        raise InvalidDataURL("expected a data URL of the form 'data:image/png;base64,...'")
    if match.group(1) is None or ";base64" not in (match.group(2) or "").lower():
        raise InvalidDataURL("the data URL must declare an image type and base64 encoding")
    payload = url.strip()[match.end():]
    if max_bytes is not None and len(payload) * 3 // 4 > max_bytes:
        raise ImageTooLarge(f"the image is larger than the limit of {max_bytes} bytes")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidDataURL("the data URL's payload is not valid base64") from exc


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode image bytes to float32 luminance in [0, 1] (0 = black), shape (height, width)."""
    if not data:
        raise UndecodableImage("the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"the image has more pixels than the limit of {max_pixels}") from exc
    except UnidentifiedImageError as exc:
        raise UndecodableImage(
            "not an image in a supported format (PNG, JPEG, TIFF, BMP, GIF, WebP)"
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise UndecodableImage(f"the image header is damaged: {exc}") from exc

    width, height = image.size
    if width < 1 or height < 1:
        raise UndecodableImage("the image has no pixels")
    # Checked on the header, before any pixel is decoded: this is what stops decompression bombs.
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"the image is {width}x{height} pixels, above the limit of {max_pixels} pixels"
        )
    try:
        image.seek(0)  # first page of a TIFF, first frame of a GIF
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.load()
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        if "truncated" in str(exc).lower() or isinstance(exc, EOFError):
            raise TruncatedImage("the image file is truncated: its pixel data ends early") from exc
        raise UndecodableImage(f"the image data is damaged: {exc}") from exc
    return _to_luminance(image)


def _to_luminance(image: Image.Image) -> np.ndarray:
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if not has_alpha:
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            pixels = np.asarray(image, dtype=np.float32)
            top = float(pixels.max()) or 1.0
            return pixels / (65535.0 if top > 255 else 255.0)
        if image.mode == "F":
            pixels = np.asarray(image, dtype=np.float32)
            return np.clip(pixels / max(float(pixels.max()), 1.0), 0, 1)
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0

    # Compositing in Pillow (C) rather than numpy: this is on the canvas hot path.
    rgba = image.convert("RGBA")
    alpha = rgba.getchannel("A")
    if not alpha.getbbox():
        return np.ones((image.height, image.width), np.float32)  # fully transparent: blank
    # Composite onto white when the visible marks are dark (a canvas with black strokes), onto
    # black when they are light: the background must contrast with the ink.
    ink_luma = ImageStat.Stat(rgba.convert("L"), mask=alpha)
    background = (255, 255, 255, 255) if ink_luma.mean[0] < 128 else (0, 0, 0, 255)
    composite = Image.alpha_composite(Image.new("RGBA", rgba.size, background), rgba)
    return np.asarray(composite.convert("L"), dtype=np.float32) / 255.0

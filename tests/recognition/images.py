"""Small image factories for the recognition tests."""

import io
import struct
import zlib

import numpy as np
from PIL import Image


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def dark_bar_on_white(size=(120, 90)) -> Image.Image:
    """A thick dark vertical bar (a '1') on white paper."""
    pixels = np.full(size[::-1], 245, np.uint8)
    pixels[15:75, 55:65] = 20
    return Image.fromarray(pixels)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height but carries almost no data (a pixel bomb)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )

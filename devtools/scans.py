"""Requests made from MNIST test digits: scans (dark ink on light paper) and canvas drawings
(ink as alpha over transparency, as web/static/canvas.js sends them), PNG-encoded."""

from __future__ import annotations

import base64
import io
import zipfile

import numpy as np
from PIL import Image

from devtools.mnist import mnist_test_set


def png(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", **options)
    return out.getvalue()


def scan_png(digit: np.ndarray, scale: int = 2) -> bytes:
    """An MNIST digit as a scan: dark ink on light-grey paper, enlarged, PNG-encoded."""
    paper, ink = 235.0, 20.0
    pixels = paper - digit.astype(np.float32) * (paper - ink) / 255.0
    image = Image.fromarray(pixels.round().astype(np.uint8), "L")
    image = image.resize((28 * scale, 28 * scale), Image.Resampling.BILINEAR)
    return png(image)


def scans(count: int, start: int = 0) -> list[tuple[str, bytes, int]]:
    """(filename, PNG bytes, label) for `count` MNIST test digits from `start`."""
    images, labels = mnist_test_set()
    return [
        (f"scan_{i:05d}.png", scan_png(images[i]), int(labels[i]))
        for i in range(start, start + count)
    ]


def canvas_drawing(digit: np.ndarray, side: int = 280, size: int = 160, at=(60, 40)) -> bytes:
    """A digit as the browser canvas sends it: dark ink as alpha over a transparent background,
    `size` pixels wide at `at` on a `side`-pixel square."""
    alpha = Image.new("L", (side, side), 0)
    alpha.paste(Image.fromarray(digit).resize((size, size), Image.Resampling.BILINEAR), at)
    rgba = Image.new("RGBA", (side, side), (17, 24, 39, 0))
    rgba.putalpha(alpha)
    return png(rgba)


def canvas_png(digit: np.ndarray, rng: np.random.Generator, side: int = 280) -> bytes:
    """A canvas drawing at a random size (45-100 % of the canvas) and position."""
    size = int(side * rng.uniform(0.45, 1.0))
    at = (int(rng.integers(0, side - size + 1)), int(rng.integers(0, side - size + 1)))
    return canvas_drawing(digit, side=side, size=size, at=at)


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def zip_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()

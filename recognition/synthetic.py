"""Realistic inputs made from MNIST digits, for tests and benchmarks.

`render_scan` turns a 28x28 MNIST digit (white on black) into what a scanner delivers: dark ink on
light, slightly uneven paper, sensor noise, any size and position, PNG or JPEG. It is how the
platform's robustness is measured — the model has never seen these images.
"""

import io

import numpy as np
from PIL import Image


def render_scan(
    digit: np.ndarray,
    rng: np.random.Generator,
    image_format: str | None = None,
    scale: float | None = None,
) -> bytes:
    """Encode one uint8 [28, 28] MNIST digit as a scanned-document image."""
    scale = scale if scale is not None else rng.uniform(1.5, 5.0)
    side = max(28, round(28 * scale))
    ink = np.asarray(
        Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC), dtype=np.float32
    )
    ink = np.clip(ink / 255.0, 0.0, 1.0)

    height = side + int(rng.integers(4, side + 8))
    width = side + int(rng.integers(4, side + 8))
    top = int(rng.integers(0, height - side + 1))
    left = int(rng.integers(0, width - side + 1))
    coverage = np.zeros((height, width), dtype=np.float32)
    coverage[top : top + side, left : left + side] = ink

    paper = rng.uniform(0.82, 0.98)
    # A gentle lighting gradient across the page, as flatbed scans have.
    gradient = np.linspace(0, rng.uniform(-0.06, 0.06), width, dtype=np.float32)[None, :]
    ink_level = rng.uniform(0.02, 0.3)
    page = (paper + gradient) * (1 - coverage) + ink_level * coverage
    page += rng.normal(0.0, rng.uniform(0.005, 0.04), page.shape).astype(np.float32)
    pixels = (np.clip(page, 0, 1) * 255).round().astype(np.uint8)

    image_format = image_format or ("JPEG" if rng.random() < 0.5 else "PNG")
    buffer = io.BytesIO()
    options = {"quality": int(rng.integers(60, 95))} if image_format == "JPEG" else {}
    Image.fromarray(pixels).save(buffer, format=image_format, **options)
    return buffer.getvalue()

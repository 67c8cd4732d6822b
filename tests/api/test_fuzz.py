"""No input makes the API answer 5xx: schema-driven fuzzing and a corpus of broken images."""

from __future__ import annotations

import io
import struct
import tempfile
import zlib

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from PIL import Image

from api.config import Settings
from api.main import create_app
from digitflow.settings import PlatformSettings
from tests.api.conftest import data_url, png
from tests.recognition.images import png_header_only

# The fast path's own operations (the bulk path's are fuzzed by its own tests).
FAST_PATH = r"^/(predict|predict-drawing|health|model-info)$"

app = create_app(Settings(model_dir=PlatformSettings().model_dir, data_dir=tempfile.mkdtemp()))
schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex=FAST_PATH)


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_for_any_request_the_schema_allows(case):
    case.call_and_validate(checks=[schemathesis.checks.not_a_server_error])


# ------------------------------------------------------------------- the broken-image corpus


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def digit_image(mode: str = "L", size=(64, 80)) -> Image.Image:
    pixels = np.full(size[::-1], 235, np.uint8)
    pixels[10:70, 28:38] = 20
    return Image.fromarray(pixels).convert(mode)


def png_chunked(width: int, height: int, bit_depth: int, color_type: int, rows: bytes) -> bytes:
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(
            ">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def corpus() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    formats = ("PNG", "JPEG", "TIFF", "BMP", "GIF", "WEBP")
    good = {fmt: encode(digit_image(), fmt) for fmt in formats}
    items = {"zero-bytes": b"", "one-byte": b"\x89"}
    for n in (16, 1000, 100_000):
        items[f"random-{n}"] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    for fmt, data in good.items():
        for share in (0.1, 0.5, 0.9):
            items[f"truncated-{fmt}-{share}"] = data[: int(len(data) * share)]
        corrupted = bytearray(data)
        for i in rng.integers(len(data) // 4, len(data), 20):
            corrupted[i] ^= 0xFF
        items[f"bitflipped-{fmt}"] = bytes(corrupted)
        items[f"header-only-{fmt}"] = data[:32]
    items["huge-dims-png"] = png_header_only(30000, 30000)
    items["huge-dims-wide-png"] = png_header_only(1_000_000, 1)
    items["zero-width-png"] = png_header_only(0, 10)
    frames = [digit_image(), Image.new("L", (64, 80), 255), digit_image().rotate(90)]
    items["gif-multiframe"] = encode(frames[0].convert("P"), "GIF", save_all=True,
                                     append_images=[f.convert("P") for f in frames[1:]])
    items["tiff-multipage"] = encode(frames[1], "TIFF", save_all=True, append_images=frames[2:])
    sixteen = (np.asarray(digit_image(), np.uint16) * 257).astype(">u2")
    items["png-16-bit-gray"] = png_chunked(
        64, 80, 16, 0, b"".join(b"\x00" + row.tobytes() for row in sixteen))
    items["png-16-bit-pil"] = encode(Image.fromarray(sixteen.astype(np.uint16)), "PNG")
    items["jpeg-cmyk"] = encode(digit_image("CMYK"), "JPEG")
    palette = digit_image("P")
    items["png-palette-transparency"] = encode(palette, "PNG", transparency=0)
    items["gif-transparency"] = encode(palette, "GIF", transparency=0)
    items["png-la"] = encode(digit_image("LA"), "PNG")
    items["png-1-bit"] = encode(digit_image("1"), "PNG")
    items["png-all-transparent"] = png(Image.new("RGBA", (50, 50), (0, 0, 0, 0)))
    items["tiff-float"] = encode(Image.fromarray(np.asarray(digit_image(), np.float32)), "TIFF")
    items["svg"] = b'<svg xmlns="http://www.w3.org/2000/svg"><text>7</text></svg>'
    items["pdf"] = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF"
    items["1x1-png"] = encode(Image.new("L", (1, 1), 0), "PNG")
    items["icc-junk-png"] = encode(digit_image(), "PNG", icc_profile=b"not a real profile")
    return items


CORPUS = corpus()


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_broken_images_never_cause_a_server_error(client, name):
    data = CORPUS[name]
    for response in (
        client.post("/predict", files={"file": (name, data, "application/octet-stream")}),
        client.post("/predict-drawing", json={"image": data_url(data)}),
    ):
        assert response.status_code < 500, (name, response.status_code, response.text)
        body = response.json()
        if response.status_code == 200:
            assert 0 <= body["digit"] <= 9 and len(body["probabilities"]) == 10
        else:
            assert 400 <= response.status_code < 500 and body["detail"] and body["code"]

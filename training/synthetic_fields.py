"""Synthetic scanned fields composed from MNIST digits: cheque amounts, account numbers, dates.

A field is a row of 1 to 12 handwritten digits (MNIST digits, cropped to their ink and scaled to
a height that varies a little from digit to digit), on paper, maybe inside printed structure:

- `box` (a rectangle around the field), `comb` (one cell per digit), `underline` (a baseline),
  each with a line thickness of 1 to 4 pixels and a grey level of its own; `tight_box`, a box
  drawn against the digits, which the tallest strokes touch;
- `separators` (`.` `,` `-` `/` and wider gaps between groups), which are not digits;
- `rotation` (up to 3 degrees), `blur`, `jpeg` (quality 40-80), `uneven_light`, `noise`;
- `touching` neighbours (overlapping by a pixel or two) and `broken` strokes (a thin band of a
  digit erased).

Use training digits to tune the reader, test digits to evaluate it. Everything is drawn from
`numpy.random.Generator`s, so a seed gives the same fields every time.
"""

import io
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

STRUCTURES = ("none", "box", "comb", "underline")
VARIATIONS = (
    "plain", "box", "comb", "underline", "separators", "rotation", "blur", "jpeg",
    "uneven_light", "touching", "broken", "long",
)  # fmt: skip


@dataclass
class FieldSpec:
    """What to draw: chosen at random by `random_spec` or set by hand."""

    count: int = 5
    structure: str = "none"
    separators: bool = False
    rotation: float = 0.0
    blur: float = 0.0
    jpeg_quality: int | None = None
    uneven_light: bool = False
    noise: float = 0.01
    touching: bool = False
    broken: bool = False
    height: int = 40  # digit height in pixels
    line_thickness: int = 2
    tight: bool = False  # the box drawn against the digits: the tallest strokes touch it
    tags: list[str] = field(default_factory=list)


@dataclass
class SyntheticField:
    image: bytes  # PNG or JPEG, dark ink on light paper
    text: str  # the digits, without separators
    spec: FieldSpec


def variation_spec(name: str, rng: np.random.Generator) -> FieldSpec:
    """A field showing one variation on top of mild paper noise (for per-variation accuracy)."""
    spec = FieldSpec(
        count=int(rng.integers(1, 8)),
        height=int(rng.integers(28, 56)),
        line_thickness=int(rng.integers(1, 5)),
        tags=[name],
    )
    if name in ("box", "comb", "underline"):
        spec.structure = name
    elif name == "tight_box":
        spec.structure, spec.tight = "box", True
    elif name == "separators":
        spec.separators, spec.count = True, int(rng.integers(3, 9))
    elif name == "rotation":
        spec.rotation = float(rng.uniform(-3, 3))
    elif name == "blur":
        spec.blur = float(rng.uniform(0.6, 1.2))
    elif name == "jpeg":
        spec.jpeg_quality = int(rng.integers(40, 80))
    elif name == "uneven_light":
        spec.uneven_light = True
    elif name == "touching":
        spec.touching, spec.count = True, int(rng.integers(2, 8))
    elif name == "broken":
        spec.broken = True
    elif name == "long":
        spec.count = int(rng.integers(8, 13))
    return spec


def cheque_spec(rng: np.random.Generator) -> FieldSpec:
    """A cheque amount as the issue's bar describes it: 1-7 digits, boxed or not, noise,
    rotation up to 3 degrees, blur, JPEG, digits not touching."""
    return FieldSpec(
        count=int(rng.integers(1, 8)),
        structure="box" if rng.random() < 0.5 else "none",
        rotation=float(rng.uniform(-3, 3)),
        blur=float(rng.uniform(0, 1.0)),
        jpeg_quality=int(rng.integers(50, 95)) if rng.random() < 0.5 else None,
        noise=float(rng.uniform(0.005, 0.04)),
        height=int(rng.integers(28, 60)),
        line_thickness=int(rng.integers(1, 4)),
        tags=["cheque"],
    )


def scan_spec(rng: np.random.Generator, count: int | None = None) -> FieldSpec:
    """A cheque amount as a 300 dpi scanner crops it: digits 6-9 mm tall (70-110 px), printed
    lines 0.2-0.5 mm (2-6 px), the field a few hundred by ~1,000 pixels; PNG or JPEG."""
    spec = cheque_spec(rng)
    spec.count = count or spec.count
    spec.height = int(rng.integers(70, 111))
    spec.line_thickness = int(rng.integers(2, 7))
    spec.blur = float(rng.uniform(0, 2.0))
    spec.tags = ["scan300"]
    return spec


def mixed_spec(rng: np.random.Generator) -> FieldSpec:
    """Every variation at once, each with some probability (the tuning distribution)."""
    return FieldSpec(
        count=int(rng.integers(1, 13)),
        structure=STRUCTURES[int(rng.integers(len(STRUCTURES)))],
        separators=rng.random() < 0.25,
        rotation=float(rng.uniform(-3, 3)) if rng.random() < 0.5 else 0.0,
        blur=float(rng.uniform(0.5, 1.1)) if rng.random() < 0.3 else 0.0,
        jpeg_quality=int(rng.integers(45, 90)) if rng.random() < 0.4 else None,
        uneven_light=rng.random() < 0.3,
        noise=float(rng.uniform(0.005, 0.04)),
        touching=rng.random() < 0.1,
        broken=rng.random() < 0.15,
        height=int(rng.integers(26, 60)),
        line_thickness=int(rng.integers(1, 5)),
        tags=["mixed"],
    )


def _digit_ink(image: np.ndarray, height: int) -> np.ndarray:
    """An MNIST digit cropped to its ink and scaled to `height` pixels, float ink in [0, 1]."""
    rows, cols = np.flatnonzero(image.max(axis=1) > 30), np.flatnonzero(image.max(axis=0) > 30)
    crop = image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32) / 255.0
    scale = height / crop.shape[0]
    size = (max(1, round(crop.shape[1] * scale)), height)
    return np.clip(cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC), 0, 1)


def _separator(char: str, height: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A separator's ink and its vertical offset from the digits' top."""
    stroke = max(2, height // 9)
    if char == " ":
        return np.zeros((height, int(height * rng.uniform(0.8, 1.2))), np.float32), 0
    if char == "/":  # leaning 40-60 degrees, as people write them in dates
        lean = np.tan(np.radians(rng.uniform(40, 60)))
        ink = np.zeros((height, int(height * lean) + 2 * stroke), np.float32)
        cv2.line(ink, (ink.shape[1] - stroke, 0), (stroke, height - 1), 1.0, stroke, cv2.LINE_AA)
        return ink, 0
    if char == "-":
        ink = np.zeros((stroke + 2, height // 2), np.float32)
        cv2.line(ink, (1, stroke // 2 + 1), (ink.shape[1] - 2, stroke // 2 + 1), 1.0, stroke)
        return ink, height // 2 - stroke
    side = stroke + 3
    ink = np.zeros((side * (2 if char == "," else 1), side), np.float32)
    cv2.circle(ink, (side // 2, side // 2), max(1, side // 2 - 1), 1.0, -1, cv2.LINE_AA)
    if char == ",":
        cv2.line(
            ink, (side // 2, side // 2), (side // 4, ink.shape[0] - 1), 1.0, max(1, stroke // 2)
        )
    return ink, height - side + (side // 2 if char == "," else 0)


def _layout(spec: FieldSpec, digits: list[np.ndarray], rng) -> tuple[list, list[str]]:
    """Pieces (ink, x, y) in field coordinates; digits sit on a common baseline, jittered."""
    h = spec.height
    pieces, x, chars = [], 0, []
    seps = set()
    if spec.separators and len(digits) > 1:
        seps = set(
            rng.choice(
                np.arange(1, len(digits)), size=min(2, len(digits) - 1), replace=False
            ).tolist()
        )
    cell = int(h * 1.35)
    for i, ink in enumerate(digits):
        if i in seps:
            char = "./-, "[int(rng.integers(5))] if spec.structure != "comb" else " "
            sep, dy = _separator(char, h, rng)
            gap = int(h * rng.uniform(0.1, 0.25))
            pieces.append((sep, x + gap, dy))
            x += gap + sep.shape[1]
            chars.append(char)
        if spec.structure == "comb":
            left = i * cell + (cell - ink.shape[1]) // 2
            pieces.append((ink, left, int(h * 0.17) + int(rng.integers(-2, 3))))
            x = left + ink.shape[1]
            continue
        gap = -int(rng.integers(1, 3)) if spec.touching else int(h * rng.uniform(0.08, 0.4))
        x = x + (gap if i else 0)
        pieces.append((ink, x, int(rng.integers(-h // 12, h // 12 + 1))))
        x += ink.shape[1]
    return pieces, chars


def _break_stroke(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Erase a thin band across the digit: a pen that skipped."""
    ink = ink.copy()
    band = max(1, ink.shape[0] // 20)
    if rng.random() < 0.5:
        y = int(rng.integers(ink.shape[0] // 4, 3 * ink.shape[0] // 4))
        ink[y : y + band] = 0
    else:
        x = int(rng.integers(ink.shape[1] // 4, max(ink.shape[1] // 4 + 1, 3 * ink.shape[1] // 4)))
        ink[:, x : x + band] = 0
    return ink


def _compose(spec: FieldSpec, pieces: list, rng: np.random.Generator) -> np.ndarray:
    """Ink coverage of the whole field (printed lines included), before paper and scanning."""
    h = spec.height
    margin = int(h * rng.uniform(0.25, 0.6))
    top = min(y for _, _, y in pieces)
    width = max(x + ink.shape[1] for ink, x, _ in pieces) + 2 * margin
    height = max(y + ink.shape[0] for ink, _, y in pieces) - top + 2 * margin
    if spec.structure == "comb":
        cells = (width - 2 * margin + h) // int(h * 1.35) + 1
        width = cells * int(h * 1.35) + 2 * margin
    canvas = np.zeros((height, width), np.float32)
    for ink, x, y in pieces:
        region = canvas[
            y - top + margin : y - top + margin + ink.shape[0],
            x + margin : x + margin + ink.shape[1],
        ]
        np.maximum(region, ink[: region.shape[0], : region.shape[1]], out=region)
    _draw_structure(canvas, spec, margin, rng)
    return canvas


def _draw_structure(canvas: np.ndarray, spec: FieldSpec, margin: int, rng) -> None:
    if spec.structure == "none":
        return
    height, width = canvas.shape
    level = float(rng.uniform(0.5, 1.0))
    t = spec.line_thickness
    inset = int(margin * (rng.uniform(0.8, 1.0) if spec.tight else rng.uniform(0.2, 0.7)))
    left, right, top, bottom = inset, width - 1 - inset, inset, height - 1 - inset
    lines = canvas.copy() * 0
    if spec.structure == "underline":
        y = height - 1 - int(margin * rng.uniform(0.3, 0.9))
        cv2.line(lines, (left, y), (right, y), level, t)
    else:
        cv2.rectangle(lines, (left, top), (right, bottom), level, t)
    if spec.structure == "comb":
        cell = int(spec.height * 1.35)
        for x in range(margin + cell, right - cell // 3, cell):
            cv2.line(lines, (x, top), (x, bottom), level, t)
    np.maximum(canvas, lines, out=canvas)


def _scan(coverage: np.ndarray, spec: FieldSpec, rng: np.random.Generator) -> bytes:
    if spec.rotation:
        h, w = coverage.shape
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), spec.rotation, 1.0)
        coverage = cv2.warpAffine(coverage, matrix, (w, h), flags=cv2.INTER_LINEAR)
    if spec.blur:
        coverage = cv2.GaussianBlur(coverage, (0, 0), spec.blur)
    h, w = coverage.shape
    paper = np.full((h, w), rng.uniform(0.82, 0.98), np.float32)
    if spec.uneven_light:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        paper -= rng.uniform(0.15, 0.35) * (xx / w) * rng.uniform(0.5, 1.0) + 0.08 * (yy / h)
    else:
        paper += np.linspace(0, rng.uniform(-0.05, 0.05), w, dtype=np.float32)[None, :]
    ink_level = rng.uniform(0.02, 0.3)
    page = paper * (1 - coverage) + ink_level * coverage
    page += rng.normal(0.0, spec.noise, page.shape).astype(np.float32)
    return encode_scan(page, spec.jpeg_quality)


def encode_scan(page: np.ndarray, jpeg_quality: int | None) -> bytes:
    """A float page in [0, 1] as the scanner's file: JPEG at that quality, else PNG."""
    pixels = (np.clip(page, 0, 1) * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    if jpeg_quality:
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=jpeg_quality)
    else:
        Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def render_field(
    spec: FieldSpec, images: np.ndarray, labels: np.ndarray, rng: np.random.Generator
) -> SyntheticField:
    """Draw `spec` with digits picked at random from `images`/`labels` (uint8 MNIST)."""
    chosen = rng.integers(len(labels), size=spec.count)
    digits = []
    for i in chosen:
        ink = _digit_ink(images[i], max(12, int(spec.height * rng.uniform(0.85, 1.1))))
        digits.append(_break_stroke(ink, rng) if spec.broken and rng.random() < 0.5 else ink)
    pieces, _ = _layout(spec, digits, rng)
    coverage = _compose(spec, pieces, rng)
    text = "".join(str(int(labels[i])) for i in chosen)
    return SyntheticField(_scan(coverage, spec, rng), text, spec)


def fields(kind: str, count: int, images, labels, seed: int) -> list[SyntheticField]:
    """`count` fields of one kind: a variation name, `cheque`, `scan300` or `mixed`."""
    rng = np.random.default_rng(seed)
    make = {"cheque": cheque_spec, "mixed": mixed_spec, "scan300": scan_spec}.get(kind)
    out = []
    for _ in range(count):
        spec = make(rng) if make else variation_spec(kind, rng)
        out.append(render_field(spec, images, labels, rng))
    return out

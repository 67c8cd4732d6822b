"""Synthetic marks that are not digits, for the model's 11th class ("not a digit").

A reader that only knows ten classes must call a tap, a dash, a letter "A" or a "#" one of the
ten digits, often with high confidence. Training with an extra class of such marks gives the
model somewhere to put them, and the serving path turns that class's probability into lower
confidence and a review flag. Every mark passes through the serving normalisation
(`recognition.preprocess.to_mnist`), exactly as a digit would.

Kinds: dots, dashes, letters and symbols drawn from pen strokes, letters and symbols from fonts
(only those that cannot pass for a digit: no O, I, l, S, Z, B, G, b, g, q ...), scribbles,
smudges, and two MNIST digits side by side (a segmentation that failed to split).
"""

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from recognition.preprocess import to_mnist

NOT_A_DIGIT = 10
CANVAS = 64
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
# Characters that do not look like any digit, in any common font or hand.
FONT_CHARS = "ACEFHKMNPRUVWXYacefhkmnprtuvwx#%@*+=<>$&~^?"
# Letters and symbols as pen strokes in a unit square (x right, y down).
STROKES = {
    "A": [[(0.1, 1), (0.5, 0), (0.9, 1)], [(0.28, 0.6), (0.72, 0.6)]],
    "E": [[(0.85, 0), (0.15, 0), (0.15, 1), (0.85, 1)], [(0.15, 0.5), (0.7, 0.5)]],
    "F": [[(0.85, 0), (0.15, 0), (0.15, 1)], [(0.15, 0.5), (0.7, 0.5)]],
    "H": [[(0.15, 0), (0.15, 1)], [(0.85, 0), (0.85, 1)], [(0.15, 0.5), (0.85, 0.5)]],
    "K": [[(0.2, 0), (0.2, 1)], [(0.85, 0), (0.2, 0.55)], [(0.4, 0.4), (0.85, 1)]],
    "M": [[(0.1, 1), (0.15, 0), (0.5, 0.6), (0.85, 0), (0.9, 1)]],
    "N": [[(0.15, 1), (0.15, 0), (0.85, 1), (0.85, 0)]],
    "W": [[(0, 0), (0.25, 1), (0.5, 0.35), (0.75, 1), (1, 0)]],
    "X": [[(0.1, 0), (0.9, 1)], [(0.9, 0), (0.1, 1)]],
    "#": [[(0.35, 0), (0.25, 1)], [(0.75, 0), (0.65, 1)], [(0, 0.33), (1, 0.33)],
          [(0, 0.67), (1, 0.67)]],
    "+": [[(0.5, 0.1), (0.5, 0.9)], [(0.1, 0.5), (0.9, 0.5)]],
    "*": [[(0.5, 0), (0.5, 1)], [(0.1, 0.25), (0.9, 0.75)], [(0.9, 0.25), (0.1, 0.75)]],
    "=": [[(0.1, 0.35), (0.9, 0.35)], [(0.1, 0.65), (0.9, 0.65)]],
}  # fmt: skip
KINDS = ("font", "strokes", "scribble", "dot", "dash", "smudge", "pair")
WEIGHTS = (0.3, 0.2, 0.14, 0.08, 0.08, 0.06, 0.14)


def _fonts() -> list[Path]:
    return sorted(FONT_DIR.glob("*.ttf")) if FONT_DIR.is_dir() else []


def _font_mark(rng: np.random.Generator) -> np.ndarray:
    fonts = _fonts()
    char = FONT_CHARS[int(rng.integers(len(FONT_CHARS)))]
    size = int(rng.integers(28, 48))
    if fonts:
        font = ImageFont.truetype(str(fonts[int(rng.integers(len(fonts)))]), size)
    else:
        font = ImageFont.load_default(size)
    image = Image.new("L", (CANVAS, CANVAS), 0)
    ImageDraw.Draw(image).text((CANVAS / 2, CANVAS / 2), char, fill=255, font=font, anchor="mm")
    image = image.rotate(float(rng.uniform(-15, 15)), resample=Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float32) / 255.0


def _draw(strokes, rng: np.random.Generator, jitter: float = 0.05) -> np.ndarray:
    canvas = np.zeros((CANVAS, CANVAS), dtype=np.float32)
    width, height = rng.uniform(24, 50), rng.uniform(30, 50)
    left, top = (CANVAS - width) / 2, (CANVAS - height) / 2
    thickness = int(rng.integers(2, 6))
    for stroke in strokes:
        points = np.asarray(stroke, dtype=np.float64)
        points = points + rng.normal(0, jitter, points.shape)
        pixels = np.stack([left + points[:, 0] * width, top + points[:, 1] * height], axis=1)
        cv2.polylines(canvas, [pixels.round().astype(np.int32)], False, 1.0, thickness,
                      cv2.LINE_AA)  # fmt: skip
    return canvas


def _stroke_mark(rng: np.random.Generator) -> np.ndarray:
    names = list(STROKES)
    return _draw(STROKES[names[int(rng.integers(len(names)))]], rng)


def _scribble(rng: np.random.Generator) -> np.ndarray:
    # A tangled random walk: many turns, so that it is unlike any digit's few strokes.
    steps = rng.normal(0, 0.25, (int(rng.integers(9, 24)), 2))
    points = np.clip(0.5 + np.cumsum(steps, axis=0) * 0.5, 0, 1)
    return _draw([points.tolist()], rng, jitter=0.0)


def _dot(rng: np.random.Generator) -> np.ndarray:
    canvas = np.zeros((CANVAS, CANVAS), dtype=np.float32)
    radius = int(rng.integers(2, 9))
    centre = (int(rng.integers(20, 44)), int(rng.integers(20, 44)))
    cv2.ellipse(canvas, centre, (radius, max(1, int(radius * rng.uniform(0.6, 1.0)))),
                float(rng.uniform(0, 180)), 0, 360, 1.0, -1, cv2.LINE_AA)  # fmt: skip
    return canvas


def _dash(rng: np.random.Generator) -> np.ndarray:
    length, angle = rng.uniform(0.5, 1.0), np.deg2rad(rng.uniform(-25, 25))
    dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
    return _draw([[(0.5 - dx, 0.5 - dy), (0.5 + dx, 0.5 + dy)]], rng, jitter=0.01)


def _smudge(rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float32)
    cy, cx = rng.uniform(22, 42, 2)
    sy, sx = rng.uniform(4, 14, 2)
    blob = np.exp(-(((yy - cy) / sy) ** 2 + ((xx - cx) / sx) ** 2) / 2)
    blob *= rng.uniform(0.5, 1.0) * (1 + rng.normal(0, 0.25, blob.shape))
    return np.clip(blob, 0, 1).astype(np.float32)


def _pair(rng: np.random.Generator, digits: np.ndarray) -> np.ndarray:
    a, b = (digits[int(i)].astype(np.float32) / 255.0 for i in rng.integers(len(digits), size=2))
    overlap = int(rng.integers(2, 10))  # MNIST digits have ~4 px of margin each side
    canvas = np.zeros((28, 56 - overlap), dtype=np.float32)
    canvas[:, :28] = a
    canvas[:, 28 - overlap :] = np.maximum(canvas[:, 28 - overlap :], b)
    return canvas


def make_nondigits(count: int, digits: np.ndarray, seed: int) -> np.ndarray:
    """`count` non-digit marks as model inputs, float32 [count, 28, 28] in MNIST form.

    `digits` (uint8 MNIST images) feed the side-by-side pairs: pass training digits for
    training data and test digits for test marks.
    """
    rng = np.random.default_rng(seed)
    makers = {
        "font": _font_mark,
        "strokes": _stroke_mark,
        "scribble": _scribble,
        "dot": _dot,
        "dash": _dash,
        "smudge": _smudge,
        "pair": lambda r: _pair(r, digits),
    }
    kinds = rng.choice(len(KINDS), size=count, p=np.asarray(WEIGHTS) / sum(WEIGHTS))
    out = np.empty((count, 28, 28), dtype=np.float32)
    for i, kind in enumerate(kinds):
        mark = makers[KINDS[kind]](rng)
        if rng.random() < 0.3:
            mark = cv2.GaussianBlur(mark, (3, 3), 0)
        out[i] = to_mnist(mark)
    return out


def add_nondigits(x: np.ndarray, y: np.ndarray, share: float, digits: np.ndarray, seed: int):
    """Model inputs [N, 28, 28, 1] and labels with `share` x N non-digit marks mixed in."""
    count = int(round(len(y) * share))
    marks = make_nondigits(count, digits, seed)[..., np.newaxis]
    x = np.concatenate([x, marks])
    y = np.concatenate([y.astype(np.int64), np.full(count, NOT_A_DIGIT, dtype=np.int64)])
    order = np.random.default_rng(seed + 1).permutation(len(y))
    return x[order], y[order]


# Share of non-digit marks added to each split (relative to its digits), and their seeds: the
# validation and test marks come from seeds of their own, the test pairs from MNIST test digits.
SHARE = 0.15
VAL_SEED, TEST_SEED = 1011, 2027


def training_inputs(split, seed: int):
    """(x_train, y_train, x_val, y_val) model inputs with non-digit marks mixed in."""
    from training.data import model_inputs

    x_train, y_train = add_nondigits(
        model_inputs(split.x_train), split.y_train, SHARE, split.x_train, seed
    )
    x_val, y_val = validation_inputs(split)
    return x_train, y_train, x_val, y_val


def validation_inputs(split):
    from training.data import model_inputs

    return add_nondigits(model_inputs(split.x_val), split.y_val, SHARE, split.x_val, VAL_SEED)


def test_inputs(split):
    from training.data import model_inputs

    return add_nondigits(model_inputs(split.x_test), split.y_test, SHARE, split.x_test, TEST_SEED)

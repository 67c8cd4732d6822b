"""MNIST-faithful normalisation: any grayscale image in, a 28x28 digit as MNIST draws it out.

MNIST digits are white ink on black, their ink bounding box fitted into 20x20 keeping the aspect
ratio, then placed in a 28x28 field so that the centre of mass sits at the centre. Scans are the
other way round (dark ink on light paper), with noise, at any size and position; canvas drawings
are off-centre and of any size. Everything that reaches the model passes through `to_mnist` —
serving, the workers and training alike — so what the model was trained on is what it is shown.
"""

import cv2
import numpy as np
from PIL import Image

from recognition.errors import EmptyImage

MNIST_SIZE = 28
FIT_SIZE = 20
# Decoded images are shrunk while their shorter side stays at least this many pixels: a digit
# is normalised to 20x20, and a 600 dpi scan or a retina canvas has pixels to spare.
WORK_MIN_SIDE = 128
# Contrast below this (in [0, 1]) is paper texture, not ink.
MIN_CONTRAST = 0.15
# Share of the ink range above which a pixel counts as ink for the bounding box.
INK_LEVEL = 0.3
# Intensities below this share of the ink range are paper noise and are cleared.
NOISE_FLOOR = 0.2
# Images at least this large get speckle removal before the bounding box is taken.
DESPECKLE_MIN_SIDE = 64
# Where a dark border may be a printed box along the image's edge, paper is looked for on rings
# (this many, evenly spaced) up to this share of the shorter side in from the edge: a ring with
# at least this share of light pixels is paper.
PAPER_RING, PAPER_RINGS, RING_LIGHT = 0.2, 12, 0.75
_BELOW_NOISE_FLOOR = float(np.nextafter(np.float32(NOISE_FLOOR), np.float32(0)))


def to_mnist(gray: np.ndarray) -> np.ndarray:
    """One digit: grayscale float32 [H, W] in [0, 1] -> float32 [28, 28], white ink on black."""
    return ink_digit(*ink_and_mask(gray))[0]


def ink_and_mask(gray: np.ndarray, drawn: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Ink intensity (0 = paper, 1 = full ink) and the despeckled mask of inked pixels, as
    `to_mnist` sees them. Raises EmptyImage when there is no ink. `drawn`: a canvas drawing,
    whose dark border is its background, never a printed box along the edge (no paper rings
    are looked for)."""
    return _ink(gray, boxed=not drawn)


def ink_digit(ink: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """All the ink as one MNIST-form digit, and its ink box (x0, y0, x1, y1)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return fit_digit(ink[y0:y1, x0:x1]), (x0, y0, x1, y1)


def segment_digits(gray: np.ndarray, min_share: float = 0.02) -> list[np.ndarray]:
    """Several digits written side by side (a form's account-number box): one 28x28 per digit.

    Digits are split at columns that hold no ink, so they must not touch; marks with less than
    `min_share` of the ink are dropped as specks.
    """
    ink, mask = _ink(gray)
    has_ink = mask.any(axis=0)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], has_ink.astype(np.int8), [0]))))
    total = ink.sum()
    digits = []
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        piece_mask = mask[:, start:stop]
        rows = np.flatnonzero(piece_mask.any(axis=1))
        piece = ink[rows[0] : rows[-1] + 1, start:stop]
        if piece.sum() >= min_share * total:
            digits.append(fit_digit(piece))
    return digits


def normalize_mnist(images: np.ndarray) -> np.ndarray:
    """MNIST's own uint8 [N, 28, 28] images through the same path the platform serves."""
    out = np.empty(images.shape, dtype=np.float32)
    for i, image in enumerate(images):
        out[i] = to_mnist(image.astype(np.float32) / 255.0)
    return out


def _ink(gray: np.ndarray, boxed: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Ink intensity (0 = paper, 1 = full ink) and a despeckled mask of inked pixels.

    Every document passes here, so the float32 steps are done in place, in the same order (and
    so to the same bits) as the plain expressions they replace."""
    gray = np.asarray(gray, dtype=np.float32)
    paper = _median(np.concatenate((gray[0], gray[-1], gray[:, 0], gray[:, -1])))
    # Paper is whatever the border mostly is: light paper means dark ink, as on scans. A dark
    # border around light paper is a printed box drawn along the image's edge (a thick one may
    # cover half the image): there the paper is what lies inside it.
    if paper <= 0.5:
        paper = _paper_inside(gray, paper, boxed)
    if paper > 0.5:
        ink = np.subtract(1.0, gray, dtype=np.float32)
        ink -= 1.0 - paper
    else:
        ink = gray - paper
    contrast = float(ink.max())
    if contrast < MIN_CONTRAST:
        raise EmptyImage("the image holds no ink: it is blank or has no visible strokes")
    ink /= contrast
    # `ink[ink < NOISE_FLOOR] = 0.0` to the bit, ~5x faster: OpenCV keeps what is above the
    # float32 just below the floor, i.e. at or above it.
    cv2.threshold(ink, _BELOW_NOISE_FLOOR, 0.0, cv2.THRESH_TOZERO, dst=ink)

    mask = ink > INK_LEVEL
    if min(mask.shape) >= DESPECKLE_MIN_SIDE:
        cleaned = _despeckle(mask)
        if cleaned.any():
            mask = cleaned
    if not mask.any():
        raise EmptyImage("the image holds no ink: it is blank or has no visible strokes")
    return ink, mask


def _paper_inside(gray: np.ndarray, border: float, boxed: bool = True) -> float:
    """The paper's shade when the border is dark: light paper if most of the image is light, or
    if a ring near the border is nearly all light (the paper between a box drawn along the edge
    and the digit it holds); else the dark border's (white ink on black, as MNIST and canvas
    drawings are: a digit's strokes do not run all round a ring near the border; none of
    MNIST's 70,000 digits is taken the other way). Without `boxed` (a canvas drawing) no
    rings are looked at."""
    if 2 * np.count_nonzero(gray > 0.5) > gray.size:
        return _median(gray.ravel())
    height, width = gray.shape
    deepest = int(PAPER_RING * min(height, width))
    if deepest < 1 or not boxed:
        return border
    for d in np.unique(np.linspace(1, deepest, PAPER_RINGS).astype(int)):
        inner = gray[d : height - d, d : width - d]
        ring = np.concatenate((inner[0], inner[-1], inner[:, 0], inner[:, -1]))
        if np.count_nonzero(ring > 0.5) >= RING_LIGHT * len(ring):
            return _median(ring)
    return border


def _median(values: np.ndarray) -> float:
    """`np.median` of a float32 vector, to the same bits, without its generic overhead."""
    middle = len(values) // 2
    if len(values) % 2:
        return float(np.partition(values, middle)[middle])
    low, high = np.partition(values, (middle - 1, middle))[middle - 1 : middle + 1]
    return float((low + high) / np.float32(2))


def _despeckle(mask: np.ndarray) -> np.ndarray:
    """Drop inked pixels with fewer than 3 inked neighbours: specks of scanner dust go, strokes
    (two or more pixels wide) stay. The 3x3 sum (the pixel and its 8 neighbours, none beyond
    the edge) by OpenCV: an inked pixel keeps when it is at least 4, the same pixels as
    counting the neighbours in numpy, in a fifth of the time."""
    around = cv2.boxFilter(mask.view(np.uint8), -1, (3, 3), normalize=False,
                           borderType=cv2.BORDER_CONSTANT)  # fmt: skip
    return mask & (around >= 4)


def fit_digit(crop: np.ndarray) -> np.ndarray:
    """Fit an ink crop into 20x20 keeping aspect ratio; centre its mass in 28x28.

    The model was trained on exactly this (Pillow's bilinear resampling, then the mass centre):
    the steps below are the plain numpy expressions, done with fewer temporaries."""
    height, width = crop.shape
    scale = FIT_SIZE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size != (width, height):
        source = Image.frombuffer("F", (width, height), np.ascontiguousarray(crop, np.float32),
                                  "raw", "F", 0, 1)  # fmt: skip
        resized = source.resize(size, Image.Resampling.BILINEAR)
        crop = np.frombuffer(resized.tobytes(), np.float32).reshape(size[1], size[0])
    crop = crop / max(float(crop.max()), 1e-6)
    np.minimum(np.maximum(crop, 0.0, out=crop), 1.0, out=crop)  # np.clip, without its wrapper

    total = float(crop.sum())
    cy = float((crop.sum(axis=1) * np.arange(crop.shape[0])).sum()) / total
    cx = float((crop.sum(axis=0) * np.arange(crop.shape[1])).sum()) / total
    top = min(max(round(MNIST_SIZE / 2 - 0.5 - cy), 0), MNIST_SIZE - crop.shape[0])
    left = min(max(round(MNIST_SIZE / 2 - 0.5 - cx), 0), MNIST_SIZE - crop.shape[1])
    out = np.zeros((MNIST_SIZE, MNIST_SIZE), dtype=np.float32)
    out[top : top + crop.shape[0], left : left + crop.shape[1]] = crop
    return out


def fit_crop(crop: np.ndarray) -> np.ndarray:
    """`fit_digit` done by OpenCV (area resampling, moments): about twice as fast, for the
    segmenter's many crops. Single digits keep `fit_digit`, which the model was trained on."""
    height, width = crop.shape
    scale = FIT_SIZE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size != (width, height):
        method = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        crop = cv2.resize(np.ascontiguousarray(crop), size, interpolation=method)
        crop *= 1.0 / max(float(crop.max()), 1e-6)  # a new array: scaled in place
    else:
        crop = crop * (1.0 / max(float(crop.max()), 1e-6))
    np.minimum(np.maximum(crop, 0.0, out=crop), 1.0, out=crop)  # np.clip, in place
    moments = cv2.moments(crop)
    if moments["m00"] <= 0:
        return np.zeros((MNIST_SIZE, MNIST_SIZE), dtype=np.float32)
    cy, cx = moments["m01"] / moments["m00"], moments["m10"] / moments["m00"]
    top = min(max(round(MNIST_SIZE / 2 - 0.5 - cy), 0), MNIST_SIZE - crop.shape[0])
    left = min(max(round(MNIST_SIZE / 2 - 0.5 - cx), 0), MNIST_SIZE - crop.shape[1])
    out = np.zeros((MNIST_SIZE, MNIST_SIZE), dtype=np.float32)
    out[top : top + crop.shape[0], left : left + crop.shape[1]] = crop
    return out

"""DigitFlow's recognition core: image bytes in, calibrated digit predictions out.

No web or queue dependencies; the API, the workers and training all use this one module.
"""

import numpy as np

from recognition.card import ModelCard
from recognition.decode import (
    DEFAULT_MAX_PIXELS,
    check_image,
    decode_data_url,
    decode_image,
    decode_page,
)
from recognition.errors import (
    EmptyImage,
    ImageError,
    ImageTooLarge,
    InvalidDataURL,
    NoDigits,
    TruncatedImage,
    UndecodableImage,
)
from recognition.fields import (
    LAYOUTS,
    DigitReading,
    FieldReading,
    find_digits,
    read_field,
    read_segmentations,
)
from recognition.inference import DigitPrediction, Recognizer, calibrate
from recognition.preprocess import WORK_MIN_SIDE, normalize_mnist, segment_digits, to_mnist
from recognition.segment import PLAIN_MAX_ASPECT, SHRINK_FROM, SHRINK_SIDE, WORK_SIDE


def prepare(data: bytes, max_pixels: int | None = None) -> np.ndarray:
    """Image bytes -> one MNIST-form float32 [28, 28] digit. Raises ImageError subclasses."""
    return to_mnist(decode_image(data, max_pixels or DEFAULT_MAX_PIXELS, WORK_MIN_SIDE))


def segment_image(
    data: bytes, layout: str = "auto", max_pixels: int | None = None, drawn: bool = False
):
    """Image bytes -> a Segmentation (digit crops and hypotheses) for `read_segmentations`.

    A field too long to be one digit is decoded straight at about the segmenter's working size
    (a JPEG at 1/2, 1/4 or 1/8 scale by libjpeg, others shrunk by a whole factor: from
    SHRINK_FROM on, while the shorter side stays at least SHRINK_SIDE); anything else
    as a single digit always was. Boxes are in the upload's pixels either way. `drawn`: a
    canvas drawing, which has no printed lines (`find_digits`)."""
    max_pixels = max_pixels or DEFAULT_MAX_PIXELS
    width, height = check_image(data, max_pixels)
    if layout == "field" or max(width, height) > PLAIN_MAX_ASPECT * min(width, height):
        short = min(width, height)
        wide = -(-width * SHRINK_SIDE // short) if short >= SHRINK_FROM else 0
        pixels, span = decode_page(data, max_pixels, wide, (width, height))
        # uint8 as decoded where the segmenter resizes a field by whole factors or not at all: it
        # takes the ink by table, to the same bits as from level / 255 (a quarter of the bytes
        # to move, ~40 us less a 5-digit field). Only a field resized to WORK_SIDE reads floats,
        # as it always has (area resampling rounds uint8 differently).
        keep = wide or min(pixels.shape) <= WORK_SIDE
        gray = pixels if keep else pixels.astype(np.float32) / 255.0
        return find_digits(gray, layout, pixel_scale=span, drawn=drawn)
    gray = decode_image(data, max_pixels, WORK_MIN_SIDE)
    return find_digits(gray, layout, pixel_scale=width / gray.shape[1], drawn=drawn)


__all__ = [
    "LAYOUTS",
    "DigitPrediction",
    "DigitReading",
    "FieldReading",
    "NoDigits",
    "find_digits",
    "read_field",
    "read_segmentations",
    "segment_image",
    "EmptyImage",
    "ImageError",
    "ImageTooLarge",
    "InvalidDataURL",
    "ModelCard",
    "WORK_MIN_SIDE",
    "Recognizer",
    "TruncatedImage",
    "UndecodableImage",
    "calibrate",
    "check_image",
    "decode_data_url",
    "decode_image",
    "normalize_mnist",
    "prepare",
    "segment_digits",
    "to_mnist",
]

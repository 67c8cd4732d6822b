"""DigitFlow's recognition core: image bytes in, calibrated digit predictions out.

No web or queue dependencies; the API, the workers and training all use this one module.
"""

from recognition.card import ModelCard
from recognition.decode import DEFAULT_MAX_PIXELS, check_image, decode_data_url, decode_image
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


def prepare(data: bytes, max_pixels: int | None = None) -> "np.ndarray":  # noqa: F821
    """Image bytes -> one MNIST-form float32 [28, 28] digit. Raises ImageError subclasses."""
    return to_mnist(decode_image(data, max_pixels or DEFAULT_MAX_PIXELS, WORK_MIN_SIDE))


def segment_image(data: bytes, layout: str = "auto", max_pixels: int | None = None):
    """Image bytes -> a Segmentation (digit crops and hypotheses) for `read_segmentations`."""
    return find_digits(decode_image(data, max_pixels or DEFAULT_MAX_PIXELS, WORK_MIN_SIDE), layout)


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

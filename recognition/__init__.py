"""DigitFlow's recognition core: image bytes in, calibrated digit predictions out.

No web or queue dependencies; the API, the workers and training all use this one module.
"""

from recognition.card import ModelCard
from recognition.decode import check_image, decode_data_url, decode_image
from recognition.errors import (
    EmptyImage,
    ImageError,
    ImageTooLarge,
    InvalidDataURL,
    TruncatedImage,
    UndecodableImage,
)
from recognition.inference import DigitPrediction, Recognizer, calibrate
from recognition.preprocess import normalize_mnist, segment_digits, to_mnist


def prepare(data: bytes, max_pixels: int | None = None) -> "np.ndarray":  # noqa: F821
    """Image bytes -> one MNIST-form float32 [28, 28] digit. Raises ImageError subclasses."""
    gray = decode_image(data) if max_pixels is None else decode_image(data, max_pixels)
    return to_mnist(gray)


__all__ = [
    "DigitPrediction",
    "EmptyImage",
    "ImageError",
    "ImageTooLarge",
    "InvalidDataURL",
    "ModelCard",
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

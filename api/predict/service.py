"""Request payloads to MNIST-form digits, and predictions to JSON — no HTTP here."""

import json

import numpy as np

from api.errors import InvalidRequest
from recognition import DigitPrediction, decode_data_url, prepare


def drawing_to_mnist(body: bytes, max_bytes: int, max_pixels: int) -> np.ndarray:
    """A `{"image": "data:image/...;base64,..."}` JSON body -> float32 [28, 28]."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise InvalidRequest("the body's JSON is nested too deeply") from exc
    if not isinstance(payload, dict) or "image" not in payload:
        raise InvalidRequest(
            'body.image: field required, e.g. {"image": "data:image/png;base64,..."}'
        )
    image = payload["image"]
    if not isinstance(image, str):
        raise InvalidRequest("body.image: must be a string holding a data URL")
    return prepare(decode_data_url(image, max_bytes), max_pixels)


def upload_to_mnist(data: bytes, max_pixels: int) -> np.ndarray:
    """An uploaded image file's bytes -> float32 [28, 28]."""
    return prepare(data, max_pixels)


def prediction_json(prediction: DigitPrediction, model_version: str) -> bytes:
    # Built by hand: this is the hot path, and the shape is fixed (see PredictionPublic).
    return json.dumps(
        {
            "digit": prediction.digit,
            "confidence": prediction.confidence,
            "probabilities": prediction.probabilities,
            "needs_review": prediction.needs_review,
            "model_version": model_version,
        }
    ).encode()

"""Batched, calibrated inference with a model loaded once.

Serving runs the exported LiteRT model (`model.tflite`): no TensorFlow import, tens of
microseconds a digit, ~50 MB per process. The Keras file (`model.keras`) is the contract and the
fallback when no `.tflite` is beside it. Either way images go through in batches — never one
`model.predict` call per image.
"""

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recognition.card import KERAS_FILENAME, TFLITE_FILENAME, ModelCard

# LiteRT reallocates tensors (~1 ms and up) when the batch size changes, so each of these sizes
# gets an interpreter of its own and a batch runs as a sum of them (45 = 32 + 8 + 4 + 1). The
# model's cost is linear in images (~0.1 ms each on one core), so padding would be pure waste.
BATCH_SIZES = (256, 128, 64, 32, 16, 8, 4, 2, 1)


# A model with an 11th output has a "not a digit" class; its index.
NOT_A_DIGIT = 10


# A mark the model finds at least as likely "not a digit" as a digit is treated as no digit.
NOT_A_DIGIT_FROM = 0.5


@dataclass(frozen=True, slots=True)
class DigitPrediction:
    digit: int
    # How sure the model is which digit this is, given that it is one (calibrated); a mark it finds
    # more likely no digit keeps its probability among all classes (at most one half), so it never
    # comes back confident.
    confidence: float
    probabilities: tuple[float, ...]  # calibrated over the 10 digits, summing to 1
    needs_review: bool
    not_a_digit: float = 0.0  # calibrated probability that the mark is not a digit at all

    @property
    def plausibility(self) -> float:
        """Probability of `digit` among all the model's classes, "not a digit" included: how
        well a crop reads as this digit at all (segmentation weighs its hypotheses by it)."""
        return self.probabilities[self.digit] * (1.0 - self.not_a_digit)


def digit_view(calibrated: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated model outputs [N, 10 or 11] -> (10 digit probabilities renormalised, each
    row's confidence, the "not a digit" probability).

    The two questions are kept apart: "which digit?" is answered among the digits, "is it a digit
    at all?" by the 11th class. Folding the "not a digit" mass into every confidence sent clean
    digits with a trace of it, and scans above all, to review (docs/training.md, "Fourth run")."""
    digits = calibrated[:, :NOT_A_DIGIT]
    reject = (
        calibrated[:, NOT_A_DIGIT] if calibrated.shape[1] > NOT_A_DIGIT else np.zeros(len(digits))
    )
    probabilities = digits / np.maximum(digits.sum(axis=1, keepdims=True), 1e-12)
    confidence = np.where(reject < NOT_A_DIGIT_FROM, probabilities.max(axis=1), digits.max(axis=1))
    return probabilities, confidence, reject


def calibrate(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature scaling of softmax outputs: softmax(log(p) / T)."""
    # np.maximum is np.clip with no upper bound, without clip's Python wrapper (hot path).
    logits = np.log(np.maximum(probabilities.astype(np.float64), 1e-38)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=1, keepdims=True)


class Recognizer:
    """Loads a model directory (model + card) once; predicts digits for batches of 28x28 images."""

    def __init__(self, model_dir: Path, backend: str = "auto", num_threads: int = 1):
        self.model_dir = Path(model_dir)
        self.card = ModelCard.load(self.model_dir)
        self.temperature = self.card.calibration.temperature
        self.threshold = self.card.review.threshold
        if backend == "auto":
            backend = "litert" if (self.model_dir / TFLITE_FILENAME).exists() else "keras"
        if backend == "litert":
            content = (self.model_dir / TFLITE_FILENAME).read_bytes()
            self._backend = LiteRTModel(content, num_threads)
        elif backend == "keras":
            self._backend = _KerasBackend(self.model_dir / KERAS_FILENAME)
        else:
            raise ValueError(f"unknown backend {backend!r}: use 'litert', 'keras' or 'auto'")
        self.backend = backend

    @property
    def version(self) -> str:
        return self.card.version

    def raw_probabilities(self, images: np.ndarray) -> np.ndarray:
        """The model's own softmax for float32 [N, 28, 28] images, uncalibrated."""
        images = np.asarray(images, dtype=np.float32).reshape(-1, 28, 28, 1)
        if len(images) == 0:
            return np.zeros((0, NOT_A_DIGIT + 1), dtype=np.float32)
        return self._backend.predict(images)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        return calibrate(self.raw_probabilities(images), self.temperature)

    def predict(self, images: np.ndarray) -> list[DigitPrediction]:
        probabilities, confidences, rejects = digit_view(self.probabilities(images))
        digits = probabilities.argmax(axis=1)
        return [
            DigitPrediction(
                digit=int(digit),
                confidence=float(confidence),
                probabilities=tuple(row.tolist()),
                needs_review=bool(confidence < self.threshold),
                not_a_digit=float(reject),
            )
            for digit, confidence, row, reject in zip(
                digits, confidences, probabilities, rejects, strict=True
            )
        ]


class LiteRTModel:
    """A LiteRT model file in memory, run in batches: what serving runs, and what training
    measures the model it exports by (`training.evaluate.as_served`)."""

    def __init__(self, content: bytes, num_threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self.content = content  # the file's bytes: what export writes once they are measured
        self._make = lambda: Interpreter(model_content=content, num_threads=num_threads)
        # batch size -> (interpreter, input index, output index): the indices are looked up once
        # (get_input_details builds dicts of every tensor's details, ~20 us a call).
        self._interpreters: dict[int, tuple[object, int, int]] = {}
        # An interpreter is not thread-safe; callers from several threads take turns.
        self._lock = threading.Lock()
        self._interpreter(1)  # fail at load time, not on the first request

    def _interpreter(self, batch: int) -> tuple[object, int, int]:
        found = self._interpreters.get(batch)
        if found is None:
            interpreter = self._make()
            index = interpreter.get_input_details()[0]["index"]
            interpreter.resize_tensor_input(index, [batch, 28, 28, 1])
            interpreter.allocate_tensors()
            output = interpreter.get_output_details()[0]["index"]
            found = self._interpreters[batch] = (interpreter, index, output)
        return found

    def predict(self, images: np.ndarray) -> np.ndarray:
        out, start = [], 0
        with self._lock:
            while start < len(images):
                size = next(size for size in BATCH_SIZES if size <= len(images) - start)
                interpreter, index, output = self._interpreter(size)
                interpreter.set_tensor(index, images[start : start + size])
                interpreter.invoke()
                out.append(interpreter.get_tensor(output))  # get_tensor returns a copy
                start += size
        return out[0] if len(out) == 1 else np.concatenate(out)


class _KerasBackend:
    def __init__(self, path: Path):
        import keras  # imported here: TensorFlow costs ~3 s and ~650 MB, only this backend needs it

        self._model = keras.saving.load_model(path, compile=False)

    def predict(self, images: np.ndarray) -> np.ndarray:
        out = [
            np.asarray(self._model(images[start : start + 512], training=False))
            for start in range(0, len(images), 512)
        ]
        return np.concatenate(out)

"""The model card: the JSON document that travels beside an exported model.

Training writes it (training/export.py), the recognition core reads the calibration temperature
and review threshold from it, and the API serves it at /model-info. Extra fields (metrics,
plots, hyperparameters) are kept as they are.
"""

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

CARD_FILENAME = "model_card.json"
KERAS_FILENAME = "model.keras"
TFLITE_FILENAME = "model.tflite"


class Calibration(BaseModel):
    model_config = ConfigDict(extra="allow")
    # Calibrated probabilities are softmax(log(p) / temperature); fitted on the validation split.
    temperature: float = Field(gt=0)


class ReviewPolicy(BaseModel):
    model_config = ConfigDict(extra="allow")
    # A digit whose calibrated confidence is below this goes to human review.
    threshold: float = Field(ge=0, le=1)
    # The auto-accept error rate the threshold was chosen for (on the validation split).
    target_error: float | None = None


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())

    name: str = "digitflow-cnn"
    version: str
    created_at: str | None = None
    architecture: str | None = None
    # sha256 of each exported file, keyed by file name (model.keras, model.tflite).
    sha256: dict[str, str] = {}
    data: dict[str, Any] = {}
    hyperparameters: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    calibration: Calibration
    review: ReviewPolicy

    @classmethod
    def load(cls, model_dir: Path) -> "ModelCard":
        return cls.model_validate_json((Path(model_dir) / CARD_FILENAME).read_text())

    def save(self, model_dir: Path) -> Path:
        path = Path(model_dir) / CARD_FILENAME
        path.write_text(json.dumps(self.model_dump(mode="json"), indent=2) + "\n")
        return path

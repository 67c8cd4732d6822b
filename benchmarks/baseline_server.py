"""The seed's way of serving, as the latency benchmark's baseline — never part of the product.

Same endpoints, same decoding and normalisation as the API, but each request calls the Keras
model's `model.predict` on its one image, in FastAPI's threadpool.

    MODEL_DIR=models/default uvicorn --app-dir benchmarks baseline_server:app
"""

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import keras
import numpy as np
from fastapi import Body, FastAPI, File, HTTPException, UploadFile
from fastapi.responses import Response

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from recognition import ImageError, ModelCard, calibrate, decode_data_url, prepare  # noqa: E402

MODEL_DIR = Path(os.environ.get("MODEL_DIR", "models/default"))
model = keras.saving.load_model(MODEL_DIR / "model.keras", compile=False)
card = ModelCard.load(MODEL_DIR)
app = FastAPI()


def answer(image: np.ndarray) -> Response:
    raw = model.predict(image.reshape(1, 28, 28, 1), verbose=0)  # the seed: one call per request
    probabilities = calibrate(raw, card.calibration.temperature)[0]
    digit = int(probabilities.argmax())
    body = {
        "digit": digit,
        "confidence": float(probabilities[digit]),
        "probabilities": [float(p) for p in probabilities],
        "needs_review": bool(probabilities[digit] < card.review.threshold),
        "model_version": card.version,
    }
    return Response(json.dumps(body), media_type="application/json")


@app.get("/model-info")
def model_info() -> dict:
    return card.model_dump(mode="json")


@app.post("/predict")
def predict(file: Annotated[UploadFile, File()]) -> Response:
    try:
        return answer(prepare(file.file.read()))
    except ImageError as exc:
        raise HTTPException(400, str(exc)) from exc


@app.post("/predict-drawing")
def predict_drawing(payload: Annotated[dict, Body()]) -> Response:
    try:
        return answer(prepare(decode_data_url(payload["image"])))
    except ImageError as exc:
        raise HTTPException(400, str(exc)) from exc

"""The synchronous fast path: one image in, one prediction out, in milliseconds.

Bodies are read raw (size-checked before anything is parsed) and answers are written as bytes:
pydantic models here only describe the API in the OpenAPI schema. One dependency per endpoint
keeps the framework's share of each request small.
"""

from functools import partial

from fastapi import APIRouter, Request, Response
from starlette.datastructures import UploadFile

from api.config import Settings
from api.deps import BatcherDep
from api.errors import InvalidRequest, PayloadTooLarge
from api.limits import check_content_type, limited, read_body
from api.predict.schemas import DrawingRequest, ErrorPublic, PredictionPublic
from api.predict.service import drawing_to_mnist, prediction_json, upload_to_mnist

router = APIRouter(tags=["predict"])

# Room for the multipart envelope (boundaries, part headers) around the file itself.
MULTIPART_OVERHEAD = 64 * 1024

ERRORS = {
    status: {"model": ErrorPublic, "description": description}
    for status, description in {
        400: "Not an image, truncated file, or malformed data URL",
        413: "Image too large (bytes or pixels)",
        415: "Wrong Content-Type",
        422: "Empty image (no ink) or a missing/invalid field",
        503: "The model is not loaded",
    }.items()
}

UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "PNG, JPEG, TIFF, BMP, GIF or WebP: a scan (dark ink on "
                        "light paper) or a light digit on dark, any size.",
                    }
                },
            }
        }
    },
}
DRAWING_BODY = {
    "required": True,
    "content": {"application/json": {"schema": DrawingRequest.model_json_schema()}},
}


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


@router.post(
    "/predict",
    summary="Recognise the digit in an uploaded image file",
    response_model=PredictionPublic,
    responses=ERRORS,
    openapi_extra={"requestBody": UPLOAD_BODY},
)
async def predict(request: Request, batcher: BatcherDep) -> Response:
    settings: Settings = request.app.state.settings
    check_content_type(request, "multipart/form-data")
    body_limit = settings.max_image_bytes + MULTIPART_OVERHEAD
    form = await limited(request, body_limit).form(
        max_files=1, max_fields=16, max_part_size=MULTIPART_OVERHEAD
    )
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidRequest("body.file: field required: send the image as multipart field 'file'")
    try:
        data = await upload.read()
    finally:
        await form.close()
    if len(data) > settings.max_image_bytes:
        raise PayloadTooLarge(settings.max_image_bytes)
    # The decode budget (api.budget) picks the pixel limit: make(max_pixels) -> the decode job.
    make = partial(partial, upload_to_mnist, data)
    prediction = await request.app.state.budget.predict(batcher, make, len(data), request)
    return _json(prediction_json(prediction, batcher.model_version))


@router.post(
    "/predict-drawing",
    summary="Recognise the digit drawn on the canvas (a data URL)",
    response_model=PredictionPublic,
    responses=ERRORS,
    openapi_extra={"requestBody": DRAWING_BODY},
)
async def predict_drawing(request: Request, batcher: BatcherDep) -> Response:
    settings: Settings = request.app.state.settings
    check_content_type(request, "application/json")
    # base64 makes a payload 4/3 of the image; the decoded image is held to max_image_bytes.
    body = await read_body(request, settings.max_image_bytes * 4 // 3 + MULTIPART_OVERHEAD)
    make = partial(partial, drawing_to_mnist, body, settings.max_image_bytes)
    prediction = await request.app.state.budget.predict(batcher, make, len(body), request)
    return _json(prediction_json(prediction, batcher.model_version))

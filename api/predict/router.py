"""The synchronous fast path: one image in, one field reading out, in milliseconds.

Bodies are read raw (size-checked before anything is parsed) and answers are written as bytes.
Both endpoints take `layout` (`auto`, `digit`, `field`): a query parameter, or the multipart
field / JSON member of the same name. One dependency per endpoint keeps the framework's share of
each request small.
"""

from functools import partial

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.config import Settings
from api.deps import BatcherDep, get_recognizer
from api.doctypes.service import document_type_for, read_page_json
from api.errors import InvalidRequest, PayloadTooLarge
from api.limits import check_content_type, limited, read_body
from api.predict.schemas import LAYOUT_DESCRIPTION, DrawingRequest, ErrorPublic, PredictionPublic
from api.predict.service import check_layout, drawing_field, reading_json, upload_field

router = APIRouter(tags=["predict"])

# Room for the multipart envelope (boundaries, part headers) around the file itself.
MULTIPART_OVERHEAD = 64 * 1024

ERRORS = {
    status: {"model": ErrorPublic, "description": description}
    for status, description in {
        400: "Not an image, truncated file, or malformed data URL",
        413: "Image too large (bytes or pixels)",
        415: "Wrong Content-Type",
        422: "Empty image (no ink), no digit in it (only lines, dots, dashes), or a missing or"
        " invalid field",
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
                    },
                    "layout": {
                        "type": "string",
                        "enum": ["auto", "digit", "field"],
                        "default": "auto",
                        "description": LAYOUT_DESCRIPTION,
                    },
                },
            }
        }
    },
}
DRAWING_BODY = {
    "required": True,
    "content": {"application/json": {"schema": DrawingRequest.model_json_schema()}},
}


LAYOUT_QUERY = [
    {
        "name": "layout",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ["auto", "digit", "field"], "default": "auto"},
        "description": LAYOUT_DESCRIPTION,
    }
]


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def _prediction_route(path: str, summary: str, body: dict):
    """POST `path`, answering a PredictionPublic; documented with its body, layout and errors."""
    extra = {"requestBody": body, "parameters": LAYOUT_QUERY}
    return router.post(
        path, summary=summary, response_model=PredictionPublic, responses=ERRORS,
        openapi_extra=extra,
    )  # fmt: skip


@_prediction_route(
    "/predict", "Read the digit or the field of digits in an uploaded image file", UPLOAD_BODY
)
async def predict(request: Request, batcher: BatcherDep) -> Response:
    settings: Settings = request.app.state.settings
    check_content_type(request, "multipart/form-data")
    body_limit = settings.max_image_bytes + MULTIPART_OVERHEAD
    form = await limited(request, body_limit).form(
        max_files=1, max_fields=16, max_part_size=MULTIPART_OVERHEAD
    )
    upload = form.get("file")
    field = form.get("layout")
    field = field if isinstance(field, str) else None
    layout = request.query_params.get("layout") or field
    doc_type = document_type_for(layout, request.app.state.document_types)
    layout = check_layout(layout) if doc_type is None else layout
    if not isinstance(upload, UploadFile):
        raise InvalidRequest("body.file: field required: send the image as multipart field 'file'")
    try:
        data = await upload.read()
    finally:
        await form.close()
    if len(data) > settings.max_image_bytes:
        raise PayloadTooLarge(settings.max_image_bytes)
    if doc_type is not None:  # a whole page: find the fields, read each one
        recognizer = get_recognizer(request)
        page = partial(read_page_json, data, doc_type, recognizer, settings.max_image_pixels)
        return _json(await run_in_threadpool(page))
    # The decode budget (api.budget) picks the pixel limit: make(max_pixels) -> the decode job.
    make = partial(partial, upload_field, data, layout)
    reading = await request.app.state.budget.predict(batcher, make, len(data), request)
    return _json(reading_json(reading, batcher.model_version))


@_prediction_route(
    "/predict-drawing", "Read the digit or digits drawn on the canvas (a data URL)", DRAWING_BODY
)
async def predict_drawing(request: Request, batcher: BatcherDep) -> Response:
    settings: Settings = request.app.state.settings
    check_content_type(request, "application/json")
    # base64 makes a payload 4/3 of the image; the decoded image is held to max_image_bytes.
    body = await read_body(request, settings.max_image_bytes * 4 // 3 + MULTIPART_OVERHEAD)
    layout = request.query_params.get("layout")
    make = partial(partial, drawing_field, body, layout, settings.max_image_bytes)
    reading = await request.app.state.budget.predict(batcher, make, len(body), request)
    return _json(reading_json(reading, batcher.model_version))

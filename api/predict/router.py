"""The synchronous fast path: one image in, one field reading out, in milliseconds.

Bodies are read raw (size-checked before anything is parsed) and answers are written as bytes.
Both endpoints take `layout` (`auto`, `digit`, `field`): a query parameter, or the multipart
field / JSON member of the same name. Both are open (rate-limited per client address), and a
request that carries an API key has it checked and counted against the key's limit. No
dependency injection: the model, the batcher and the key are looked up directly, which keeps
the framework's share of a request small (docs/benchmarks.md, "CPU a request").
"""

import base64
import binascii
from functools import partial

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.auth.dependencies import sent_key_principal
from api.config import Settings
from api.deps import batcher_of, recognizer_of
from api.doctypes.service import document_type_for, read_page_json
from api.errors import InvalidRequest, PayloadTooLarge
from api.limits import check_content_type, limited, read_body
from api.predict.batcher import MicroBatcher
from api.predict.schemas import LAYOUT_DESCRIPTION, DrawingRequest, ErrorPublic, PredictionPublic
from api.predict.service import check_layout, drawing_field, reading_json, upload_field
from recognition.decode import PNG_SIGNATURE

router = APIRouter(tags=["predict"])

# Base64 characters of a data URL read on the event loop to find the image's size (~3 KB: past
# a JPEG's usual EXIF block to its frame header).
PEEK_CHARS = 4096
# Base64 characters of a PNG's signature and IHDR chunk (33 bytes), all `check_image` reads.
PNG_HEAD_CHARS = 44
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


# Open (rate-limited per address), or with an API key: declared as optional security.
OPEN = [{"HTTPBearer": []}, {}]

LAYOUT_QUERY = [
    {
        "name": "layout",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ["auto", "digit", "field"], "default": "auto"},
        "description": LAYOUT_DESCRIPTION,
    }
]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def peek_data_url(body: bytes, chars: int = PEEK_CHARS) -> bytes | None:
    """The first bytes of the image in a drawing's data URL, without parsing the JSON: enough
    for the decode budget to read the image's size from its header on the event loop (the
    batch's decode still checks everything)."""
    start = body.find(b";base64,", 0, 512)
    if start < 0:
        return None
    start += len(b";base64,")
    # A PNG (the canvas's) is sized from its first 33 bytes: decode those alone first.
    head = _b64(body[start : start + PNG_HEAD_CHARS])
    if head is not None and head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR":
        return head
    end = body.find(b'"', start, start + chars)
    return _b64(body[start : end if end >= 0 else start + chars])


def _b64(piece: bytes) -> bytes | None:
    try:
        return base64.b64decode(piece[: len(piece) // 4 * 4], validate=True)
    except binascii.Error:
        return None


def _query_layout(request: Request) -> str | None:
    """`?layout=`, without parsing an empty query string (the canvas sends none)."""
    return request.query_params.get("layout") if request.scope.get("query_string") else None


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def _prediction_route(path: str, summary: str, body: dict):
    """POST `path`, answering a PredictionPublic; documented with its body, layout and errors."""
    extra = {"requestBody": body, "parameters": LAYOUT_QUERY, "security": OPEN}
    return router.post(
        path, summary=summary, response_model=PredictionPublic, responses=ERRORS,
        openapi_extra=extra,
    )  # fmt: skip


async def _admit(request: Request, content_type: str) -> tuple[MicroBatcher, Settings]:
    """The process's batcher and settings, once a sent key is valid and the body's type is right
    (no dependency injection here: this is the hot path)."""
    batcher = batcher_of(request)
    await sent_key_principal(request)
    check_content_type(request, content_type)
    return batcher, request.app.state.settings


@_prediction_route(
    "/predict", "Read the digit or the field of digits in an uploaded image file", UPLOAD_BODY
)
async def predict(request: Request) -> Response:
    batcher, settings = await _admit(request, "multipart/form-data")
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
        recognizer = recognizer_of(request)
        page = partial(read_page_json, data, doc_type, recognizer, settings.max_image_pixels)
        return _json(await run_in_threadpool(page))
    # The decode budget (api.budget) picks the pixel limit: make(max_pixels) -> the decode job.
    make = partial(partial, upload_field, data, layout)
    address = client_address(request)
    reading = await request.app.state.budget.predict(batcher, make, len(data), address, data)
    return _json(reading_json(reading, batcher.model_version))


@_prediction_route(
    "/predict-drawing", "Read the digit or digits drawn on the canvas (a data URL)", DRAWING_BODY
)
async def predict_drawing(request: Request) -> Response:
    batcher, settings = await _admit(request, "application/json")
    # base64 makes a payload 4/3 of the image; the decoded image is held to max_image_bytes.
    body = await read_body(request, settings.max_image_bytes * 4 // 3 + MULTIPART_OVERHEAD)
    layout = _query_layout(request)
    make = partial(partial, drawing_field, body, layout, settings.max_image_bytes)
    budget, address = request.app.state.budget, client_address(request)
    reading = await budget.predict(batcher, make, len(body), address, peek_data_url(body))
    return _json(reading_json(reading, batcher.model_version))

"""A document's original scan and its review history (any role of the owning tenant).

GET /documents/{id}/image    the stored scan, with the per-digit boxes in `X-Digit-Boxes` and,
                             for a whole page (layout=cheque or a document type), the region
                             of each field in `X-Field-Boxes` ({name: {x, y, width, height,
                             needs_review}}; box null when it was not found)
GET /documents/{id}/history  every review decision, oldest first (append-only)
"""

import json
import uuid

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from api.auth.dependencies import PrincipalDep
from api.deps import SessionDep, StorageDep
from api.review import service
from api.review.errors import ImageMissing
from api.review.schemas import History
from digitflow.storage import ObjectNotFound

router = APIRouter(prefix="/documents", tags=["documents"])

# Magic bytes of the formats jobs accept; anything else is served as opaque bytes.
SIGNATURES = [
    (b"\x89PNG", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
]


def media_type(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next(
        (kind for magic, kind in SIGNATURES if data.startswith(magic)), "application/octet-stream"
    )


def digit_boxes(prediction) -> list:
    if prediction is None:
        return []
    return [digit.get("box") for digit in prediction.digits]


def field_boxes(prediction) -> dict:
    """Where each field of a whole page was read (page pixels): the reviewer sees the region
    outlined on the page, so a wrong box is as visible as a wrong digit."""
    if prediction is None or not prediction.fields:
        return {}
    return {
        name: (
            {**field["box"], "needs_review": bool(field.get("needs_review"))}
            if field.get("box")
            else None
        )
        for name, field in prediction.fields.items()
    }


@router.get(
    "/{document_id}/image",
    summary="The original scan",
    response_class=Response,
    responses={200: {"content": {"image/*": {}}}, 404: {"description": "No such document"}},
)
async def image(
    document_id: uuid.UUID, session: SessionDep, storage: StorageDep, principal: PrincipalDep
) -> Response:
    document, prediction = await run_in_threadpool(
        service.document, session, principal.tenant_id, document_id
    )
    try:
        data = await run_in_threadpool(storage.get, document.storage_key)
    except ObjectNotFound as exc:
        raise ImageMissing() from exc
    headers = {
        "Cache-Control": "private, max-age=3600",  # a scan never changes under its id
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": "inline",
        "X-Digit-Boxes": json.dumps(digit_boxes(prediction), separators=(",", ":")),
        "X-Field-Boxes": json.dumps(field_boxes(prediction), separators=(",", ":")),
    }
    return Response(data, media_type=media_type(data), headers=headers)


@router.get(
    "/{document_id}/history",
    response_model=History,
    summary="The document's review decisions, oldest first",
    responses={404: {"description": "No such document"}},
)
def history(document_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> dict:
    return service.history(session, principal.tenant_id, document_id)

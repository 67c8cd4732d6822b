"""Bulk recognition: upload many documents as a job, poll it, read its results.

POST /jobs                 multipart `files` (images and/or ZIPs), optional `layout`
GET  /jobs                 recent jobs
GET  /jobs/{id}            status, counts, progress
GET  /jobs/{id}/results    paginated results (cursor), ?needs_review=, ?format=csv
"""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from python_multipart.multipart import parse_options_header
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from api.deps import SettingsDep
from api.errors import ApiError, PayloadTooLarge, UnsupportedMediaType
from api.jobs import service
from api.jobs.dependencies import ProducerDep, SessionDep, SessionsDep, StorageDep
from api.jobs.schemas import JobCreated, JobList, JobPublic, ResultsPage
from api.jobs.upload import Limits, UploadReceiver, UploadRefused
from digitflow.db import Job, JobLayout
from digitflow.storage import StorageUnavailable


class UnavailableAs503(APIRoute):
    """A database or storage outage is the server's trouble, not the client's: 503, not 500."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def guarded(request: Request):
            try:
                return await handler(request)
            except (StorageUnavailable, OperationalError) as exc:
                what = "object storage" if isinstance(exc, StorageUnavailable) else "the database"
                raise ApiError(503, "unavailable", f"{what} is unavailable, retry later") from exc

        return guarded


router = APIRouter(prefix="/jobs", tags=["jobs"], route_class=UnavailableAs503)
page_router = APIRouter(include_in_schema=False)

# Feed the multipart parser in slices of about this size (one threadpool hop each).
FEED_BYTES = 1024 * 1024
# Suggested polling interval, in seconds, for clients (Retry-After).
POLL_AFTER_SECONDS = 1

JobId = Annotated[uuid.UUID, Path(description="the job id returned by POST /jobs")]

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "images (PNG, JPEG, TIFF, BMP, GIF, WebP) and/or "
                            "ZIP archives of images; repeat the field for each file",
                        },
                        "layout": {
                            "type": "string",
                            "enum": [layout.value for layout in JobLayout],
                            "default": JobLayout.digit.value,
                            "description": "digit: one digit per document; field: several "
                            "digits side by side (amount, account number)",
                        },
                    },
                }
            }
        },
    }
}


class NotFound(ApiError):
    def __init__(self, job_id: uuid.UUID):
        super().__init__(404, "job_not_found", f"no job with id {job_id}")


def job_public(job: Job) -> dict:
    base = f"/jobs/{job.id}"
    return {
        **{name: getattr(job, name) for name in JobPublic.model_fields if hasattr(job, name)},
        "progress": round(job.done / job.total, 4) if job.total else 1.0,
        "links": {
            "self": base,
            "results": f"{base}/results",
            "csv": f"{base}/results?format=csv",
        },
    }


def accepted(job: Job) -> JSONResponse:
    body = JobCreated.model_validate(job_public(job)).model_dump(mode="json")
    return JSONResponse(
        body,
        status_code=202,
        headers={"Location": f"/jobs/{job.id}", "Retry-After": str(POLL_AFTER_SECONDS)},
    )


@router.post(
    "",
    status_code=202,
    response_model=JobCreated,
    summary="Upload documents (images and/or ZIPs of images) as one recognition job",
    openapi_extra=UPLOAD_BODY,
    responses={
        202: {"description": "Accepted: poll Location; refused files are in `rejected`"},
        400: {"description": "Malformed multipart body"},
        413: {"description": "Too many files, or too many bytes"},
        415: {"description": "Not multipart/form-data"},
        422: {"description": "No file given, no readable document, or a bad layout"},
    },
)
async def create_job(
    request: Request,
    settings: SettingsDep,
    sessions: SessionsDep,
    storage: StorageDep,
    producer: ProducerDep,
    idempotency_key: Annotated[
        str | None,
        Header(max_length=200, description="a retry with the same key returns the same job"),
    ] = None,
):
    idempotency_key = (idempotency_key or "").strip() or None  # an empty key is no key
    if idempotency_key:
        with sessions() as session:
            existing = await run_in_threadpool(
                service.find_by_idempotency_key, session, idempotency_key
            )
        if existing is not None:
            return accepted(existing)

    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UnsupportedMediaType(request.headers.get("content-type"), "multipart/form-data")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_job_bytes:
        raise PayloadTooLarge(settings.max_job_bytes)

    job_id = uuid.uuid4()
    limits = Limits(
        max_files=settings.max_job_files,
        max_image_bytes=settings.max_image_bytes,
        max_image_pixels=settings.max_image_pixels,
        max_total_bytes=settings.max_job_bytes,
    )
    intake = service.JobIntake(sessions, producer, job_id, idempotency_key, settings.job_batch_size)

    def layout() -> str:
        value = receiver.fields.get("layout") or request.query_params.get("layout") or "auto"
        if value not in {layout.value for layout in JobLayout}:
            raise UploadRefused(
                422, "invalid_layout", f"layout must be auto, digit or field, got {value!r}"
            )
        if intake.layout is not None and value != intake.layout:
            raise UploadRefused(
                422, "layout_after_files", "send the layout field before the files (or ?layout=)"
            )
        return value

    receiver = UploadReceiver(
        boundary,
        job_id,
        storage,
        limits,
        on_documents=lambda documents: intake.add(documents, layout()),
        flush_every=settings.job_batch_size,
    )

    def give_up() -> None:  # nothing of a refused or broken upload is kept
        intake.abort()
        receiver.discard()

    try:
        received, pending = 0, bytearray()
        async for chunk in request.stream():
            received += len(chunk)
            if received > settings.max_job_bytes:
                raise PayloadTooLarge(settings.max_job_bytes)
            pending += chunk
            if len(pending) >= FEED_BYTES:
                await run_in_threadpool(receiver.feed, bytes(pending))
                pending.clear()
        await run_in_threadpool(receiver.feed, bytes(pending), True)
        if not receiver.accepted and not receiver.rejected:
            raise UploadRefused(
                422, "no_files", "no files: send images or ZIPs of images in the form field 'files'"
            )
        rejected = [vars(r) for r in receiver.rejected]
        job = await run_in_threadpool(intake.complete, receiver.pending, layout(), rejected)
    except service.DuplicateUpload:
        await run_in_threadpool(receiver.discard)
        with sessions() as session:
            return accepted(service.find_by_idempotency_key(session, idempotency_key))
    except UploadRefused as exc:
        await run_in_threadpool(give_up)
        raise ApiError(exc.status_code, exc.code, exc.detail) from exc
    except BaseException:  # client went away, 413, an outage (503), a bug: keep nothing
        await run_in_threadpool(give_up)
        raise
    return accepted(job)


@router.get("", response_model=JobList, summary="Recent jobs, newest first")
def list_jobs(session: SessionDep, limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict:
    return {"items": [job_public(job) for job in service.list_jobs(session, limit)]}


@router.get(
    "/{job_id}",
    response_model=JobPublic,
    summary="A job's status, counts and progress",
    responses={404: {"description": "No job with this id"}},
)
def get_job(job_id: JobId, session: SessionDep, response: Response) -> dict:
    job = service.get_job(session, job_id)
    if job is None:
        raise NotFound(job_id)
    if job.finished_at is None:
        response.headers["Retry-After"] = str(POLL_AFTER_SECONDS)
    return job_public(job)


@router.get(
    "/{job_id}/results",
    response_model=ResultsPage,
    summary="A job's results in upload order: JSON pages (cursor) or the whole set as CSV",
    responses={
        200: {"content": {"text/csv": {}}, "description": "JSON page, or CSV with ?format=csv"},
        404: {"description": "No job with this id"},
    },
)
def get_results(
    job_id: JobId,
    session: SessionDep,
    sessions: SessionsDep,
    needs_review: Annotated[
        bool | None, Query(description="only results that need (true) or do not need review")
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=20, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
):
    if service.get_job(session, job_id) is None:
        raise NotFound(job_id)
    if format == "csv":
        return StreamingResponse(
            service.results_csv(sessions, job_id, needs_review),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="job-{job_id}.csv"'},
        )
    if cursor is not None and not cursor.isdigit():
        raise ApiError(422, "invalid_cursor", "cursor must be a next_cursor from a previous page")
    after = int(cursor) if cursor is not None else -1
    items, next_after = service.results_page(session, job_id, after, limit, needs_review)
    return {
        "job_id": job_id,
        "items": items,
        "next_cursor": str(next_after) if next_after is not None else None,
    }


@page_router.get("/bulk")
async def bulk_page(settings: SettingsDep) -> FileResponse:
    return FileResponse(settings.web_dir / "jobs.html")


# What api.main includes: the endpoints and the page.
routers = APIRouter()
routers.include_router(router)
routers.include_router(page_router)

"""Bulk recognition: upload many documents as a job, poll it, read its results.

POST /jobs                 multipart `files` (images and/or ZIPs), optional `layout`
GET  /jobs                 recent jobs
GET  /jobs/{id}            status, counts, progress
GET  /jobs/{id}/results    paginated results (cursor), ?needs_review=, ?format=csv
DELETE /jobs/{id}          the job, its documents, results and stored files
GET  /jobs/usage           the caller's jobs, documents and stored bytes
"""

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.auth.dependencies import PrincipalDep, SubmitterDep
from api.deps import ProducerDep, SessionDep, SessionsDep, SettingsDep, StorageDep
from api.doctypes.dependencies import DocumentTypesDep
from api.jobs import service
from api.jobs.dependencies import ValidJob
from api.jobs.errors import InvalidCursor
from api.jobs.idempotency import KeyReused, hash_body
from api.jobs.schemas import JobCreated, JobList, JobPublic, ResultsPage, StorageUse
from api.limits import limited, multipart_boundary
from digitflow.db import Job, JobLayout
from digitflow.db.usage import storage_use

logger = logging.getLogger("digitflow.api")

router = APIRouter(prefix="/jobs", tags=["jobs"])

# Suggested polling interval, in seconds, for clients (Retry-After).
POLL_AFTER_SECONDS = 1

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
                            "default": JobLayout.auto.value,
                            "description": "auto, digit (one digit per document), field (several "
                            "digits side by side), cheque (a whole cheque front: the amount box "
                            "is found and read) or a registered document type's name",
                        },
                    },
                }
            }
        },
    }
}


def accepted(job: Job) -> JSONResponse:
    body = JobCreated.model_validate(job).model_dump(mode="json")
    return JSONResponse(
        body,
        status_code=202,
        headers={"Location": f"/jobs/{job.id}", "Retry-After": str(POLL_AFTER_SECONDS)},
    )


def csv_disposition(job_id, needs_review: bool | None) -> str:
    """A filtered download says so in its file name: job-<id>-needs-review.csv."""
    suffix = {None: "", True: "-needs-review", False: "-confident"}[needs_review]
    return f'attachment; filename="job-{job_id}{suffix}.csv"'


@router.post(
    "",
    status_code=202,
    response_model=JobCreated,
    summary="Upload documents (images and/or ZIPs of images) as one recognition job",
    openapi_extra=UPLOAD_BODY,
    responses={
        202: {"description": "Accepted: poll Location; refused files are in `rejected`"},
        400: {"description": "Malformed multipart body"},
        409: {"description": "A newer request with the same Idempotency-Key replaced this one"},
        413: {"description": "Too many files, or too many bytes"},
        415: {"description": "Not multipart/form-data"},
        422: {
            "description": "No file given, no readable document, a bad layout, or an "
            "Idempotency-Key already used for another upload"
        },
    },
)
async def create_job(
    request: Request,
    settings: SettingsDep,
    sessions: SessionsDep,
    storage: StorageDep,
    producer: ProducerDep,
    principal: SubmitterDep,
    document_types: DocumentTypesDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=200,
            description="a retry with the same key and the same files returns the same job; "
            "the same key with other files is 422; a retry of an upload that did not complete "
            "starts it afresh",
        ),
    ] = None,
):
    idempotency_key = (idempotency_key or "").strip() or None  # an empty key is no key
    boundary = multipart_boundary(request)
    request = limited(request, settings.max_job_bytes)
    if idempotency_key:  # a retry: answer the job without storing the whole upload again
        existing = await run_in_threadpool(
            service.completed_job_for_key, sessions, storage, principal.tenant_id, idempotency_key
        )
        if existing is not None:
            body_hash = await hash_body(request.stream(), boundary)
            if existing.request_hash not in (None, body_hash):
                raise KeyReused()
            return accepted(existing)
    await run_in_threadpool(service.check_backlog, producer, settings)
    upload = service.Upload(
        settings, sessions, storage, producer, boundary, principal.tenant_id, idempotency_key,
        request.query_params.get("layout"), document_types,
    )  # fmt: skip
    return accepted(await upload.run(request))


@router.get("", response_model=JobList, summary="Recent jobs, newest first")
def list_jobs(
    session: SessionDep, principal: PrincipalDep, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> dict:
    return {"items": service.list_jobs(session, principal.tenant_id, limit)}


@router.get("/usage", response_model=StorageUse, summary="Your jobs, documents and stored bytes")
def usage(session: SessionDep, principal: PrincipalDep) -> dict:
    return storage_use(session, principal.tenant_id)


@router.get(
    "/{job_id}",
    response_model=JobPublic,
    summary="A job's status, counts and progress",
    responses={404: {"description": "No job with this id"}},
)
def get_job(job: ValidJob, response: Response) -> Job:
    if job.finished_at is None:
        response.headers["Retry-After"] = str(POLL_AFTER_SECONDS)
    return job


@router.delete(
    "/{job_id}",
    status_code=204,
    summary="Delete a job: its documents, results and stored files",
    responses={404: {"description": "No job with this id"}},
)
def delete_job(
    job: ValidJob, sessions: SessionsDep, storage: StorageDep, principal: SubmitterDep
) -> Response:
    service.discard_job(sessions, storage, job.id)
    logger.info("job deleted", extra={"job_id": str(job.id), "tenant_id": principal.tenant_id})
    return Response(status_code=204)


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
    job: ValidJob,
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
    job_id = job.id
    if format == "csv":
        return StreamingResponse(
            service.results_csv(sessions, job_id, needs_review),
            media_type="text/csv",
            headers={"Content-Disposition": csv_disposition(job_id, needs_review)},
        )
    if cursor is not None and not (cursor.isascii() and cursor.isdigit()):
        raise InvalidCursor()
    after = int(cursor) if cursor is not None else -1
    items, next_after = service.results_page(session, job_id, after, limit, needs_review)
    return {
        "job_id": job_id,
        "items": items,
        "next_cursor": str(next_after) if next_after is not None else None,
    }

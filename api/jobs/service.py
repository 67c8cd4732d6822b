"""Jobs: take an upload in, then read, list and page through results (scoped to a tenant)."""

import csv
import io
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

from celery import Celery
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from api.jobs.upload import Limits, UploadReceiver, UploadRefused
from digitflow.db import Document, Job, JobLayout, Prediction
from digitflow.db.progress import add_documents, complete_upload
from digitflow.queue import enqueue_documents
from digitflow.settings import PlatformSettings
from digitflow.storage import Storage
from recognition.doctypes import DocumentTypes

logger = logging.getLogger("digitflow.api")

CSV_COLUMNS = [
    "position", "filename", "status", "text", "confidence", "needs_review",
    "model_version", "error_code", "error", "document_id",
]  # fmt: skip


def find_by_idempotency_key(session: Session, tenant_id: str, key: str) -> Job | None:
    return session.scalar(select(Job).where(Job.tenant_id == tenant_id, Job.idempotency_key == key))


class DuplicateUpload(Exception):
    """Another request with the same Idempotency-Key created the job first."""


class JobIntake:
    """Commits an upload's documents batch by batch while it streams in, then completes it.

    The job row is inserted with the first batch. Each batch is committed (documents in one
    executemany, the job's total raised atomically) and only then enqueued, so a worker always
    finds what it is sent. If the upload fails half-way, `abort` deletes the job and, by cascade,
    everything under it; tasks already sent then find nothing to do.
    """

    def __init__(
        self, sessions, producer, job_id: uuid.UUID, tenant_id: str, key: str | None,
        batch_size: int,
    ):  # fmt: skip
        self.sessions, self.producer, self.job_id = sessions, producer, job_id
        self.tenant_id, self.idempotency_key, self.batch_size = tenant_id, key, batch_size
        self.layout: str | None = None  # fixed when the job row is written

    def _write(self, documents: list[dict], layout: str, complete_with: list[dict] | None):
        now = datetime.now(UTC)
        try:
            with self.sessions.begin() as session:
                if self.layout is None:
                    session.add(
                        Job(id=self.job_id, tenant_id=self.tenant_id, layout=layout,
                            idempotency_key=self.idempotency_key, total=0, rejected=[],
                            created_at=now, updated_at=now)
                    )  # fmt: skip
                    session.flush()
                if documents:
                    session.execute(insert(Document), documents)
                    session.execute(add_documents(self.job_id, len(documents), now))
                if complete_with is not None:
                    session.execute(complete_upload(self.job_id, complete_with, now))
        except IntegrityError as exc:
            if self.layout is None and self.idempotency_key:
                raise DuplicateUpload(self.idempotency_key) from exc
            raise
        self.layout = layout
        # After the commit: a worker must find every document it is sent. If the broker is down,
        # the documents are safe in the database and the sweeper sends them later.
        ids = [document["id"] for document in documents]
        try:
            enqueue_documents(self.producer, self.job_id, ids, self.batch_size)
        except Exception:  # noqa: BLE001 - kombu/redis errors vary by transport
            logger.exception("could not enqueue %d documents of job %s", len(ids), self.job_id)

    def add(self, documents: list[dict], layout: str) -> None:
        self._write(documents, layout, complete_with=None)

    def complete(self, documents: list[dict], layout: str, rejected: list[dict]) -> Job:
        self._write(documents, layout, complete_with=rejected)
        with self.sessions() as session:
            return session.get(Job, self.job_id)

    def abort(self) -> None:
        if self.layout is not None:
            with self.sessions.begin() as session:
                session.execute(delete(Job).where(Job.id == self.job_id))


def get_job(session: Session, job_id: uuid.UUID, tenant_id: str) -> Job | None:
    job = session.get(Job, job_id)
    return job if job is not None and job.tenant_id == tenant_id else None


def list_jobs(session: Session, tenant_id: str, limit: int) -> list[Job]:
    query = select(Job).where(Job.tenant_id == tenant_id)
    return list(session.scalars(query.order_by(Job.created_at.desc()).limit(limit)))


def _nothing_accepted(rejected: list[dict]) -> UploadRefused:
    if not rejected:
        detail = "no files: send images or ZIPs of images in the form field 'files'"
        return UploadRefused(422, "no_files", detail)
    detail = f"no file could be read: all {len(rejected)} refused (see `rejected`); no job created"
    return UploadRefused(422, "no_readable_files", detail, rejected=rejected)


class Upload:
    """One POST /jobs body streamed into storage and the database as a new job."""

    def __init__(
        self, settings: PlatformSettings, sessions: sessionmaker[Session], storage: Storage,
        producer: Celery,
        boundary: bytes, tenant_id: str, idempotency_key: str | None, query_layout: str | None,
        document_types: DocumentTypes | None = None,
    ):  # fmt: skip
        self.sessions, self.query_layout = sessions, query_layout
        self.document_types = document_types
        job_id = uuid.uuid4()
        self.intake = JobIntake(
            sessions, producer, job_id, tenant_id, idempotency_key, settings.job_batch_size
        )
        limits = Limits(
            max_files=settings.max_job_files,
            max_image_bytes=settings.max_image_bytes,
            max_image_pixels=settings.max_image_pixels,
            max_total_bytes=settings.max_job_bytes,
        )
        self.receiver = UploadReceiver(
            boundary=boundary, job_id=job_id, storage=storage, limits=limits,
            on_documents=lambda documents: self.intake.add(documents, self.layout()),
            flush_every=settings.job_batch_size,
        )  # fmt: skip

    def layout(self) -> str:
        value = self.receiver.fields.get("layout") or self.query_layout or JobLayout.auto.value
        known = value in {layout.value for layout in JobLayout}
        if not known and (self.document_types is None or not self.document_types.get(value)):
            raise UploadRefused(
                422,
                "invalid_layout",
                f"layout must be auto, digit, field, cheque or a document type, got {value!r}",
            )
        if self.intake.layout is not None and value != self.intake.layout:
            raise UploadRefused(
                422, "layout_after_files", "send the layout field before the files (or ?layout=)"
            )
        return value

    async def run(self, request: Request) -> Job:
        """Stream the body in; the committed job, or nothing kept at all on any failure."""
        try:
            await self.receiver.receive(request.stream())
            rejected = [vars(r) for r in self.receiver.rejected]
            if not self.receiver.accepted:
                raise _nothing_accepted(rejected)
            return await run_in_threadpool(
                self.intake.complete, self.receiver.pending, self.layout(), rejected
            )
        except DuplicateUpload:  # a concurrent retry with the same key won: answer its job
            await run_in_threadpool(self.receiver.discard)
            with self.sessions() as session:
                return find_by_idempotency_key(
                    session, self.intake.tenant_id, self.intake.idempotency_key
                )
        except BaseException:  # refused, client gone, 413, an outage (503), a bug: keep nothing
            await run_in_threadpool(self._give_up)
            raise

    def _give_up(self) -> None:
        self.intake.abort()
        self.receiver.discard()


def _results_query(job_id: uuid.UUID, needs_review: bool | None):
    query = (
        select(Document, Prediction)
        .outerjoin(Prediction, Prediction.document_id == Document.id)
        .where(Document.job_id == job_id)
        .order_by(Document.position)
    )
    if needs_review is not None:
        query = query.where(Prediction.needs_review.is_(needs_review))
    return query


def result_row(document: Document, prediction: Prediction | None) -> dict:
    return {
        "document_id": document.id,
        "position": document.position,
        "filename": document.filename,
        "status": document.status,
        "text": prediction.text if prediction else None,
        "confidence": prediction.confidence if prediction else None,
        "needs_review": prediction.needs_review if prediction else None,
        "review_reasons": prediction.review_reasons if prediction else None,
        "digits": prediction.digits if prediction else None,
        "fields": prediction.fields if prediction else None,
        "model_version": prediction.model_version if prediction else None,
        "error_code": document.error_code,
        "error": document.error,
        "timings": prediction.timings if prediction else None,
    }


def results_page(
    session: Session, job_id: uuid.UUID, after: int, limit: int, needs_review: bool | None
) -> tuple[list[dict], int | None]:
    """One page of results after position `after`, and the cursor of the next page."""
    query = _results_query(job_id, needs_review).where(Document.position > after)
    rows = session.execute(query.limit(limit + 1)).all()
    items = [result_row(document, prediction) for document, prediction in rows[:limit]]
    next_after = items[-1]["position"] if len(rows) > limit else None
    return items, next_after


def results_csv(sessions, job_id: uuid.UUID, needs_review: bool | None) -> Iterator[str]:
    """The whole result set as CSV text, streamed in chunks (a fresh session: the response
    body is produced after the request's own session is gone)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    with sessions() as session:
        rows = session.execute(
            _results_query(job_id, needs_review).execution_options(yield_per=1000)
        )
        for count, (document, prediction) in enumerate(rows, 1):
            writer.writerow(result_row(document, prediction))
            if count % 1000 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()

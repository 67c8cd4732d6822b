"""Jobs: take an upload in, then read, list and page through results (scoped to a tenant)."""

import csv
import io
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime

from celery import Celery
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from api.jobs.errors import QueueFull, UploadGivenUp
from api.jobs.idempotency import BodyHash, UploadInProgress, hashed
from api.jobs.schemas import CSV_COLUMNS, Result
from api.jobs.upload import Limits, UploadReceiver, UploadRefused
from api.metrics import UPLOADS
from digitflow.db import Document, Job, JobLayout, JobStatus, Prediction, ReviewStatus, ReviewTask
from digitflow.db.progress import add_documents, complete_upload
from digitflow.queue import enqueue_documents, queue_depth
from digitflow.settings import PlatformSettings
from digitflow.storage import Storage
from recognition.doctypes import DocumentTypes

logger = logging.getLogger("digitflow.api")


def check_backlog(producer: Celery, settings) -> None:
    """QueueFull while the documents waiting in the queue would take the workers longer than
    the configured time; an unreachable broker is no reason to refuse (the sweeper sends
    what is committed once it is back)."""
    try:
        waiting = queue_depth(producer) * settings.job_batch_size  # a message holds a batch
    except Exception:  # noqa: BLE001 - kombu/redis errors vary by transport
        return
    seconds = waiting / settings.worker_documents_per_second
    if seconds > settings.queue_max_seconds:
        raise QueueFull(seconds, retry_after=max(1, round(seconds - settings.queue_max_seconds)))


def find_by_idempotency_key(session: Session, tenant_id: str, key: str) -> Job | None:
    return session.scalar(select(Job).where(Job.tenant_id == tenant_id, Job.idempotency_key == key))


def delete_job_rows(session: Session, job_id: uuid.UUID, *guards) -> int:
    """Delete a job (if `guards` hold) with everything under it; 1 if it was deleted.

    Its documents go first (their predictions and review tasks by cascade), then the job: a
    worker committing a batch locks its documents and then the job, so taking them in the same
    order only waits for it. The job first (its cascade reaching for documents a worker holds,
    while the worker reaches for the job) deadlocked, and Postgres aborted the delete."""
    job = select(Job.id).where(Job.id == job_id, *guards).scalar_subquery()
    session.execute(
        delete(Document).where(Document.job_id == job),
        execution_options={"synchronize_session": False},
    )
    return session.execute(delete(Job).where(Job.id == job_id, *guards)).rowcount


def discard_job(sessions: sessionmaker[Session], storage: Storage, job_id: uuid.UUID) -> None:
    """Delete a job, its documents and predictions and its stored files. Rows first: a worker
    sent one of its batches then finds nothing to do."""
    with sessions.begin() as session:
        delete_job_rows(session, job_id)
    storage.delete_prefix(f"jobs/{job_id}/")


def completed_job_for_key(
    sessions: sessionmaker[Session], storage: Storage, tenant_id: str, key: str
) -> Job | None:
    """The job whose upload completed under this key; None if there is none. What an upload
    that never completed left under the key (it was never accepted) is removed, so that the
    retry starts afresh."""
    with sessions() as session:
        job = find_by_idempotency_key(session, tenant_id, key)
    if job is None or job.uploaded_at is not None:
        return job
    # The latest request with a key wins: a twin still streaming stops at its next batch (409).
    logger.warning(
        "replacing unfinished upload under a retried key",
        extra={"job_id": str(job.id), "tenant_id": tenant_id},
    )
    discard_job(sessions, storage, job.id)
    return None


class JobIntake:
    """Commits an upload's documents batch by batch while it streams in, then completes it.

    The job row is inserted, `uploading`, before the first byte is read; each batch is
    committed (documents in one executemany, the job's total raised atomically) and only then
    enqueued, so a worker always finds what it is sent. The job is accepted only when
    `complete` commits (`uploaded_at` set, status `queued` or later). If the upload fails,
    `abort` deletes the job and, by cascade, everything under it; if the process or the
    database dies first, the sweeper fails the job after UPLOAD_ABANDONED_AFTER_SECONDS.
    Every write is guarded on status `uploading`: an upload that was given up (or replaced by
    a retry) stops with 409 at its next batch.
    """

    def __init__(
        self, sessions, producer, job_id: uuid.UUID, tenant_id: str, key: str | None,
        batch_size: Callable[[], int],
    ):  # fmt: skip
        self.sessions, self.producer, self.job_id = sessions, producer, job_id
        self.tenant_id, self.idempotency_key = tenant_id, key
        self.batch_size = batch_size  # documents per task, for the job's layout
        self.layout: str | None = None  # fixed when the first documents are written
        self.opened = False

    def open(self, layout: str) -> None:
        now = datetime.now(UTC)
        try:
            with self.sessions.begin() as session:
                session.add(
                    Job(id=self.job_id, tenant_id=self.tenant_id, layout=layout,
                        status=JobStatus.uploading, idempotency_key=self.idempotency_key,
                        total=0, rejected=[], created_at=now, updated_at=now)
                )  # fmt: skip
        except IntegrityError as exc:  # a concurrent request holds the key
            raise UploadInProgress() from exc
        self.opened = True

    def _write(self, documents: list[dict], layout: str, completion: tuple | None) -> None:
        now = datetime.now(UTC)
        with self.sessions.begin() as session:
            if self.layout is None:
                session.execute(update(Job).where(Job.id == self.job_id).values(layout=layout))
            if documents:
                try:
                    session.execute(insert(Document), documents)
                except IntegrityError as exc:  # the job row is gone: a retry or DELETE took it
                    raise UploadGivenUp() from exc
                if session.execute(add_documents(self.job_id, len(documents), now)).rowcount != 1:
                    raise UploadGivenUp()
            if completion is not None:
                rejected, request_hash = completion
                done = session.execute(complete_upload(self.job_id, rejected, request_hash, now))
                if done.rowcount != 1:
                    raise UploadGivenUp()
        self.layout = layout
        # After the commit: a worker must find every document it is sent. If the broker is down,
        # the documents are safe in the database and the sweeper sends them later.
        ids = [document["id"] for document in documents]
        try:
            enqueue_documents(self.producer, self.job_id, ids, self.batch_size())
        except Exception:  # noqa: BLE001 - kombu/redis errors vary by transport
            logger.exception(
                "could not enqueue %d documents", len(ids), extra={"job_id": str(self.job_id)}
            )

    def add(self, documents: list[dict], layout: str) -> None:
        self._write(documents, layout, completion=None)

    def touch(self) -> None:
        """The upload is alive (a slow client between batches): keep the sweeper away."""
        with self.sessions.begin() as session:
            session.execute(
                update(Job)
                .where(Job.id == self.job_id, Job.status == JobStatus.uploading)
                .values(updated_at=datetime.now(UTC))
            )

    def complete(
        self, documents: list[dict], layout: str, rejected: list[dict], request_hash: str | None
    ) -> Job:
        self._write(documents, layout, completion=(rejected, request_hash))
        with self.sessions() as session:
            return session.get(Job, self.job_id)

    def abort(self) -> None:
        if self.opened:  # only a job still uploading: never one a retry has taken over
            with self.sessions.begin() as session:
                delete_job_rows(session, self.job_id, Job.status == JobStatus.uploading)


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
        # Only a retry with the same Idempotency-Key compares bodies: without a key, hashing every
        # byte of the upload would buy nothing.
        self.body_hash = BodyHash(boundary) if idempotency_key else None
        self.heartbeat_seconds = settings.upload_abandoned_after_seconds / 10
        job_id = uuid.uuid4()
        self._batch_size_for, self._batch_size = settings.batch_size_for, None
        self.intake = JobIntake(
            sessions, producer, job_id, tenant_id, idempotency_key, self.batch_size
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
            flush_every=self.batch_size,
        )  # fmt: skip

    def batch_size(self) -> int:
        """Documents a commit (and a task) for this job's layout, fixed at its first file."""
        if self._batch_size is None:
            self._batch_size = self._batch_size_for(self.layout())
        return self._batch_size

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

    async def _alive(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The body's chunks (hashed on the way when an Idempotency-Key came with them); the job's
        heartbeat while they arrive."""
        last_beat = time.monotonic()
        if self.body_hash is not None:
            chunks = hashed(chunks, self.body_hash)
        async for chunk in chunks:
            if time.monotonic() - last_beat > self.heartbeat_seconds:
                await run_in_threadpool(self.intake.touch)
                last_beat = time.monotonic()
            yield chunk

    async def run(self, request: Request) -> Job:
        """Stream the body in; the committed job, or nothing kept at all on any failure."""
        try:
            await run_in_threadpool(self.intake.open, JobLayout.digit.value)
            await self.receiver.receive(self._alive(request.stream()))
            rejected = [vars(r) for r in self.receiver.rejected]
            if not self.receiver.accepted:
                raise _nothing_accepted(rejected)
            job = await run_in_threadpool(
                self.intake.complete, self.receiver.pending, self.layout(), rejected,
                self.body_hash.hexdigest() if self.body_hash is not None else None,
            )  # fmt: skip
        except BaseException:  # refused, client gone, 413, an outage (503), a bug: keep nothing
            await run_in_threadpool(self._give_up)
            raise
        UPLOADS.labels("accepted").inc()
        return job

    def _give_up(self) -> None:
        UPLOADS.labels("failed").inc()
        try:
            self.intake.abort()
        except (OperationalError, InterfaceError):  # the database is gone: the sweeper cleans up
            logger.warning("could not delete an aborted upload", extra=self._ids())
        self.receiver.discard()

    def _ids(self) -> dict:
        return {"job_id": str(self.intake.job_id), "tenant_id": self.intake.tenant_id}


def _results_query(job_id: uuid.UUID, needs_review: bool | None):
    query = (
        select(Document, Prediction, ReviewTask)
        .outerjoin(Prediction, Prediction.document_id == Document.id)
        .outerjoin(ReviewTask, ReviewTask.document_id == Document.id)
        .where(Document.job_id == job_id)
        .order_by(Document.position)
    )
    if needs_review is not None:
        query = query.where(Prediction.needs_review.is_(needs_review))
    return query


def review_columns(prediction: Prediction | None, task: ReviewTask | None) -> dict:
    """model_text / final_text / review_status / reviewed_by of one result."""
    if prediction is None:
        return {"model_text": None, "final_text": None, "review_status": None}
    if task is None:
        return {"model_text": prediction.text, "final_text": prediction.text,
                "review_status": ReviewStatus.not_needed.value}  # fmt: skip
    return {
        "model_text": prediction.text, "final_text": task.final_text,
        "review_status": task.status, "reviewed_by": task.reviewed_by,
        "reviewed_at": task.reviewed_at,
    }  # fmt: skip


def result_row(
    document: Document, prediction: Prediction | None, task: ReviewTask | None = None
) -> dict:
    return {
        **review_columns(prediction, task),
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
    items = [result_row(*row) for row in rows[:limit]]
    next_after = items[-1]["position"] if len(rows) > limit else None
    return items, next_after


# A spreadsheet runs a cell starting with one of these as a formula (OWASP: CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_cell(value) -> str | int:
    """A value as a spreadsheet-safe CSV cell: text that could start a formula gets a leading
    apostrophe, booleans are true/false, confidences are rounded to 4 places."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return f"{value:.4f}"
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_row(
    document: Document, prediction: Prediction | None, task: ReviewTask | None = None
) -> dict:
    """One Result (the JSON results' shape) as CSV cells."""
    row = Result.model_validate(result_row(document, prediction, task))
    return {column: csv_cell(getattr(row, column)) for column in CSV_COLUMNS}


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
        for count, row in enumerate(rows, 1):
            writer.writerow(csv_row(*row))
            if count % 1000 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()

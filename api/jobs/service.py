"""Jobs in the database: create, read, list, page through results."""

import csv
import io
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digitflow.db import Document, Job, Prediction
from digitflow.db.progress import add_documents, complete_upload
from worker.celery_app import enqueue_documents

logger = logging.getLogger("digitflow.api")

CSV_COLUMNS = [
    "position", "filename", "status", "text", "confidence", "needs_review",
    "model_version", "error_code", "error", "document_id",
]  # fmt: skip


def find_by_idempotency_key(session: Session, key: str) -> Job | None:
    return session.scalar(select(Job).where(Job.idempotency_key == key))


class DuplicateUpload(Exception):
    """Another request with the same Idempotency-Key created the job first."""


class JobIntake:
    """Commits an upload's documents batch by batch while it streams in, then completes it.

    The job row is inserted with the first batch. Each batch is committed (documents in one
    executemany, the job's total raised atomically) and only then enqueued, so a worker always
    finds what it is sent. If the upload fails half-way, `abort` deletes the job and, by cascade,
    everything under it; tasks already sent then find nothing to do.
    """

    def __init__(self, sessions, producer, job_id: uuid.UUID, key: str | None, batch_size: int):
        self.sessions, self.producer, self.job_id = sessions, producer, job_id
        self.idempotency_key, self.batch_size = key, batch_size
        self.layout: str | None = None  # fixed when the job row is written

    def _write(self, documents: list[dict], layout: str, complete_with: list[dict] | None):
        now = datetime.now(UTC)
        try:
            with self.sessions.begin() as session:
                if self.layout is None:
                    session.add(
                        Job(id=self.job_id, layout=layout, idempotency_key=self.idempotency_key,
                            total=0, rejected=[], created_at=now, updated_at=now)
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


def get_job(session: Session, job_id: uuid.UUID) -> Job | None:
    return session.get(Job, job_id)


def list_jobs(session: Session, limit: int) -> list[Job]:
    return list(session.scalars(select(Job).order_by(Job.created_at.desc()).limit(limit)))


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

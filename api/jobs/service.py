"""Jobs in the database: create, read, list, page through results."""

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digitflow.db import Document, Job, JobStatus, Prediction

CSV_COLUMNS = [
    "position", "filename", "status", "text", "confidence", "needs_review",
    "model_version", "error_code", "error", "document_id",
]  # fmt: skip


def find_by_idempotency_key(session: Session, key: str) -> Job | None:
    return session.scalar(select(Job).where(Job.idempotency_key == key))


def create_job(
    session: Session,
    job_id: uuid.UUID,
    layout: str,
    documents: list[dict],
    rejected: list[dict],
    idempotency_key: str | None,
) -> Job | None:
    """Insert the job and all its documents (one executemany) and commit. Returns None when a
    concurrent request with the same idempotency key won the race."""
    now = datetime.now(UTC)
    job = Job(
        id=job_id,
        layout=layout,
        idempotency_key=idempotency_key,
        total=len(documents),
        rejected=rejected,
        status=JobStatus.queued if documents else JobStatus.failed,
        finished_at=None if documents else now,
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    try:
        session.flush()
        if documents:
            session.execute(insert(Document), documents)
        session.commit()
    except IntegrityError:
        session.rollback()
        if idempotency_key and find_by_idempotency_key(session, idempotency_key):
            return None
        raise
    return job


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

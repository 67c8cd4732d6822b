"""What a worker does with a batch of documents, and the sweeper. No Celery in here.

A batch is read from storage, preprocessed, run through the model in ONE call and written in ONE
transaction: documents leave `queued` with a guarded UPDATE (`... AND status = 'queued'`), only the
ones this transaction moved get predictions (unique per document, ON CONFLICT DO NOTHING) and
only they are added to the job's counters. A redelivered or concurrent duplicate batch therefore
changes nothing.
"""

import logging
import math
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from digitflow.db import Document, DocumentStatus, Job, JobLayout, Prediction
from digitflow.db.progress import record_progress
from digitflow.review import flag_rows, queue_tasks
from digitflow.storage import ObjectNotFound, Storage
from recognition import (
    WORK_MIN_SIDE,
    ImageError,
    Recognizer,
    decode_image,
    prepare,
    segment_digits,
)
from recognition.errors import EmptyImage
from recognition.review import ReviewPolicy

logger = logging.getLogger("digitflow.worker")


@dataclass
class Runtime:
    """What a worker process loads once (after fork) and reuses for every batch."""

    recognizer: Recognizer
    sessions: sessionmaker[Session]
    storage: Storage
    max_pixels: int
    review: ReviewPolicy | None = None  # None: the model card's threshold, no audit


@dataclass
class BatchOutcome:
    succeeded: int = 0
    failed: int = 0
    needs_review: int = 0
    skipped: int = 0  # already processed (redelivery) or unknown
    timings: dict[str, float] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(UTC)


def _insert(engine: Engine, model):
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(model)


def _digit_images(data: bytes, layout: str, max_pixels: int) -> list[np.ndarray]:
    if layout == JobLayout.field:
        digits = segment_digits(decode_image(data, max_pixels, WORK_MIN_SIDE))
        if not digits:
            raise EmptyImage("no digits found in the field")
        return digits
    return [prepare(data, max_pixels)]


def _pending(rt: Runtime, job_id: uuid.UUID, document_ids: list[uuid.UUID]):
    """The job's layout and the (id, storage key) of the given documents still queued."""
    with rt.sessions() as session:
        layout = session.scalar(select(Job.layout).where(Job.id == job_id))
        pending = session.execute(
            select(Document.id, Document.storage_key).where(
                Document.id.in_(document_ids),
                Document.job_id == job_id,
                Document.status == DocumentStatus.queued,
            )
        ).all()
    return layout, pending


def _preprocess(rt: Runtime, layout: str, pending, blobs):
    """Every readable document becomes one or more 28x28 digits in one list: the images, each
    document's span in it, and the failures (code, message) of the unreadable ones."""
    images: list[np.ndarray] = []
    spans: dict[uuid.UUID, tuple[int, int]] = {}
    failures: dict[uuid.UUID, tuple[str, str]] = {}
    for (doc_id, _), blob in zip(pending, blobs, strict=True):
        if isinstance(blob, ObjectNotFound):
            failures[doc_id] = ("missing_object", "the stored file is missing")
            continue
        try:
            digits = _digit_images(blob, layout, rt.max_pixels)
        except ImageError as exc:
            failures[doc_id] = (exc.code, str(exc))
            continue
        spans[doc_id] = (len(images), len(images) + len(digits))
        images.extend(digits)
    return images, spans, failures


def _prediction_row(rt: Runtime, job_id: uuid.UUID, doc_id: uuid.UUID, digits, timings) -> dict:
    return {
        "id": uuid.uuid4(),
        "document_id": doc_id,
        "job_id": job_id,
        "text": "".join(str(p.digit) for p in digits),
        "confidence": math.prod(p.confidence for p in digits),
        "needs_review": any(p.needs_review for p in digits),
        "digits": [
            {
                "digit": p.digit,
                "confidence": round(p.confidence, 6),
                "probabilities": [round(x, 6) for x in p.probabilities],
            }
            for p in digits
        ],
        "model_version": rt.recognizer.version,
        "timings": timings,
    }


def process_batch(rt: Runtime, job_id: uuid.UUID, document_ids: list[uuid.UUID]) -> BatchOutcome:
    """Load -> recognise (one model call) -> persist (one transaction)."""
    outcome = BatchOutcome()
    started = time.perf_counter()
    layout, pending = _pending(rt, job_id, document_ids)
    outcome.skipped = len(document_ids) - len(pending)
    if layout is None or not pending:
        return outcome

    blobs = rt.storage.get_many(key for _, key in pending)
    read_done = time.perf_counter()
    images, spans, failures = _preprocess(rt, layout, pending, blobs)
    preprocess_done = time.perf_counter()
    predictions = rt.recognizer.predict(np.stack(images)) if images else []
    inference_done = time.perf_counter()

    count = max(len(pending), 1)
    timings = {
        "read_ms": round((read_done - started) * 1000 / count, 4),
        "preprocess_ms": round((preprocess_done - read_done) * 1000 / count, 4),
        "inference_ms": round((inference_done - preprocess_done) * 1000 / count, 4),
    }
    rows = {
        doc_id: _prediction_row(rt, job_id, doc_id, predictions[start:stop], timings)
        for doc_id, (start, stop) in spans.items()
    }
    _commit(rt, job_id, rows, failures, outcome)
    outcome.timings = {**timings, "total_s": time.perf_counter() - started}
    return outcome


def _commit(rt: Runtime, job_id, rows: dict, failures: dict, outcome: BatchOutcome) -> None:
    flags = flag_rows(rt.review or ReviewPolicy(rt.recognizer.threshold), rows)  # sets needs_review
    now = _now()
    with rt.sessions.begin() as session:
        won: list[uuid.UUID] = []
        if rows:
            won = list(
                session.scalars(
                    update(Document)
                    .where(Document.id.in_(rows), Document.status == DocumentStatus.queued)
                    .values(status=DocumentStatus.succeeded, updated_at=now)
                    .returning(Document.id)
                )
            )
        failed = 0
        for doc_id, (code, message) in failures.items():
            moved = session.scalar(
                update(Document)
                .where(Document.id == doc_id, Document.status == DocumentStatus.queued)
                .values(
                    status=DocumentStatus.failed, error_code=code, error=message, updated_at=now
                )
                .returning(Document.id)
            )
            failed += moved is not None
        if won:
            values = [{**rows[doc_id], "created_at": now, "updated_at": now} for doc_id in won]
            session.execute(
                _insert(session.get_bind(), Prediction).on_conflict_do_nothing(
                    index_elements=["document_id"]
                ),
                values,
            )
            queue_tasks(session, rows, flags, won, now)
        succeeded = len(won)
        needs_review = sum(rows[doc_id]["needs_review"] for doc_id in won)
        if succeeded or failed:
            session.execute(record_progress(job_id, succeeded, failed, needs_review, now))
    outcome.succeeded, outcome.failed, outcome.needs_review = succeeded, failed, needs_review
    outcome.skipped += len(rows) + len(failures) - succeeded - failed


def stale_documents(
    sessions: sessionmaker[Session], older_than: timedelta, limit: int = 50_000
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Documents still `queued` whose task was sent more than `older_than` ago, by job; marks
    them as sent now, so the next sweep leaves them alone for another `older_than`."""
    now = _now()
    with sessions.begin() as session:
        query = (
            select(Document.id, Document.job_id)
            .where(
                Document.status == DocumentStatus.queued,
                Document.enqueued_at < now - older_than,
            )
            .order_by(Document.enqueued_at)
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)  # two sweepers never take the same
        found = session.execute(query).all()
        by_job: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
        for doc_id, job_id in found:
            by_job[job_id].append(doc_id)
        ids = [doc_id for doc_id, _ in found]
        for start in range(0, len(ids), 1000):
            session.execute(
                update(Document)
                .where(Document.id.in_(ids[start : start + 1000]))
                .values(enqueued_at=now)
            )
    return dict(by_job)

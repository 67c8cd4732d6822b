"""What a worker does with a batch of documents, and the sweeper. No Celery in here.

load -> recognise -> persist, each a small function. Recognition is the core's field reader
(`recognition.read_segmentations`: every field of the batch in ONE model call). Persisting is ONE
transaction: documents leave `queued` with guarded UPDATEs (`... AND status = 'queued'`; one
statement for the successes, one for the failures), only the ones this transaction moved get
predictions (unique per document, ON CONFLICT DO NOTHING) and only they are added to the job's
counters. A redelivered or concurrent duplicate batch therefore changes nothing.
"""

import dataclasses
import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from digitflow.db import Document, DocumentStatus, Job, JobLayout, Prediction
from digitflow.db.progress import record_progress
from digitflow.review import flag_rows, queue_tasks
from digitflow.storage import ObjectNotFound, Storage
from recognition import FieldReading, ImageError, Recognizer, read_segmentations, segment_image
from recognition.doctypes import DocumentReading, DocumentTypes, prepare_document, read_prepared
from recognition.fields import ReviewPolicy as FieldPolicy
from recognition.fields import digit_dict
from recognition.review import ReviewPolicy

logger = logging.getLogger("digitflow.worker")


@dataclass
class Runtime:
    """What a worker process loads once (after fork) and reuses for every batch."""

    recognizer: Recognizer
    sessions: sessionmaker[Session]
    storage: Storage
    max_pixels: int
    # Document types for layout=cheque and registered types (the built-in ones without it).
    document_types: DocumentTypes = field(default_factory=lambda: DocumentTypes(None))
    review: ReviewPolicy | None = None  # None: the model card's threshold, no audit


@dataclass
class BatchOutcome:
    succeeded: int = 0
    failed: int = 0
    needs_review: int = 0
    skipped: int = 0  # already processed (redelivery) or unknown
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Loaded:
    layout: str | None
    blobs: dict[uuid.UUID, bytes | ObjectNotFound]


def _now() -> datetime:
    return datetime.now(UTC)


def _insert(engine: Engine, model):
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(model)


def load(rt: Runtime, job_id: uuid.UUID, document_ids: list[uuid.UUID]) -> _Loaded:
    """The job's layout and the stored bytes of the documents still queued."""
    with rt.sessions() as session:
        layout = session.scalar(select(Job.layout).where(Job.id == job_id))
        pending = session.execute(
            select(Document.id, Document.storage_key).where(
                Document.id.in_(document_ids),
                Document.job_id == job_id,
                Document.status == DocumentStatus.queued,
            )
        ).all()
    if layout is None or not pending:
        return _Loaded(layout, {})
    blobs = rt.storage.get_many(key for _, key in pending)
    return _Loaded(layout, dict(zip((doc_id for doc_id, _ in pending), blobs, strict=True)))


def recognise(
    rt: Runtime, loaded: _Loaded
) -> tuple[dict[uuid.UUID, FieldReading], dict[uuid.UUID, tuple[str, str]], float]:
    """Readings and failures (code, message) by document; the seconds spent segmenting."""
    doc_type = rt.document_types.get(loaded.layout) if loaded.layout else None
    if doc_type is not None:
        return recognise_documents(rt, loaded, doc_type)
    if loaded.layout and loaded.layout not in JobLayout.__members__:
        # A document type this worker does not know (its folder is not shared, or it was
        # removed): every document fails with the reason, none is read with a wrong layout.
        message = f"unknown layout or document type {loaded.layout!r}"
        return {}, {doc_id: ("unknown_layout", message) for doc_id in loaded.blobs}, 0.0
    layout = JobLayout(loaded.layout).value if loaded.layout else "auto"
    return _read_all(
        rt, loaded, lambda blob: segment_image(blob, layout, rt.max_pixels), read_segmentations
    )


def _read_all(rt: Runtime, loaded: _Loaded, prepare, read):
    """`prepare(bytes)` every stored document (timed), then `read` them all in ONE model call."""
    started = time.perf_counter()
    prepared, failures = _each_blob(loaded, prepare)
    segmented = time.perf_counter() - started
    readings = read(list(prepared.values()), rt.recognizer)
    return dict(zip(prepared, readings, strict=True)), failures, segmented


def _each_blob(loaded: _Loaded, work) -> tuple[dict, dict]:
    """`work(bytes)` for every stored document; failures (code, message) for the rest."""
    done, failures = {}, {}
    for doc_id, blob in loaded.blobs.items():
        if isinstance(blob, ObjectNotFound):
            failures[doc_id] = ("missing_object", "the stored file is missing")
            continue
        try:
            done[doc_id] = work(blob)
        except ImageError as exc:
            failures[doc_id] = (exc.code, str(exc))
    return done, failures


def recognise_documents(rt: Runtime, loaded: _Loaded, doc_type):
    """The same for whole pages of a document type: every field of every page, ONE model call."""
    return _read_all(
        rt, loaded, lambda blob: prepare_document(blob, doc_type, rt.max_pixels), read_prepared
    )


def _rounded_digits(digits: list[dict]) -> list[dict]:
    return [
        {
            **d,
            "confidence": round(d["confidence"], 6),
            "probabilities": [round(x, 6) for x in d["probabilities"]],
        }
        for d in digits
    ]


def prediction_row(reading, job_id: uuid.UUID, doc_id: uuid.UUID, rt, timings):
    """A FieldReading, or a DocumentReading (layout=cheque or a document type, whose fields
    are stored too and whose primary field gives `text` and `digits`)."""
    if isinstance(reading, DocumentReading):
        fields = reading.as_dict()["fields"]
        for entry in fields.values():
            entry["digits"] = _rounded_digits(entry["digits"])
            entry.pop("probabilities", None)  # the first digit's, already in `digits`
        digits = fields[reading.primary]["digits"]
    else:
        fields, digits = None, _rounded_digits([digit_dict(d) for d in reading.digits])
    return {
        "id": uuid.uuid4(),
        "document_id": doc_id,
        "job_id": job_id,
        "text": reading.text,
        "confidence": reading.confidence,
        "needs_review": reading.needs_review,
        "review_reasons": list(reading.review_reasons),
        "digits": digits,
        "fields": fields,
        "model_version": rt.recognizer.version,
        "timings": timings,
    }


def process_batch(rt: Runtime, job_id: uuid.UUID, document_ids: list[uuid.UUID]) -> BatchOutcome:
    started = time.perf_counter()
    loaded = load(rt, job_id, document_ids)
    outcome = BatchOutcome(skipped=len(document_ids) - len(loaded.blobs))
    if not loaded.blobs:
        return outcome
    read_done = time.perf_counter()
    readings, failures, segmented = recognise(rt, loaded)
    recognised = time.perf_counter()
    count = len(loaded.blobs)
    timings = {
        "read_ms": round((read_done - started) * 1000 / count, 4),
        "preprocess_ms": round(segmented * 1000 / count, 4),
        "inference_ms": round((recognised - read_done - segmented) * 1000 / count, 4),
    }
    rows = {
        doc_id: prediction_row(reading, job_id, doc_id, rt, timings)
        for doc_id, reading in readings.items()
    }
    persist(rt, job_id, rows, failures, outcome)
    outcome.timings = {**timings, "total_s": time.perf_counter() - started}
    return outcome


def _mark_failed(session: Session, failures: dict, now: datetime) -> int:
    """Every failure of the batch in ONE guarded UPDATE; how many documents it moved."""
    if not failures:
        return 0
    codes = {doc_id: code for doc_id, (code, _) in failures.items()}
    messages = {doc_id: message for doc_id, (_, message) in failures.items()}
    moved = session.scalars(
        update(Document)
        .where(Document.id.in_(failures), Document.status == DocumentStatus.queued)
        .values(
            status=DocumentStatus.failed,
            error_code=case(codes, value=Document.id),
            error=case(messages, value=Document.id),
            updated_at=now,
        )
        .returning(Document.id)
    )
    return len(list(moved))


def _policies(rt: Runtime) -> tuple[ReviewPolicy, ReviewPolicy]:
    """The review policy for one-digit readings and for longer fields: a field's confidence is
    a product of digits', held to the model card's field threshold unless the deployment set
    a threshold of its own."""
    policy = rt.review or ReviewPolicy(rt.recognizer.threshold)
    if policy.threshold != rt.recognizer.threshold:
        return policy, policy
    field = FieldPolicy.of(rt.recognizer).field_threshold
    return policy, dataclasses.replace(policy, threshold=field)


def persist(rt: Runtime, job_id, rows: dict, failures: dict, outcome: BatchOutcome) -> None:
    # The review policy has the last word on needs_review (the core's reasons are kept).
    digit_policy, field_policy = _policies(rt)
    multi = {doc_id for doc_id, row in rows.items() if len(row["digits"]) > 1}
    flags = flag_rows(digit_policy, {k: v for k, v in rows.items() if k not in multi})
    flags |= flag_rows(field_policy, {k: v for k, v in rows.items() if k in multi})
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
        failed = _mark_failed(session, failures, now)
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


def job_layouts(sessions: sessionmaker[Session], job_ids) -> dict[uuid.UUID, str]:
    """Each job's layout: a re-sent batch is as large as the job's first ones were (whole
    pages go fewer to a task than single images)."""
    with sessions() as session:
        rows = session.execute(select(Job.id, Job.layout).where(Job.id.in_(list(job_ids))))
        return dict(rows.all())


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

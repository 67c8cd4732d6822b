"""Jobs, their documents and the documents' predictions.

Postgres (or the embedded SQLite file) is the source of truth for job and document state; Celery
messages only carry ids. Counters on `jobs` are changed with atomic `SET n = n + k` updates in the
same transaction that moves documents out of `queued`, so concurrent or redelivered batches can
never double-count (see digitflow.db.progress).
"""

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from digitflow.auth import DEFAULT_TENANT

# Stable constraint names, so migrations can drop and alter them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """`timestamp with time zone`; SQLite forgets the zone, so values are read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime: use timezone-aware UTC timestamps")
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class IdTimestamped:
    """UUID primary key and creation/modification times, on every table."""

    id: Mapped[uuid.UUID] = mapped_column(
        Uuid, primary_key=True, default=uuid.uuid4, sort_order=-10
    )
    created_at: Mapped[datetime] = mapped_column(default=utc_now, sort_order=-9)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class JobStatus(enum.StrEnum):
    uploading = "uploading"  # the upload is still streaming in: not accepted yet
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    partially_succeeded = "partially_succeeded"
    failed = "failed"


class JobLayout(enum.StrEnum):
    auto = "auto"  # the reader decides: one digit or a field of several
    digit = "digit"  # one digit per document
    field = "field"  # several digits side by side (an amount or account-number box)


class DocumentStatus(enum.StrEnum):
    queued = "queued"
    succeeded = "succeeded"
    failed = "failed"


class Job(IdTimestamped, Base):
    __tablename__ = "jobs"

    # Every job belongs to one tenant (digitflow.auth); every query is scoped to it.
    tenant_id: Mapped[str] = mapped_column(String(64), default=DEFAULT_TENANT)
    status: Mapped[str] = mapped_column(String(32), default=JobStatus.queued)
    layout: Mapped[str] = mapped_column(String(16), default=JobLayout.digit)
    # A client's retry with the same key gets this job back instead of a duplicate; keys are
    # the tenant's own (unique per tenant, never across tenants).
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    total: Mapped[int] = mapped_column(Integer, default=0)
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    needs_review: Mapped[int] = mapped_column(Integer, default=0)
    # Flagged documents whose review is final (accepted, corrected or unreadable); raised and
    # lowered atomically in the decision's own transaction (api/review/service.py).
    reviewed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Files refused at upload, [{"filename", "reason"}]: reported, never stored or processed.
    rejected: Mapped[list[Any]] = mapped_column(default=list)
    # Set when the upload has been read to the end. Documents are committed (and processed) in
    # batches while the upload still streams in, so a job can only finish once this is set.
    uploaded_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # sha256 of the request body (multipart boundary left out), recorded when the upload is
    # complete: a retry with the same Idempotency-Key but another body is refused, never
    # answered with this job.
    request_hash: Mapped[str | None] = mapped_column(String(64))
    # Why a job failed as a whole (an interrupted upload, say); per-document errors are on them.
    error: Mapped[str | None] = mapped_column(Text)
    # When retention deleted the job's stored images (its results stay until they expire too).
    images_deleted_at: Mapped[datetime | None]

    documents: Mapped[list["Document"]] = relationship(back_populates="job", lazy="raise")

    __table_args__ = (
        Index(None, "tenant_id", "created_at"),
        Index(None, "tenant_id", "idempotency_key", unique=True),
    )

    @property
    def done(self) -> int:
        return self.succeeded + self.failed


class Document(IdTimestamped, Base):
    __tablename__ = "documents"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    # Order of upload within the job; results are paginated on it.
    position: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(1024))
    # BLAKE3 hex of the stored bytes (BLAKE2b-256 or sha256 for documents stored before)
    content_hash: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    storage_key: Mapped[str] = mapped_column(String(1024))
    status: Mapped[str] = mapped_column(String(16), default=DocumentStatus.queued)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    # Last time a task was sent for this document; the sweeper re-sends stale queued ones.
    enqueued_at: Mapped[datetime | None]

    job: Mapped[Job] = relationship(back_populates="documents", lazy="raise")
    prediction: Mapped["Prediction | None"] = relationship(back_populates="document", lazy="raise")

    __table_args__ = (
        Index(None, "job_id", "position", unique=True),
        # The sweeper's query: queued documents, oldest first.
        Index(None, "status", "enqueued_at"),
    )


class Prediction(IdTimestamped, Base):
    __tablename__ = "predictions"

    # Unique: a redelivered batch inserts with ON CONFLICT DO NOTHING and never duplicates.
    document_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), unique=True
    )
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(String(256))  # the digits read, left to right
    # Calibrated confidence of `text`: for a field, the product of the digits' confidences.
    confidence: Mapped[float] = mapped_column(Float)
    # Per digit: {"digit", "confidence", "probabilities": [10 floats], "box": {x, y, width,
    # height}}.
    digits: Mapped[list[Any]] = mapped_column()
    needs_review: Mapped[bool] = mapped_column(Boolean)
    # Why it needs review: low_confidence, not_a_digit, ambiguous_segmentation, too_many_digits.
    review_reasons: Mapped[list[Any]] = mapped_column(default=list)
    # Documents read with a document type (layout=cheque or a registered type): one entry per
    # field, {"text", "digits", "confidence", "needs_review", "review_reasons", "box", ...},
    # boxes in the page's pixels. Null for single fields.
    fields: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    model_version: Mapped[str] = mapped_column(String(128))
    # Per document: {"read_ms", "preprocess_ms", "inference_ms"} (the batch's share).
    timings: Mapped[dict[str, Any]] = mapped_column()

    document: Mapped[Document] = relationship(back_populates="prediction", lazy="raise")

    __table_args__ = (Index(None, "job_id", "needs_review"),)


class ApiKey(IdTimestamped, Base):
    """An API key: `df_<key_id>_<secret>`; only an argon2 hash of the secret is stored."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(32), unique=True)  # public, shown in listings
    tenant_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))  # digitflow.auth.Role
    name: Mapped[str] = mapped_column(String(200), default="")
    secret_hash: Mapped[str] = mapped_column(String(255))
    # Updated at most once a minute per API process (see api.auth.keys), not on every request.
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    __table_args__ = (Index(None, "tenant_id", "created_at"),)


class ReviewStatus(enum.StrEnum):
    not_needed = "not_needed"  # no review task: the model's reading stands
    pending = "pending"
    accepted = "accepted"  # a person confirmed the model's reading
    corrected = "corrected"  # a person typed another reading
    unreadable = "unreadable"


class ReviewTask(IdTimestamped, Base):
    """One flagged document in the review queue, with its lease and its final reading.

    A lease is free when `lease_expires_at` is null or in the past: a claim simply treats expired
    leases as free, so nothing has to clean them up.
    """

    __tablename__ = "review_tasks"

    document_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), unique=True
    )
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=ReviewStatus.pending)
    # Why it was flagged: low_confidence, ambiguous_segmentation, not_a_digit, audit...
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    # Picked by the random audit alone: would have been auto-accepted (the error estimate).
    audit: Mapped[bool] = mapped_column(Boolean, default=False)
    confidence: Mapped[float] = mapped_column(Float)
    model_text: Mapped[str] = mapped_column(String(256))
    final_text: Mapped[str | None] = mapped_column(String(256))
    # 1, or 2 under double-keying: agreeing keyings of different reviewers make it final.
    keyings_required: Mapped[int] = mapped_column(Integer, default=1)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None]
    lease_expires_at: Mapped[datetime | None]
    reviewed_by: Mapped[str | None] = mapped_column(String(200))
    reviewed_at: Mapped[datetime | None]

    __table_args__ = (
        # The claim query: pending tasks, lowest confidence (or oldest) first.
        Index(None, "status", "confidence"),
        Index(None, "job_id", "status"),
    )


class ReviewKeying(IdTimestamped, Base):
    """What one reviewer typed for a double-keyed task (kept apart so the claim can skip tasks
    the caller already keyed, and an undo can take a keying back)."""

    __tablename__ = "review_keyings"

    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("review_tasks.id", ondelete="CASCADE"))
    reviewer: Mapped[str] = mapped_column(String(200))
    # The reading typed, or the action name "unreadable".
    value: Mapped[str] = mapped_column(String(256))

    __table_args__ = (Index(None, "task_id", "reviewer", unique=True),)


class ReviewDecision(IdTimestamped, Base):
    """The audit trail: every decision (and undo), append-only — never updated or deleted."""

    __tablename__ = "review_decisions"

    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    tenant_id: Mapped[str] = mapped_column(String(64))
    reviewer: Mapped[str] = mapped_column(String(200))  # the key id (or the name in open mode)
    reviewer_name: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(16))  # accept, correct, unreadable, undo
    text: Mapped[str | None] = mapped_column(String(256))
    # {"status", "final_text"} of the task before and after the decision.
    before: Mapped[dict[str, Any]] = mapped_column()
    after: Mapped[dict[str, Any]] = mapped_column()
    # final, awaiting_second_keying, disagreement, undone
    outcome: Mapped[str] = mapped_column(String(32))
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    model_version: Mapped[str] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]

    __table_args__ = (
        Index(None, "document_id", "created_at"),
        Index(None, "tenant_id", "created_at"),
    )

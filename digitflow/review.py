"""The review queue's side of the worker: flag readings by the policy and queue review tasks.

Called from worker/batch.py inside the batch's own transaction, so a document's prediction and
its review task are committed together (or not at all).
"""

import random
import uuid
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from digitflow.db.models import ReviewStatus, ReviewTask
from digitflow.settings import PlatformSettings
from recognition.review import ReviewFlag, ReviewPolicy, review_flag

_rng = random.Random()


def policy_from_settings(settings: PlatformSettings, card_threshold: float) -> ReviewPolicy:
    return ReviewPolicy.for_model(
        card_threshold,
        settings.review_threshold,
        audit_rate=settings.review_audit_rate,
        double_key_above_length=settings.review_double_key_above_length,
        double_key_rate=settings.review_double_key_rate,
    )


def flag_rows(policy: ReviewPolicy, rows: dict[uuid.UUID, dict]) -> dict[uuid.UUID, ReviewFlag]:
    """Apply the policy to prediction rows (setting their `needs_review`); the flags by id."""
    flags = {}
    for doc_id, row in rows.items():
        core_reasons = [r for r in row.get("review_reasons") or () if r != "low_confidence"]
        flag = review_flag(policy, row["text"], row["confidence"], core_reasons, _rng)
        row["needs_review"] = flag.needs_review
        if "review_reasons" in row:  # predictions carry the reasons too (migration 0002)
            row["review_reasons"] = list(flag.reasons)
        flags[doc_id] = flag
    return flags


def queue_tasks(
    session: Session, rows: dict[uuid.UUID, dict], flags: dict[uuid.UUID, ReviewFlag],
    won: list[uuid.UUID], now: datetime,
) -> int:  # fmt: skip
    """Insert a pending review task for each flagged document this transaction stored."""
    values = [
        {
            "id": uuid.uuid4(),
            "created_at": now,
            "updated_at": now,
            "document_id": doc_id,
            "job_id": rows[doc_id]["job_id"],
            "status": ReviewStatus.pending.value,
            "reasons": list(flags[doc_id].reasons),
            "audit": flags[doc_id].audit,
            "confidence": float(rows[doc_id]["confidence"]),
            "model_text": rows[doc_id]["text"],
            "keyings_required": flags[doc_id].keyings_required,
        }  # fmt: skip
        for doc_id in won
        if flags[doc_id].needs_review
    ]
    if values:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        insert = dialect.insert(ReviewTask).on_conflict_do_nothing(index_elements=["document_id"])
        session.execute(insert, values)
    return len(values)

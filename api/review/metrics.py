"""Review metrics for a tenant: review rate, queue, pace per reviewer, double-keying agreement,
and the auto-accept error estimated from the random audit with a Wilson interval."""

import math
import uuid
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.review import service
from digitflow.db import Job, ReviewDecision, ReviewKeying, ReviewStatus, ReviewTask

Z_95 = 1.959964  # two-sided 95% normal quantile
PACE_WINDOW = timedelta(hours=24)


def wilson_interval(errors: int, sample: int, z: float = Z_95) -> tuple[float, float] | None:
    """Wilson score interval for a binomial share; sound at small samples and at 0 errors."""
    if sample <= 0:
        return None
    p = errors / sample
    denominator = 1 + z * z / sample
    centre = (p + z * z / (2 * sample)) / denominator
    half = z * math.sqrt(p * (1 - p) / sample + z * z / (4 * sample * sample)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _scoped(tenant_id: str, job_id: uuid.UUID | None):
    conditions = [Job.tenant_id == tenant_id]
    if job_id is not None:
        conditions.append(Job.id == job_id)
    return conditions


def auto_accept_error(session: Session, tenant_id: str, job_id: uuid.UUID | None) -> dict:
    """Audit picks would have been auto-accepted: the share reviewers did not accept."""
    rows = session.execute(
        select(ReviewTask.status, func.count())
        .join(Job, Job.id == ReviewTask.job_id)
        .where(*_scoped(tenant_id, job_id), ReviewTask.audit.is_(True))
        .where(ReviewTask.status != ReviewStatus.pending)
        .group_by(ReviewTask.status)
    ).all()
    counts = dict(rows)
    sample = sum(counts.values())
    errors = counts.get(ReviewStatus.corrected, 0) + counts.get(ReviewStatus.unreadable, 0)
    interval = wilson_interval(errors, sample)
    return {
        "estimate": errors / sample if sample else None,
        "low": interval[0] if interval else None,
        "high": interval[1] if interval else None,
        "sample": sample,
        "errors": errors,
    }


def agreement(
    session: Session, tenant_id: str, job_id: uuid.UUID | None
) -> tuple[int, float | None]:
    """Among double-keyed items keyed twice or more: how often the first two keyings agreed."""
    rows = session.execute(
        select(ReviewKeying.task_id, ReviewKeying.value)
        .join(ReviewTask, ReviewTask.id == ReviewKeying.task_id)
        .join(Job, Job.id == ReviewTask.job_id)
        .where(*_scoped(tenant_id, job_id))
        .order_by(ReviewKeying.task_id, ReviewKeying.created_at)
    ).all()
    by_task: dict[uuid.UUID, list[str]] = defaultdict(list)
    for task_id, value in rows:
        by_task[task_id].append(value)
    pairs = [values[:2] for values in by_task.values() if len(values) >= 2]
    if not pairs:
        return 0, None
    return len(pairs), sum(a == b for a, b in pairs) / len(pairs)


def pace(session: Session, tenant_id: str, now: datetime) -> list[dict]:
    """Decisions per hour for each reviewer over the last 24 h (undos not counted)."""
    rows = session.execute(
        select(
            ReviewDecision.reviewer,
            func.max(ReviewDecision.reviewer_name),
            func.count(),
            func.count().filter(ReviewDecision.created_at > now - timedelta(hours=1)),
            func.min(ReviewDecision.created_at),
            func.max(ReviewDecision.created_at),
        )
        .where(
            ReviewDecision.tenant_id == tenant_id,
            ReviewDecision.created_at > now - PACE_WINDOW,
            ReviewDecision.action != "undo",
        )
        .group_by(ReviewDecision.reviewer)
    ).all()
    out = []
    for reviewer, name, count, last_hour, first, last in rows:
        # Over the time the reviewer was actually at it (at least a minute).
        active_hours = max(_seconds(last, first) / 3600, 1 / 60)
        out.append(
            {"reviewer": reviewer, "reviewer_name": name, "decisions": count,
             "last_hour": last_hour, "per_hour": round(count / active_hours, 1)}
        )  # fmt: skip
    return sorted(out, key=lambda r: -r["decisions"])


def _seconds(later, earlier) -> float:
    if later.tzinfo is None or earlier.tzinfo is None:  # SQLite aggregates lose the type
        later, earlier = later.replace(tzinfo=None), earlier.replace(tzinfo=None)
    return (later - earlier).total_seconds()


def metrics(session: Session, tenant_id: str, job_id: uuid.UUID | None, now: datetime) -> dict:
    read, flagged, reviewed = session.execute(
        select(
            func.coalesce(func.sum(Job.succeeded), 0),
            func.coalesce(func.sum(Job.needs_review), 0),
            func.coalesce(func.sum(Job.reviewed), 0),
        ).where(*_scoped(tenant_id, job_id))
    ).one()
    queue = service.queue(session, tenant_id, job_id, "confidence", 0, now)
    double_keyed, agreement_rate = agreement(session, tenant_id, job_id)
    return {
        "documents_read": read,
        "flagged": flagged,
        "review_rate": round(flagged / read, 6) if read else None,
        "queue_size": queue["size"],
        "claimed": queue["claimed"],
        "oldest_age_seconds": queue["oldest_age_seconds"],
        "decided": reviewed,
        "reviewers": pace(session, tenant_id, now),
        "double_keyed": double_keyed,
        "agreement_rate": agreement_rate,
        "auto_accept_error": auto_accept_error(session, tenant_id, job_id),
    }

"""The review queue: list, claim with a lease, decide (with double-keying), undo, audit trail.

Every query joins the task's job and filters on the caller's tenant, so another tenant's
document ids look exactly like ids that do not exist (404).

Claims are exclusive: on Postgres the candidate rows are locked `FOR UPDATE SKIP LOCKED`, so
concurrent claims pass over each other's rows instead of waiting or sharing; on every database
the claiming UPDATE re-checks that the lease is still free, so two callers can never hold one
item. A lease that has run out is simply free again for the next claim — nothing has to sweep.
"""

import uuid
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import Select, exists, func, or_, select, update
from sqlalchemy.orm import Session

from api.review import errors
from digitflow.auth import Principal
from digitflow.db import (
    Document,
    Job,
    Prediction,
    ReviewDecision,
    ReviewKeying,
    ReviewStatus,
    ReviewTask,
)

UNREADABLE = "unreadable"  # the keyed value of an `unreadable` decision
CLAIM_ROUNDS = 8


def reviewer_of(principal: Principal) -> str:
    """Who decides: the API key's id (stable), or its name in open mode (no keys)."""
    return principal.key_id or principal.name


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _lease_free(me: str, now: datetime):
    return or_(
        ReviewTask.lease_expires_at.is_(None),
        ReviewTask.lease_expires_at <= now,
        ReviewTask.claimed_by == me,
    )


def _scoped_tasks(tenant_id: str) -> Select:
    return (
        select(ReviewTask, Document, Prediction)
        .join(Document, Document.id == ReviewTask.document_id)
        .join(Job, Job.id == ReviewTask.job_id)
        .outerjoin(Prediction, Prediction.document_id == ReviewTask.document_id)
        .where(Job.tenant_id == tenant_id)
    )


def _keyings_done(session: Session, task_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not task_ids:
        return {}
    rows = session.execute(
        select(ReviewKeying.task_id, func.count())
        .where(ReviewKeying.task_id.in_(task_ids))
        .group_by(ReviewKeying.task_id)
    )
    return dict(rows.all())


def _item(task: ReviewTask, document: Document, prediction, keyed: int, now: datetime) -> dict:
    digits = prediction.digits if prediction is not None else []
    return {
        "document_id": task.document_id,
        "job_id": task.job_id,
        "filename": document.filename,
        "position": document.position,
        "status": task.status,
        "model_text": task.model_text,
        "confidence": task.confidence,
        "digits": [
            {"digit": d["digit"], "confidence": d["confidence"], "box": d.get("box")}
            for d in digits
        ],
        "reasons": task.reasons,
        "keyings_required": task.keyings_required,
        "keyings_done": keyed,
        "model_version": prediction.model_version if prediction is not None else None,
        "created_at": task.created_at,
        "age_seconds": round((now - task.created_at).total_seconds(), 3),
        "claimed": task.lease_expires_at is not None and task.lease_expires_at > now,
        "lease_expires_at": task.lease_expires_at,
        "image_url": f"/documents/{task.document_id}/image",
    }


def _items(session: Session, rows, now: datetime) -> list[dict]:
    keyed = _keyings_done(session, [task.id for task, _, _ in rows])
    return [_item(t, d, p, keyed.get(t.id, 0), now) for t, d, p in rows]


def _ordering(order: str) -> tuple:
    if order == "oldest":
        return ReviewTask.created_at, ReviewTask.id
    return ReviewTask.confidence, ReviewTask.created_at, ReviewTask.id


def queue(
    session: Session, tenant_id: str, job_id: uuid.UUID | None, order: str, limit: int,
    now: datetime,
) -> dict:  # fmt: skip
    """Pending items (lowest confidence or oldest first), with the queue's size and age."""
    pending = [Job.tenant_id == tenant_id, ReviewTask.status == ReviewStatus.pending]
    if job_id is not None:
        pending.append(ReviewTask.job_id == job_id)
    size, claimed, oldest = session.execute(
        select(
            func.count(),
            func.count().filter(ReviewTask.lease_expires_at > now),
            func.min(ReviewTask.created_at),
        )
        .select_from(ReviewTask)
        .join(Job, Job.id == ReviewTask.job_id)
        .where(*pending)
    ).one()
    rows = session.execute(
        _scoped_tasks(tenant_id).where(*pending[1:]).order_by(*_ordering(order)).limit(limit)
    ).all()
    if oldest is not None and oldest.tzinfo is None:  # SQLite's aggregate skips the type
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return {
        "size": size,
        "claimed": claimed,
        "oldest_age_seconds": round((now - oldest).total_seconds(), 3) if oldest else None,
        "items": _items(session, rows, now),
    }


def _claim_round(
    session: Session, principal: Principal, limit: int, job_id: uuid.UUID | None,
    exclude: list[uuid.UUID], expires: datetime, now: datetime, order: str,
) -> tuple[int, list[uuid.UUID]]:  # fmt: skip
    """One attempt: (candidates seen, ids won)."""
    me = reviewer_of(principal)
    already_keyed = exists().where(
        ReviewKeying.task_id == ReviewTask.id, ReviewKeying.reviewer == me
    )
    candidates = (
        select(ReviewTask.id)
        .join(Job, Job.id == ReviewTask.job_id)
        .where(
            Job.tenant_id == principal.tenant_id,
            ReviewTask.status == ReviewStatus.pending,
            _lease_free(me, now),
            ~already_keyed,
        )
        .order_by(*_ordering(order))
        .limit(limit)
    )
    if job_id is not None:
        candidates = candidates.where(ReviewTask.job_id == job_id)
    if exclude:
        candidates = candidates.where(ReviewTask.document_id.not_in(exclude))
    if _is_postgres(session):
        candidates = candidates.with_for_update(skip_locked=True, of=ReviewTask)
    ids = list(session.scalars(candidates))
    won = []
    if ids:  # the guard re-checks the lease: on SQLite this is what keeps claims exclusive
        won = list(
            session.scalars(
                update(ReviewTask)
                .where(
                    ReviewTask.id.in_(ids),
                    ReviewTask.status == ReviewStatus.pending,
                    _lease_free(me, now),
                )
                .values(claimed_by=me, claimed_at=now, lease_expires_at=expires, updated_at=now)
                .returning(ReviewTask.id)
            )
        )
    session.commit()
    return len(ids), won


def claim(
    session: Session, principal: Principal, limit: int, job_id: uuid.UUID | None,
    exclude: list[uuid.UUID], lease: timedelta, now: datetime, order: str = "confidence",
) -> tuple[list[dict], datetime | None]:  # fmt: skip
    """Claim up to `limit` pending items for the caller (its own live claims count too).

    Without row locks (SQLite) a concurrent claim can win some of the candidates first; the
    caller then tries again for the rest, a few times, instead of coming back short."""
    expires, claimed = now + lease, []
    for _ in range(CLAIM_ROUNDS):
        seen, won = _claim_round(
            session, principal, limit - len(claimed), job_id, exclude, expires, now, order
        )
        claimed += won
        if len(claimed) >= limit or seen == len(won):  # enough, or nothing more to take
            break
        exclude = [*exclude, *session.scalars(
            select(ReviewTask.document_id).where(ReviewTask.id.in_(claimed))
        )]  # fmt: skip
    if not claimed:
        return [], None
    rows = session.execute(
        _scoped_tasks(principal.tenant_id)
        .where(ReviewTask.id.in_(claimed))
        .order_by(*_ordering(order))
    ).all()
    return _items(session, rows, now), expires


def renew(
    session: Session, principal: Principal, document_ids: list[uuid.UUID] | None,
    lease: timedelta, now: datetime,
) -> int:  # fmt: skip
    """Extend the caller's claims (all, or the ones named) that nobody else has taken."""
    me = reviewer_of(principal)
    mine = (
        select(ReviewTask.id)
        .join(Job, Job.id == ReviewTask.job_id)
        .where(
            Job.tenant_id == principal.tenant_id,
            ReviewTask.claimed_by == me,
            ReviewTask.status == ReviewStatus.pending,
        )
    )
    if document_ids is not None:
        mine = mine.where(ReviewTask.document_id.in_(document_ids))
    result = session.execute(
        update(ReviewTask)
        .where(ReviewTask.id.in_(mine.scalar_subquery()), ReviewTask.claimed_by == me)
        .values(lease_expires_at=now + lease, updated_at=now)
    )
    session.commit()
    return result.rowcount


def _locked_task(session: Session, tenant_id: str, document_id: uuid.UUID):
    query = _scoped_tasks(tenant_id).where(ReviewTask.document_id == document_id)
    if _is_postgres(session):
        query = query.with_for_update(of=ReviewTask)
    row = session.execute(query).first()
    if row is None:
        if session.scalar(_document_query(tenant_id, document_id)) is None:
            raise errors.DocumentNotFound(document_id)
        raise errors.NotInQueue(document_id)
    return row


def _document_query(tenant_id: str, document_id: uuid.UUID) -> Select:
    return (
        select(Document)
        .join(Job, Job.id == Document.job_id)
        .where(Document.id == document_id, Job.tenant_id == tenant_id)
    )


def _check_claim(task: ReviewTask, me: str, now: datetime) -> None:
    if task.status != ReviewStatus.pending:
        raise errors.AlreadyDecided(task.status)
    if task.claimed_by != me:
        raise errors.NotClaimant()
    if task.lease_expires_at is None or task.lease_expires_at <= now:
        raise errors.LeaseExpired()


def release(session: Session, principal: Principal, document_id: uuid.UUID, now: datetime) -> None:
    """Give a claimed item back to the queue at once (the page's skip)."""
    task, _, _ = _locked_task(session, principal.tenant_id, document_id)
    _check_claim(task, reviewer_of(principal), now)
    task.claimed_by = task.claimed_at = task.lease_expires_at = None
    task.updated_at = now
    session.commit()


def _status_of(task: ReviewTask, value: str) -> tuple[str, str | None]:
    if value == UNREADABLE:
        return ReviewStatus.unreadable, None
    if value == task.model_text:
        return ReviewStatus.accepted, value
    return ReviewStatus.corrected, value


def _agreement(session: Session, task: ReviewTask) -> tuple[str | None, str]:
    """Under double-keying: the agreed value, if two different reviewers typed it."""
    values = list(
        session.scalars(select(ReviewKeying.value).where(ReviewKeying.task_id == task.id))
    )
    value, count = Counter(values).most_common(1)[0]
    if count >= 2:
        return value, "final"
    return None, "disagreement" if len(values) >= 2 else "awaiting_second_keying"


def _snapshot(task: ReviewTask) -> dict:
    return {"status": task.status, "final_text": task.final_text}


def _adjust_reviewed(session: Session, job_id: uuid.UUID, delta: int, now: datetime) -> None:
    session.execute(
        update(Job).where(Job.id == job_id).values(reviewed=Job.reviewed + delta, updated_at=now)
    )


def _record(session, principal, task, prediction, action, text, before, outcome, now) -> None:
    session.add(
        ReviewDecision(
            document_id=task.document_id,
            tenant_id=principal.tenant_id,
            reviewer=reviewer_of(principal),
            reviewer_name=principal.name,
            action=action,
            text=text,
            before=before,
            after=_snapshot(task),
            outcome=outcome,
            reasons=list(task.reasons),
            lease_expires_at=task.lease_expires_at,
            model_version=prediction.model_version if prediction is not None else "",
            created_at=now,
            updated_at=now,
        )  # fmt: skip
    )


def decide(
    session: Session, principal: Principal, document_id: uuid.UUID, action: str,
    text: str | None, now: datetime,
) -> dict:  # fmt: skip
    """The claimant's decision; final at once, or under double-keying when two agree."""
    me = reviewer_of(principal)
    task, _, prediction = _locked_task(session, principal.tenant_id, document_id)
    _check_claim(task, me, now)
    value = {"accept": task.model_text, "correct": text, "unreadable": UNREADABLE}[action]
    before = _snapshot(task)
    if task.keyings_required > 1:
        session.add(ReviewKeying(task_id=task.id, reviewer=me, value=value))
        session.flush()
        value, outcome = _agreement(session, task)
    else:
        outcome = "final"
    if value is not None:
        task.status, task.final_text = _status_of(task, value)
        task.reviewed_by, task.reviewed_at = principal.name, now
    _record(session, principal, task, prediction, action, text, before, outcome, now)
    task.claimed_by = task.claimed_at = task.lease_expires_at = None  # after the record: it
    task.updated_at = now  # keeps the lease the decision was made under
    session.flush()
    if value is not None:  # last: the job's row is every reviewer's, hold its lock briefly
        _adjust_reviewed(session, task.job_id, 1, now)
    session.commit()
    return _decision_result(session, task, outcome)


def _decision_result(session: Session, task: ReviewTask, outcome: str) -> dict:
    return {
        "document_id": task.document_id,
        "review_status": task.status,
        "final_text": task.final_text,
        "outcome": outcome,
        "keyings_required": task.keyings_required,
        "keyings_done": (
            _keyings_done(session, [task.id]).get(task.id, 0) if task.keyings_required > 1 else 0
        ),
    }


def undo(
    session: Session, principal: Principal, document_id: uuid.UUID, lease: timedelta,
    now: datetime,
) -> dict:  # fmt: skip
    """Take back the caller's last decision on a document, if nobody decided after it; the
    item is claimed by the caller again."""
    me = reviewer_of(principal)
    task, _, prediction = _locked_task(session, principal.tenant_id, document_id)
    last = session.scalars(
        select(ReviewDecision)
        .where(ReviewDecision.document_id == document_id)
        .order_by(ReviewDecision.created_at.desc(), ReviewDecision.id.desc())
        .limit(1)
    ).first()
    if last is None or last.reviewer != me or last.action == "undo":
        raise errors.NothingToUndo("the last decision on this document is not yours to undo")
    if task.claimed_by not in (None, me) and task.lease_expires_at and task.lease_expires_at > now:
        raise errors.NothingToUndo("another reviewer has claimed this document since")
    before = _snapshot(task)
    if task.status != ReviewStatus.pending:
        _adjust_reviewed(session, task.job_id, -1, now)
    task.status, task.final_text = last.before["status"], last.before["final_text"]
    task.reviewed_by = task.reviewed_at = None
    keying = session.scalar(
        select(ReviewKeying).where(ReviewKeying.task_id == task.id, ReviewKeying.reviewer == me)
    )
    if keying is not None:
        session.delete(keying)
    task.claimed_by, task.claimed_at, task.lease_expires_at = me, now, now + lease
    task.updated_at = now
    _record(session, principal, task, prediction, "undo", None, before, "undone", now)
    session.commit()
    return _decision_result(session, task, "undone")


def history(session: Session, tenant_id: str, document_id: uuid.UUID) -> dict:
    document = session.scalar(_document_query(tenant_id, document_id))
    if document is None:
        raise errors.DocumentNotFound(document_id)
    task = session.scalar(select(ReviewTask).where(ReviewTask.document_id == document_id))
    prediction = session.scalar(select(Prediction).where(Prediction.document_id == document_id))
    entries = session.scalars(
        select(ReviewDecision)
        .where(ReviewDecision.document_id == document_id, ReviewDecision.tenant_id == tenant_id)
        .order_by(ReviewDecision.created_at, ReviewDecision.id)
    )
    return {
        "document_id": document_id,
        "model_text": prediction.text if prediction is not None else None,
        "review_status": task.status if task is not None else ReviewStatus.not_needed,
        "final_text": task.final_text if task is not None else None,
        "entries": [{"at": e.created_at, **_entry(e)} for e in entries],
    }


def _entry(e: ReviewDecision) -> dict:
    fields = ("reviewer", "reviewer_name", "action", "text", "before", "after", "outcome")
    return {
        **{name: getattr(e, name) for name in fields},
        "reasons": e.reasons,
        "model_version": e.model_version,
        "lease_expires_at": e.lease_expires_at,
    }


def document(session: Session, tenant_id: str, document_id: uuid.UUID):
    """The document and its prediction, if the caller's tenant owns it."""
    found = session.scalar(_document_query(tenant_id, document_id))
    if found is None:
        raise errors.DocumentNotFound(document_id)
    prediction = session.scalar(select(Prediction).where(Prediction.document_id == document_id))
    return found, prediction

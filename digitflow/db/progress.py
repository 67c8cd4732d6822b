"""Job state transitions as single atomic UPDATE statements, shared by the API and the workers.

The database evaluates `SET n = n + k` and the status CASE on the row it has locked, so batches
finishing concurrently, and the upload finishing while batches run, can never lose an update or
finish a job twice. A job finishes when its upload is complete (`uploaded_at` set) and every
document it holds is done; whichever of the two happens last finishes it.
"""

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, Update, and_, case, func, update

from digitflow.db.models import Job, JobStatus


def _final_status(succeeded: ColumnElement, failed: ColumnElement, total: ColumnElement):
    return case(
        (total == 0, JobStatus.failed.value),  # nothing readable was uploaded
        (failed == 0, JobStatus.succeeded.value),
        (succeeded == 0, JobStatus.failed.value),
        else_=JobStatus.partially_succeeded.value,
    )


def _finish_when(finished: ColumnElement, succeeded, failed, otherwise, now: datetime) -> dict:
    """The status and finish time of a job that is `finished` now, or else `otherwise`."""
    return {
        "status": case((finished, _final_status(succeeded, failed, Job.total)), else_=otherwise),
        "finished_at": case((finished, func.coalesce(Job.finished_at, now)), else_=None),
    }


def record_progress(
    job_id: uuid.UUID, succeeded: int, failed: int, needs_review: int, now: datetime
) -> Update:
    """A worker committed a batch: add to the counters; finish the job if it was the last."""
    new_succeeded = Job.succeeded + succeeded
    new_failed = Job.failed + failed
    finished = and_(Job.uploaded_at.is_not(None), new_succeeded + new_failed >= Job.total)
    return (
        update(Job)
        .where(Job.id == job_id)
        .values(
            succeeded=new_succeeded,
            failed=new_failed,
            needs_review=Job.needs_review + needs_review,
            started_at=func.coalesce(Job.started_at, now),
            updated_at=now,
            **_finish_when(
                finished,
                new_succeeded,
                new_failed,
                case(
                    (Job.uploaded_at.is_(None), JobStatus.uploading.value),
                    else_=JobStatus.running.value,
                ),
                now,
            ),
        )
    )


def add_documents(job_id: uuid.UUID, count: int, now: datetime) -> Update:
    """The API committed another batch of an upload that is still streaming in (`updated_at` is
    the upload's heartbeat). Matches no row once the job stopped uploading: check the rowcount."""
    return (
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.uploading.value)
        .values(total=Job.total + count, updated_at=now)
    )


def complete_upload(
    job_id: uuid.UUID, rejected: list[dict], request_hash: str | None, now: datetime
) -> Update:
    """The upload has been read to the end: record the refused files and the body's hash;
    finish the job if the workers already did every document. Matches no row if the job is no
    longer uploading (the sweeper gave up on it, or a retry replaced it): check the rowcount."""
    done = Job.succeeded + Job.failed
    finished = done >= Job.total
    return (
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.uploading.value)
        .values(
            uploaded_at=now,
            rejected=rejected,
            request_hash=request_hash,
            updated_at=now,
            **_finish_when(
                finished,
                Job.succeeded,
                Job.failed,
                case((done > 0, JobStatus.running.value), else_=JobStatus.queued.value),
                now,
            ),
        )
    )

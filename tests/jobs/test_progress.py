"""The job state rules (digitflow.db.progress) as statements on a real database, without HTTP:
what status a job ends in, and that it ends whichever of upload and workers finishes last."""

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from digitflow.db import Job, make_sessionmaker
from digitflow.db.migrations import upgrade
from digitflow.db.progress import add_documents, complete_upload, record_progress


@pytest.fixture(params=["sqlite", "postgres"])
def sessions(request, tmp_path):
    if request.param == "postgres":
        url = request.getfixturevalue("postgres").create_database()
    else:
        url = f"sqlite:///{tmp_path / 'progress.db'}"
    upgrade(url)
    return make_sessionmaker(url)


def new_job(sessions, total: int) -> uuid.UUID:
    job_id, now = uuid.uuid4(), datetime.now(UTC)
    with sessions.begin() as session:
        session.execute(
            insert(Job).values(id=job_id, tenant_id="t", total=0, rejected=[], created_at=now,
                               updated_at=now, status="uploading", layout="digit", succeeded=0,
                               failed=0, needs_review=0)
        )  # fmt: skip
        session.execute(add_documents(job_id, total, now))
    return job_id


def job(sessions, job_id) -> Job:
    with sessions() as session:
        return session.get(Job, job_id)


def run(sessions, statement) -> None:
    with sessions.begin() as session:
        session.execute(statement)


NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("succeeded", "failed", "status"),
    [(4, 0, "succeeded"), (3, 1, "partially_succeeded"), (0, 4, "failed")],
)
def test_final_status_follows_the_counts(sessions, succeeded, failed, status):
    job_id = new_job(sessions, 4)
    run(sessions, complete_upload(job_id, [], None, NOW))
    run(sessions, record_progress(job_id, succeeded, failed, 0, NOW))
    assert (job(sessions, job_id).status, job(sessions, job_id).finished_at) == (status, NOW)


def test_a_job_is_running_until_its_last_batch(sessions):
    job_id = new_job(sessions, 4)
    run(sessions, complete_upload(job_id, [], None, NOW))
    run(sessions, record_progress(job_id, 2, 0, 1, NOW))
    state = job(sessions, job_id)
    assert (state.status, state.finished_at, state.needs_review) == ("running", None, 1)
    run(sessions, record_progress(job_id, 1, 1, 0, NOW))
    assert job(sessions, job_id).status == "partially_succeeded"


def test_the_job_ends_when_the_upload_completes_after_the_workers(sessions):
    job_id = new_job(sessions, 3)
    run(sessions, record_progress(job_id, 3, 0, 0, NOW))  # workers done; upload still open
    assert job(sessions, job_id).finished_at is None
    run(
        sessions,
        complete_upload(job_id, [{"filename": "x", "code": "c", "reason": "r"}], None, NOW),
    )
    state = job(sessions, job_id)
    assert (state.status, state.finished_at) == ("succeeded", NOW)
    assert state.rejected[0]["filename"] == "x"


def test_an_upload_with_nothing_readable_fails(sessions):
    job_id = new_job(sessions, 0)
    run(sessions, complete_upload(job_id, [], None, NOW))
    assert job(sessions, job_id).status == "failed"


def test_a_job_is_uploading_until_its_upload_completes_and_only_once(sessions):
    job_id = new_job(sessions, 4)
    run(sessions, record_progress(job_id, 1, 0, 0, NOW))
    assert job(sessions, job_id).status == "uploading"  # not accepted yet, even while read
    with sessions.begin() as session:
        assert session.execute(complete_upload(job_id, [], "h" * 64, NOW)).rowcount == 1
        assert session.execute(complete_upload(job_id, [], "h" * 64, NOW)).rowcount == 0
        assert session.execute(add_documents(job_id, 1, NOW)).rowcount == 0  # no longer open
    state = job(sessions, job_id)
    assert (state.status, state.total, state.request_hash) == ("running", 4, "h" * 64)


def test_each_statement_moves_its_own_job_only(sessions):
    mine, other = new_job(sessions, 2), new_job(sessions, 5)
    run(sessions, add_documents(mine, 3, NOW))
    run(sessions, complete_upload(mine, [], None, NOW))
    run(sessions, record_progress(mine, 5, 0, 0, NOW))
    assert (job(sessions, mine).total, job(sessions, mine).status) == (5, "succeeded")
    untouched = job(sessions, other)
    assert (untouched.total, untouched.status, untouched.succeeded) == (5, "uploading", 0)
    assert untouched.uploaded_at is None and untouched.finished_at is None


@pytest.mark.parametrize(
    "succeeded, failed, status",
    [(0, 0, "queued"), (0, 1, "running"), (1, 0, "running"), (2, 1, "partially_succeeded"),
     (0, 3, "failed"), (3, 0, "succeeded")],
)  # fmt: skip
def test_what_the_upload_completing_makes_of_the_workers_progress(sessions, succeeded, failed,
                                                                  status):  # fmt: skip
    job_id = new_job(sessions, 3)
    run(sessions, record_progress(job_id, succeeded, failed, 0, NOW))  # while it uploads
    assert job(sessions, job_id).status == "uploading"
    run(sessions, complete_upload(job_id, [], None, NOW))
    assert job(sessions, job_id).status == status


def test_a_job_keeps_the_time_its_first_batch_started(sessions):
    job_id = new_job(sessions, 4)
    run(sessions, complete_upload(job_id, [], None, NOW))
    run(sessions, record_progress(job_id, 1, 0, 0, NOW))
    later = NOW.replace(hour=5)
    run(sessions, record_progress(job_id, 1, 0, 0, later))
    assert (job(sessions, job_id).started_at, job(sessions, job_id).updated_at) == (NOW, later)

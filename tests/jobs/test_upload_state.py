"""Uploads are all or nothing to the client; keys are bound to the request; retention.

In-process on the embedded database (SQLite) with no worker: an upload that "died" half-way is
made with the same JobIntake the API uses, stopped before it completes, as a killed API would
leave it."""

import random
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from api.jobs.errors import UploadGivenUp
from api.jobs.idempotency import BodyHash
from api.jobs.service import JobIntake
from digitflow.db import Document, Job, make_sessionmaker
from digitflow.db.migrations import upgrade
from digitflow.queue import make_celery
from digitflow.storage import LocalStorage
from tests.jobs import test_api
from tests.jobs.support import api_settings, scans
from tests.jobs.test_api import files_field, run_batches, stored_files
from worker.maintenance import fail_abandoned_uploads, purge_expired


@pytest.fixture
def settings(tmp_path):
    settings = api_settings(data_dir=tmp_path, max_job_files=50, job_batch_size=4)
    upgrade(settings.resolved_database_url)
    return settings


client = test_api.client  # the same app fixture, on this module's settings


def sessions_of(settings):
    return make_sessionmaker(settings.resolved_database_url)


def half_upload(settings, key: str, count: int) -> uuid.UUID:
    """What a request killed mid-upload leaves: an `uploading` job with `count` documents
    committed and stored, never completed."""
    job_id, storage = uuid.uuid4(), LocalStorage(settings.resolved_storage_dir)
    intake = JobIntake(
        sessions_of(settings),
        make_celery(settings),
        job_id,
        "default",
        key,
        batch_size=lambda: 4,
    )
    intake.open("digit")
    rows = []
    for position, (name, data, _) in enumerate(scans(count)):
        key_ = f"jobs/{job_id}/{position:06d}"
        storage.put(key_, data)
        rows.append({"id": uuid.uuid4(), "job_id": job_id, "position": position,
                     "filename": name, "content_hash": "0" * 64, "size": len(data),
                     "storage_key": key_, "status": "queued"})  # fmt: skip
    intake.add(rows, "digit")
    return job_id


def job_files(settings, job_id) -> list[Path]:
    return stored_files(Path(settings.resolved_storage_dir, "jobs", str(job_id)))


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 10_000])
def test_body_hash_ignores_the_boundary_and_the_chunking(chunk):
    rng = random.Random(chunk)
    payload = bytes(rng.randrange(256) for _ in range(3000))

    def body(boundary: bytes) -> bytes:
        part = b"--" + boundary + b'\r\nContent-Disposition: form-data; name="files"\r\n\r\n'
        return part + payload + b"\r\n" + part + payload[::-1] + b"\r\n--" + boundary + b"--\r\n"

    def digest(boundary: bytes, data: bytes) -> str:
        hasher = BodyHash(boundary)
        for start in range(0, len(data), chunk):
            hasher.update(data[start : start + chunk])
        return hasher.hexdigest()

    one, two = b"x" * 30 + b"abc", b"y" * 12 + b"zz"
    assert digest(one, body(one)) == digest(two, body(two))
    changed = body(two).replace(payload[:10], bytes(10))
    assert digest(two, changed) != digest(two, body(two))


def test_same_key_other_files_is_422_never_the_old_job(client, settings):
    first = client.post("/jobs", files=files_field(
        (n, d) for n, d, _ in scans(3)), headers={"Idempotency-Key": "k1"})  # fmt: skip
    other = client.post("/jobs", files=files_field(
        (n, d) for n, d, _ in scans(3, start=3)), headers={"Idempotency-Key": "k1"})  # fmt: skip
    assert first.status_code == 202
    assert other.status_code == 422, other.text
    assert other.json()["code"] == "idempotency_key_reused"
    assert len(client.get("/jobs").json()["items"]) == 1


def test_a_retry_of_an_upload_that_died_starts_afresh(client, settings):
    dead = half_upload(settings, "k2", count=4)
    assert client.get(f"/jobs/{dead}").json()["status"] == "uploading"  # never "accepted"
    assert len(job_files(settings, dead)) == 4

    retry = client.post("/jobs", files=files_field(
        (n, d) for n, d, _ in scans(10)), headers={"Idempotency-Key": "k2"})  # fmt: skip
    assert retry.status_code == 202, retry.text
    job = retry.json()
    assert job["id"] != str(dead) and (job["total"], job["status"]) == (10, "queued")
    assert client.get(f"/jobs/{dead}").status_code == 404
    assert job_files(settings, dead) == []  # the partial upload's files are gone
    again = client.post("/jobs", files=files_field(
        (n, d) for n, d, _ in scans(10)), headers={"Idempotency-Key": "k2"})  # fmt: skip
    assert again.json()["id"] == job["id"]


def test_an_upload_replaced_by_a_retry_stops_at_its_next_batch(client, settings):
    sessions = sessions_of(settings)
    intake = JobIntake(sessions, make_celery(settings), uuid.uuid4(), "default", "k3", lambda: 4)
    intake.open("digit")
    retry = client.post("/jobs", files=files_field(
        (n, d) for n, d, _ in scans(2)), headers={"Idempotency-Key": "k3"})  # fmt: skip
    assert retry.status_code == 202
    rows = [
        {"id": uuid.uuid4(), "job_id": intake.job_id, "position": 0, "filename": "a.png",
         "content_hash": "0" * 64, "size": 1, "storage_key": "k", "status": "queued"}
    ]  # fmt: skip
    with pytest.raises(UploadGivenUp):  # its next batch: the job row is gone
        intake.add(rows, "digit")
    with pytest.raises(UploadGivenUp):
        intake.complete([], "digit", [], "0" * 64)
    with sessions() as session:
        assert session.scalar(select(func.count(Job.id))) == 1


def test_the_sweeper_fails_an_abandoned_upload_and_deletes_its_files(client, settings):
    dead = half_upload(settings, "k4", count=5)
    sessions, storage = sessions_of(settings), LocalStorage(settings.resolved_storage_dir)
    assert fail_abandoned_uploads(sessions, storage, timedelta(hours=1)) == []  # still fresh
    assert fail_abandoned_uploads(sessions, storage, timedelta(0)) == [dead]
    job = client.get(f"/jobs/{dead}").json()
    assert (job["status"], job["total"], job["done"]) == ("failed", 0, 0)
    assert "did not complete" in job["error"] and job["finished_at"] is not None
    assert job_files(settings, dead) == []
    with sessions() as session:
        assert session.scalar(select(func.count(Document.id))) == 0
    retry = client.post("/jobs", files=files_field(
        (n, d) for n, d, _ in scans(5)), headers={"Idempotency-Key": "k4"})  # fmt: skip
    assert retry.status_code == 202 and retry.json()["total"] == 5


def test_delete_removes_the_job_its_rows_and_files(client, settings):
    job = client.post("/jobs", files=files_field((n, d) for n, d, _ in scans(6))).json()
    run_batches(settings, job["id"])
    assert client.get("/jobs/usage").json()["documents"] == 6
    assert len(job_files(settings, job["id"])) == 6
    assert client.delete(f"/jobs/{job['id']}").status_code == 204
    assert client.get(f"/jobs/{job['id']}").status_code == 404
    assert client.delete(f"/jobs/{job['id']}").status_code == 404
    assert job_files(settings, job["id"]) == []
    assert client.get("/jobs/usage").json() == {"jobs": 0, "documents": 0, "stored_bytes": 0}


def test_retention_purges_images_then_whole_jobs(client, settings):
    job = client.post("/jobs", files=files_field((n, d) for n, d, _ in scans(4))).json()
    running = client.post("/jobs", files=files_field((n, d) for n, d, _ in scans(2))).json()
    run_batches(settings, job["id"])
    sessions, storage = sessions_of(settings), LocalStorage(settings.resolved_storage_dir)

    purged = purge_expired(sessions, storage, results_days=None, images_days=1e-9)
    assert (purged.image_jobs, purged.files) == (1, 4)  # only the finished job
    assert job_files(settings, job["id"]) == [] and len(job_files(settings, running["id"])) == 2
    assert len(client.get(f"/jobs/{job['id']}/results").json()["items"]) == 4  # results stay
    assert client.get("/jobs/usage").json()["documents"] == 2

    purged = purge_expired(sessions, storage, results_days=1e-9, images_days=None)
    assert purged.jobs == 1
    assert client.get(f"/jobs/{job['id']}").status_code == 404
    assert client.get(f"/jobs/{running['id']}").status_code == 200


def test_metrics_answer_in_prometheus_text_format(client):
    client.get(f"/jobs/{uuid.uuid4()}")
    client.post("/jobs", files=files_field((n, d) for n, d, _ in scans(3)))  # one message
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'route="/jobs/{job_id}",status="404"' in text  # the template, never the raw id
    assert "digitflow_model_info{" in text
    assert 'digitflow_queue_depth{queue="documents"} 1.0' in text

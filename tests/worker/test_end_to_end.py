"""Real uploads through the API to real Celery worker processes, on both configurations:
Postgres + Redis, and the embedded defaults (SQLite + the embedded Redis on a unix socket).
Plus SIGKILL."""

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.main import create_app
from digitflow.db import Document, Prediction, make_sessionmaker
from digitflow.db.migrations import upgrade
from digitflow.embedded import embedded_redis
from tests.jobs.support import (
    api_settings,
    celery_worker,
    corrupt_zip_member,
    scans,
    wait_for_job,
    zip_of,
)

pytestmark = pytest.mark.slow


@pytest.fixture(params=["postgres+redis", "embedded"])
def platform(request, tmp_path):
    """Settings for the API and the same ones, as environment, for the worker."""
    if request.param == "postgres+redis":
        database_url = request.getfixturevalue("postgres").create_database()
        redis_url = request.getfixturevalue("redis").url
    else:
        database_url, redis_url = None, None
    shared = {
        "data_dir": tmp_path, "database_url": database_url, "redis_url": redis_url,
        "embedded_broker": "redis",
    }  # fmt: skip
    settings = api_settings(**shared)
    upgrade(settings.resolved_database_url)
    if redis_url is None:
        with embedded_redis(settings):
            yield settings, shared
    else:
        yield settings, shared


def files_field(items) -> list:
    return [("files", (name, data, "image/png")) for name, data in items]


def test_upload_is_recognised_by_a_real_worker(platform, tmp_path):
    settings, shared = platform
    items = scans(48)
    extra = zip_of({"z1.png": scans(1, start=100)[0][1], "bad.png": items[0][1], "x.txt": b"hi"})
    extra = corrupt_zip_member(extra, "bad.png")
    with celery_worker(tmp_path / "worker.log", **shared), TestClient(create_app(settings)) as api:
        response = api.post(
            "/jobs", files=files_field([(n, d) for n, d, _ in items] + [("more.zip", extra)])
        )
        assert response.status_code == 202, response.text
        job = wait_for_job(api, response.json()["id"])
        assert (job["status"], job["total"], job["succeeded"]) == ("succeeded", 49, 49)
        assert {r["code"] for r in job["rejected"]} == {"corrupt_zip_member", "undecodable_image"}

        results = api.get(f"/jobs/{job['id']}/results", params={"limit": 1000}).json()["items"]
        expected = [str(label) for _, _, label in items]
        read = [r["text"] for r in results[:48]]
        assert sum(a == b for a, b in zip(read, expected, strict=True)) >= 47
        assert all(r["status"] == "succeeded" and 0 < r["confidence"] <= 1 for r in results)
        csv_text = api.get(f"/jobs/{job['id']}/results", params={"format": "csv"}).text
        assert len(csv_text.strip().splitlines()) == 50


def test_sigkill_mid_job_loses_and_duplicates_nothing(postgres, redis, tmp_path):
    shared = {
        "data_dir": tmp_path,
        "database_url": postgres.create_database(),
        "redis_url": redis.url,
        "job_batch_size": 16,  # many small tasks: the kill lands mid-job
        "sweep_after_seconds": 3,
        "sweep_interval_seconds": 1,
    }
    settings = api_settings(**shared)
    upgrade(settings.resolved_database_url)
    items = scans(1200)
    with TestClient(create_app(settings)) as api:
        # Upload before any worker runs, so the job is all queued when the first one starts.
        job_id = api.post("/jobs", files=files_field((n, d) for n, d, _ in items)).json()["id"]
        with celery_worker(tmp_path / "first.log", concurrency=1, **shared) as first:
            deadline = time.monotonic() + 60
            while api.get(f"/jobs/{job_id}").json()["done"] < 100:
                assert time.monotonic() < deadline, first.log.read_text()[-2000:]
                time.sleep(0.02)
            first.kill()
        killed_at = api.get(f"/jobs/{job_id}").json()
        assert killed_at["finished_at"] is None, "the job must still be running when killed"

        with celery_worker(tmp_path / "second.log", beat=True, **shared):
            job = wait_for_job(api, job_id, timeout=90)

    assert (job["status"], job["succeeded"], job["failed"]) == ("succeeded", 1200, 0)
    sessions = make_sessionmaker(settings.resolved_database_url)
    with sessions() as session:
        predictions = session.scalar(select(func.count()).select_from(Prediction))
        distinct = session.scalar(select(func.count(func.distinct(Prediction.document_id))))
        queued = session.scalar(
            select(func.count()).select_from(Document).where(Document.status != "succeeded")
        )
    assert predictions == distinct == 1200 and queued == 0

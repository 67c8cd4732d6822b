"""A ZIP uploaded to the real API (uvicorn, its own process) while real Celery workers run: its
members are read as they arrive, so workers recognise them before the upload has ended; and a
ZIP that breaks after members of it were queued leaves nothing behind, no job, no rows, no
files. The upload is held, mid-archive, until a worker has stored a prediction."""

import random
import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from sqlalchemy import func, select

from devtools.api_server import start_uvicorn
from digitflow.db import Document, Job, Prediction, make_sessionmaker
from digitflow.db.migrations import upgrade
from digitflow.embedded import stop
from tests.jobs.support import celery_worker, scans, wait_for_job, worker_env, zip_of
from tests.jobs.test_upload import multipart

pytestmark = pytest.mark.slow

MEMBERS = 24
# The API parses the body in ~1 MB slices: a member this big makes it parse the scans before
# the upload is held. It is no image: refused, named in `rejected`.
PADDING = {"padding.bin": random.Random(0).randbytes(1_200_000)}  # does not deflate


@pytest.fixture
def platform(postgres, redis, tmp_path):
    shared = {
        "data_dir": tmp_path, "database_url": postgres.create_database(), "redis_url": redis.url,
        "job_batch_size": 4,
    }  # fmt: skip
    upgrade(shared["database_url"])
    sessions = make_sessionmaker(shared["database_url"])
    env = worker_env(**shared)
    with celery_worker(tmp_path / "worker.log", **shared):
        server, port = start_uvicorn(env=env)
        try:
            yield httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120), sessions
        finally:
            stop(server)


def _predictions(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Prediction))


def _held(body: bytes, hold_at: int, sessions, sent: dict) -> Iterator[bytes]:
    """The body up to `hold_at`; the rest only once a worker has stored a prediction."""
    for start in range(0, hold_at, 4096):
        yield body[start : min(start + 4096, hold_at)]
    deadline = time.monotonic() + 60
    while not _predictions(sessions):
        assert time.monotonic() < deadline, "no document was read while the upload was held"
        time.sleep(0.05)
    sent["resumed"] = time.time()
    yield body[hold_at:]


def _post(client, body: bytes, boundary: bytes, chunks: Iterator[bytes]) -> httpx.Response:
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary.decode()}",
               "Content-Length": str(len(body))}  # fmt: skip
    return client.post("/jobs", content=chunks, headers=headers)


def test_workers_read_a_zips_members_before_its_upload_has_ended(platform):
    client, sessions = platform
    items = scans(MEMBERS)
    archive = zip_of({f"{i:02d}.png": data for i, (_, data, _) in enumerate(items)} | PADDING)
    body, boundary = multipart([("files", ("pack.zip", archive))])
    hold_at = body.find(b"PK\x01\x02")  # every member sent, not the directory
    sent: dict = {}
    response = _post(client, body, boundary, _held(body, hold_at, sessions, sent))
    assert response.status_code == 202, response.text
    job = wait_for_job(client, response.json()["id"])
    assert (job["status"], job["total"], job["succeeded"]) == ("succeeded", MEMBERS, MEMBERS)
    assert [(r["filename"], r["code"]) for r in job["rejected"]] == [
        ("pack.zip/padding.bin", "undecodable_image")
    ]
    # The first batch was recognised and committed before the rest of the body was sent.
    assert datetime.fromisoformat(job["started_at"]).timestamp() <= sent["resumed"]
    results = client.get(f"/jobs/{job['id']}/results", params={"limit": 100}).json()["items"]
    assert [r["filename"] for r in results] == [f"pack.zip/{i:02d}.png" for i in range(MEMBERS)]
    read = sum(r["text"] == str(label) for r, (_, _, label) in zip(results, items, strict=True))
    assert read >= MEMBERS - 1


def test_a_zip_that_breaks_after_members_were_queued_leaves_nothing(platform, tmp_path):
    client, sessions = platform
    members = {f"{i:02d}.png": data for i, (_, data, _) in enumerate(scans(MEMBERS))}
    archive = zip_of(members | PADDING | {"last.png": members["00.png"]})
    directory = archive.find(b"PK\x01\x02")
    body, boundary = multipart([("files", ("pack.zip", archive[:directory]))])  # truncated
    hold_at = len(body) - 300  # the last member has not arrived yet
    response = _post(client, body, boundary, _held(body, hold_at, sessions, {}))
    assert response.status_code == 422, response.text
    refusal = response.json()
    assert refusal["code"] == "invalid_zip" and "whole upload is refused" in refusal["detail"]
    assert client.get("/jobs").json()["items"] == []
    time.sleep(1)  # a worker still holding a batch finds its documents gone
    with sessions() as session:
        counts = [session.scalar(select(func.count()).select_from(model))
                  for model in (Job, Document, Prediction)]  # fmt: skip
    assert counts == [0, 0, 0]
    assert not [path for path in (tmp_path / "storage").rglob("*") if path.is_file()]

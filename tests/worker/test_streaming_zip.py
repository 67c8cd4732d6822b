"""A ZIP uploaded to the real API (uvicorn, its own process) while real Celery workers run: its
members are read as they arrive, so workers recognise them before the upload has ended; and a
ZIP that breaks after members of it were queued leaves nothing behind, no job, no rows, no
files. The upload is held, mid-archive, until a worker has stored a prediction."""

import random
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select, update

from api.jobs.service import JobIntake
from devtools.api_server import start_uvicorn
from digitflow.db import Document, Job, Prediction, make_sessionmaker
from digitflow.db.migrations import upgrade
from digitflow.db.progress import record_progress
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


def test_aborting_an_upload_waits_for_a_worker_mid_commit_instead_of_deadlocking(postgres):
    """A worker's commit locks its documents, then the job; the abort must take them in the same
    order (deleting the job first cascades into documents the worker holds while the worker
    waits for the job: Postgres kills one of the two)."""
    url = postgres.create_database()
    upgrade(url)
    sessions = make_sessionmaker(url)
    job_id, doc_id, now = uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
    with sessions.begin() as session:
        session.add(Job(id=job_id, tenant_id="default", layout="digit", status="uploading",
                        total=1, rejected=[], created_at=now, updated_at=now))  # fmt: skip
        session.flush()
        session.add(Document(id=doc_id, job_id=job_id, position=0, filename="a.png",
                             content_hash="0" * 64, size=1, storage_key="k", status="queued",
                             created_at=now, updated_at=now))  # fmt: skip
    intake = JobIntake(sessions, None, job_id, "default", None, batch_size=lambda: 4)
    intake.opened = True
    aborted: dict = {}
    with sessions.begin() as worker:  # a batch being committed
        worker.execute(update(Document).where(Document.id == doc_id).values(status="succeeded"))
        thread = threading.Thread(target=lambda: aborted.setdefault("error", _try(intake.abort)))
        thread.start()
        time.sleep(0.5)  # the abort is now waiting for the document's lock
        worker.execute(record_progress(job_id, 1, 0, 0, datetime.now(UTC)))
    thread.join(30)
    assert aborted == {"error": None}
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0


def _try(work) -> Exception | None:
    try:
        work()
    except Exception as exc:  # noqa: BLE001 - reported to the test
        return exc
    return None

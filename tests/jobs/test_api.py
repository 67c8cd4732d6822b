"""The jobs endpoints on the embedded defaults (SQLite, filesystem broker, local storage).

No worker runs here: batches are processed in-process with worker.batch where results are
needed (tests/worker has the end-to-end runs with real Celery workers)."""

import csv
import io
import json
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from redis import Redis
from sqlalchemy import select

from api.main import create_app
from digitflow.db import Document, Job, make_sessionmaker
from digitflow.db.migrations import upgrade
from digitflow.queue import make_celery, queue_depth
from digitflow.storage import make_storage
from recognition import Recognizer
from tests.jobs.support import api_settings, corrupt_zip_member, scans, zip_of
from tests.recognition.images import png_header_only
from worker.batch import Runtime, process_batch


@pytest.fixture(params=["embedded", "servers"])
def settings(request, tmp_path):
    """The embedded defaults (SQLite, filesystem broker), and real Postgres + Redis."""
    servers = {}
    if request.param == "servers":
        redis = request.getfixturevalue("redis")
        url = redis.url_for(REDIS_DB)
        Redis.from_url(url).flushdb()
        servers = {
            "database_url": request.getfixturevalue("postgres").create_database(),
            "redis_url": url,
        }
    # Small batches, so uploads here are committed and enqueued in several steps as they stream.
    settings = api_settings(
        data_dir=tmp_path, max_job_files=50, max_image_bytes=200_000, job_batch_size=8, **servers
    )
    upgrade(settings.resolved_database_url)
    return settings


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as client:
        yield client


# A Redis database of its own: other tests' platforms must not take these tasks.
REDIS_DB = 3


def files_field(items) -> list:
    return [("files", (name, data, "application/octet-stream")) for name, data in items]


def stored_files(root: Path) -> list[Path]:
    # Files only: a job's (now empty) folder may remain, and its name is a random UUID.
    return [path for path in root.rglob("*") if path.is_file()]


def queued_messages(settings) -> int:
    return queue_depth(make_celery(settings))


def run_batches(settings, job_id: str) -> None:
    """Do what a worker would, in-process: every queued document of the job."""
    sessions = make_sessionmaker(settings.resolved_database_url)
    with sessions() as session:
        ids = list(session.scalars(select(Document.id).where(Document.job_id == uuid.UUID(job_id))))
    runtime = Runtime(
        Recognizer(settings.model_dir), sessions, make_storage(settings), settings.max_image_pixels
    )
    process_batch(runtime, uuid.UUID(job_id), ids)


def test_upload_answers_202_with_location_and_enqueues_ids_after_storing(client, settings):
    response = client.post("/jobs", files=files_field((n, d) for n, d, _ in scans(5)))
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/jobs/{job['id']}"
    assert int(response.headers["retry-after"]) >= 1
    assert (job["status"], job["total"], job["rejected"]) == ("queued", 5, [])
    stored = list(Path(settings.resolved_storage_dir, "jobs", job["id"]).iterdir())
    assert len(stored) == 5
    assert queued_messages(settings) == 1  # one task for the batch, ids only
    with make_celery(settings).connection_for_read() as connection:
        message = connection.default_channel.basic_get("documents", no_ack=True)
    assert json.loads(message.body)[0][0] == job["id"]  # args (job id, [document ids]): ids only
    assert b"PNG" not in message.body and len(message.body) < 4000
    assert client.get(f"/jobs/{job['id']}").json()["status"] == "queued"


def test_zip_with_corrupt_member_non_image_and_empty_file(client, settings):
    good = scans(3)
    archive = zip_of({"a.png": good[0][1], "b.png": good[1][1], "broken.png": good[2][1],
                      "notes.txt": b"not an image at all", "empty.png": b""})  # fmt: skip
    archive = corrupt_zip_member(archive, "broken.png")
    response = client.post(
        "/jobs",
        files=files_field([("batch.zip", archive), ("loose.png", good[2][1]), ("zero.png", b"")]),
    )
    assert response.status_code == 202, response.text
    job = response.json()
    rejected = {r["filename"]: r["code"] for r in job["rejected"]}
    assert rejected == {
        "batch.zip/broken.png": "corrupt_zip_member",
        "batch.zip/notes.txt": "undecodable_image",
        "batch.zip/empty.png": "empty_file",
        "zero.png": "empty_file",
    }
    assert all(r["reason"] for r in job["rejected"])
    assert job["total"] == 3  # a.png, b.png and loose.png proceed
    run_batches(settings, job["id"])
    done = client.get(f"/jobs/{job['id']}").json()
    assert (done["status"], done["succeeded"], done["progress"]) == ("succeeded", 3, 1.0)
    assert done["rejected"] == job["rejected"]
    names = [r["filename"] for r in client.get(f"/jobs/{job['id']}/results").json()["items"]]
    assert names == ["batch.zip/a.png", "batch.zip/b.png", "loose.png"]


def test_zip_larger_than_an_image_is_spooled_and_read_member_by_member(client, settings):
    settings.max_job_files = 400
    archive = zip_of({name: data for name, data, _ in scans(300)})
    assert len(archive) > settings.max_image_bytes  # so it goes through the on-disk spool
    response = client.post("/jobs", files=files_field([("many.zip", archive)]))
    assert response.status_code == 202, response.text
    assert (response.json()["total"], response.json()["rejected"]) == (300, [])


def test_oversized_and_bomb_images_are_rejected_per_file(client):
    big = io.BytesIO()
    Image.effect_noise((600, 600), 60).save(big, "PNG")  # noise does not compress: > 200 kB
    bomb = png_header_only(20_000, 20_000)  # 400 Mpixel claimed in a tiny file
    ok = scans(1)[0][1]
    files = [("big.png", big.getvalue()), ("bomb.png", bomb), ("ok.png", ok)]
    response = client.post("/jobs", files=files_field(files))
    assert response.status_code == 202
    rejected = {r["filename"]: r["code"] for r in response.json()["rejected"]}
    assert rejected == {"big.png": "image_too_large", "bomb.png": "image_too_large"}
    assert response.json()["total"] == 1


def test_idempotency_key_returns_the_same_job(client, settings):
    files = files_field((n, d) for n, d, _ in scans(3))
    first = client.post("/jobs", files=files, headers={"Idempotency-Key": "upload-42"})
    again = client.post("/jobs", files=files, headers={"Idempotency-Key": "upload-42"})
    other = client.post("/jobs", files=files, headers={"Idempotency-Key": "upload-43"})
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert other.json()["id"] != first.json()["id"]
    assert len(client.get("/jobs").json()["items"]) == 2
    assert queued_messages(settings) == 2  # the retry enqueued nothing


def test_the_body_is_hashed_only_for_an_idempotency_key(client, settings):
    files = files_field((n, d) for n, d, _ in scans(2))
    keyed = client.post("/jobs", files=files, headers={"Idempotency-Key": "hash-me"}).json()
    plain = client.post("/jobs", files=files).json()
    with make_sessionmaker(settings.resolved_database_url)() as session:
        rows = session.execute(select(Job.id, Job.request_hash)).all()
    hashes = {job_id: request_hash for job_id, request_hash in rows}
    assert len(hashes[uuid.UUID(keyed["id"])]) == 64  # what a retry is compared with
    assert hashes[uuid.UUID(plain["id"])] is None  # no key, no retry: the CPU is not spent


def test_unknown_job_is_404_and_bad_id_is_422(client):
    missing = uuid.uuid4()
    for path in (f"/jobs/{missing}", f"/jobs/{missing}/results"):
        response = client.get(path)
        assert response.status_code == 404
        assert str(missing) in response.json()["detail"]
    assert client.get("/jobs/not-a-uuid").status_code == 422


MULTIPART_XYZ = {"Content-Type": "multipart/form-data; boundary=xyz"}
BAD_REQUESTS = {
    "json body": ({"content": b"{}", "headers": {"Content-Type": "application/json"}}, 415),
    "form without files": ({"data": {"layout": "digit"}, "files": []}, 415),
    "unknown layout": ({"data": {"layout": "x"}, "files": [("files", ("a.png", b"x"))]}, 422),
    "truncated body": ({"content": b"--xyz\r\nContent-Disp", "headers": MULTIPART_XYZ}, 400),
    "no parts": ({"content": b"--xyz--\r\n", "headers": MULTIPART_XYZ}, 422),
}


@pytest.mark.parametrize(("kwargs", "status"), BAD_REQUESTS.values(), ids=BAD_REQUESTS)
def test_bad_requests_are_4xx_json(client, kwargs, status):
    response = client.post("/jobs", **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] and body["detail"]


def test_an_upload_with_no_readable_file_is_422_and_creates_no_job(client, settings):
    files = [("files", ("m.json", b"{}", "application/json")), ("files", ("e.png", b""))]
    response = client.post("/jobs", files=files, headers={"Idempotency-Key": "nothing"})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "no_readable_files" and "2 refused" in body["detail"]
    assert {(r["filename"], r["code"]) for r in body["rejected"]} == {
        ("m.json", "undecodable_image"), ("e.png", "empty_file"),
    }
    assert client.get("/jobs").json()["items"] == []
    assert not stored_files(settings.resolved_storage_dir)
    retry = client.post("/jobs", files=files_field((n, d) for n, d, _ in scans(1)),
                        headers={"Idempotency-Key": "nothing"})  # fmt: skip
    assert retry.status_code == 202  # the key was not used up by the refused upload


def test_too_many_files_is_413_and_nothing_is_kept(client, settings):
    png = scans(1)[0][1]
    response = client.post("/jobs", files=files_field((f"{i}.png", png) for i in range(51)))
    assert response.status_code == 413
    assert response.json()["code"] == "too_many_files"
    assert not stored_files(Path(settings.resolved_storage_dir))
    assert client.get("/jobs").json()["items"] == []


def test_large_uploads_are_enqueued_batch_by_batch_as_they_stream(client, settings):
    items = [("layout", (None, "field"))] + files_field((n, d) for n, d, _ in scans(20))
    job = client.post("/jobs", files=items).json()
    assert (job["total"], job["layout"]) == (20, "field")
    assert queued_messages(settings) == 3  # 8 + 8 while streaming, 4 with the last commit


def test_layout_sent_after_committed_files_is_refused(client, settings):
    items = files_field((n, d) for n, d, _ in scans(20)) + [("layout", (None, "field"))]
    response = client.post("/jobs", files=items)
    assert response.status_code == 422 and response.json()["code"] == "layout_after_files"
    assert client.get("/jobs").json()["items"] == []  # the half-committed job is gone
    assert not stored_files(Path(settings.resolved_storage_dir))


def test_declared_body_over_the_limit_is_413(settings):
    settings.max_job_bytes = 1000
    with TestClient(create_app(settings)) as client:
        response = client.post("/jobs", files=files_field([("a.png", b"x" * 5000)]))
    assert response.status_code == 413


def test_results_pages_filter_and_csv(client, settings):
    items = scans(30)
    job = client.post("/jobs", files=files_field((n, d) for n, d, _ in items)).json()
    run_batches(settings, job["id"])

    seen, cursor = [], None
    while True:
        params = {"limit": 7} | ({"cursor": cursor} if cursor else {})
        page = client.get(f"/jobs/{job['id']}/results", params=params).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [r["filename"] for r in seen] == [name for name, _, _ in items]
    first = seen[0]
    assert set(first) >= {"filename", "text", "confidence", "needs_review", "status"}
    assert first["status"] == "succeeded" and len(first["digits"][0]["probabilities"]) == 10

    flagged = client.get(f"/jobs/{job['id']}/results", params={"needs_review": True}).json()
    clear = client.get(f"/jobs/{job['id']}/results", params={"needs_review": False}).json()
    assert all(r["needs_review"] for r in flagged["items"])
    assert not any(r["needs_review"] for r in clear["items"])
    assert len(flagged["items"]) + len(clear["items"]) == 30
    assert client.get(f"/jobs/{job['id']}").json()["needs_review"] == len(flagged["items"])

    csv_response = client.get(f"/jobs/{job['id']}/results", params={"format": "csv"})
    assert csv_response.status_code == 200
    assert csv_response.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv_response.headers["content-disposition"]
    lines = csv_response.text.strip().splitlines()
    assert lines[0].startswith("position,filename,status,text,confidence,needs_review")
    assert len(lines) == 31
    assert lines[1].split(",")[3] == seen[0]["text"]

    bad_cursor = client.get(f"/jobs/{job['id']}/results", params={"cursor": "abc"})
    assert bad_cursor.status_code == 422


def test_ready_reports_database_and_broker(client, settings, tmp_path):
    response = client.get("/ready")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"
    checks = response.json()["checks"]
    assert checks["database"] == checks["broker"] == checks["storage"] == "ok"
    unmigrated = api_settings(data_dir=tmp_path / "fresh")
    with TestClient(create_app(unmigrated)) as fresh:
        response = fresh.get("/ready")
    assert response.status_code == 503
    assert "migrate" in response.json()["checks"]["database"]


def test_bulk_page_is_served(client):
    response = client.get("/bulk")
    assert response.status_code == 200 and "data-testid" in response.text


def test_a_broker_outage_keeps_the_documents_for_the_sweeper(tmp_path):
    from datetime import timedelta

    from worker.batch import stale_documents

    dead = api_settings(data_dir=tmp_path, redis_url="redis://127.0.0.1:9/0")
    upgrade(dead.resolved_database_url)
    with TestClient(create_app(dead)) as client:
        assert "broker" in client.get("/ready").json()["checks"]["broker"]
        response = client.post("/jobs", files=files_field((n, d) for n, d, _ in scans(3)))
    assert response.status_code == 202  # the documents are committed: Postgres is the truth
    sessions = make_sessionmaker(dead.resolved_database_url)
    stale = stale_documents(sessions, timedelta(0))
    assert [len(ids) for ids in stale.values()] == [3]


def test_a_database_outage_is_503_not_500(tmp_path):
    down = api_settings(data_dir=tmp_path, database_url="postgresql+psycopg://u@127.0.0.1:9/x")
    with TestClient(create_app(down)) as client:
        for response in (
            client.get("/jobs"),
            client.get(f"/jobs/{uuid.uuid4()}"),
            client.post("/jobs", files=files_field((n, d) for n, d, _ in scans(2))),
        ):
            assert response.status_code == 503, response.text
            assert response.json()["code"] == "unavailable"
    assert not stored_files(tmp_path / "storage")  # the stored upload was removed


class CountingStorage:
    """The app's real storage, counting writes (to see what a request stored)."""

    def __init__(self, real):
        self.real, self.puts = real, 0

    def put(self, key, data):
        self.puts += 1
        self.real.put(key, data)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_a_retry_is_answered_before_anything_is_stored_again(client):
    files = files_field((n, d) for n, d, _ in scans(4))
    first = client.post("/jobs", files=files, headers={"Idempotency-Key": "retry-me"})
    counting = client.app.state.storage = CountingStorage(client.app.state.storage)
    retry = client.post("/jobs", files=files, headers={"Idempotency-Key": "retry-me"})
    assert retry.status_code == 202 and retry.json()["id"] == first.json()["id"]
    assert counting.puts == 0  # the key was looked up before the body was read


def test_an_empty_idempotency_key_is_no_key(client):
    files = files_field((n, d) for n, d, _ in scans(2))
    ids = {
        client.post("/jobs", files=files, headers={"Idempotency-Key": key}).json()["id"]
        for key in ("", "  ", "")
    }
    assert len(ids) == 3


def test_csv_quotes_awkward_names_and_honours_the_review_filter(client, settings):
    names = ["a,b.png", 'say "hi".png', "two\nlines.png", "plain.png", "x;y.png", "z.png"]
    items = [(name, data) for name, (_, data, _) in zip(names, scans(6, start=40), strict=True)]
    job = client.post("/jobs", files=files_field(items)).json()
    run_batches(settings, job["id"])
    url = f"/jobs/{job['id']}/results"
    rows = list(csv.DictReader(io.StringIO(client.get(url, params={"format": "csv"}).text)))
    stored = [r["filename"] for r in client.get(url).json()["items"]]  # as the client encoded them
    assert [row["filename"] for row in rows] == stored
    assert stored[0] == "a,b.png" and len(rows) == len(names)
    flagged = {
        r["document_id"] for r in client.get(url, params={"needs_review": True}).json()["items"]
    }
    for wanted in (True, False):
        text = client.get(url, params={"format": "csv", "needs_review": wanted}).text
        ids = {row["document_id"] for row in csv.DictReader(io.StringIO(text))}
        assert ids == (flagged if wanted else {r["document_id"] for r in rows} - flagged)


def test_jobs_on_azure_blob_storage(tmp_path, azurite):
    """The whole jobs API with Blob storage (Azurite): stored, read by a batch, answered."""
    settings = api_settings(
        data_dir=tmp_path, storage_backend="azure",
        azure_storage_connection_string=azurite.connection_string,
        azure_storage_container=f"jobs-{uuid.uuid4().hex[:8]}",
    )  # fmt: skip
    upgrade(settings.resolved_database_url)
    items = scans(6, start=100)
    with TestClient(create_app(settings)) as client:
        assert client.get("/ready").json()["checks"]["storage"] == "ok"
        job = client.post("/jobs", files=files_field((n, d) for n, d, _ in items)).json()
        run_batches(settings, job["id"])
        results = client.get(f"/jobs/{job['id']}/results").json()["items"]
        assert client.get(f"/jobs/{job['id']}").json()["status"] == "succeeded"
    assert [r["status"] for r in results] == ["succeeded"] * 6
    assert (
        sum(r["text"] == str(label) for r, (_, _, label) in zip(results, items, strict=True)) >= 5
    )


def test_uploads_are_refused_while_the_workers_are_too_far_behind(settings):
    """Back-pressure: 503 + Retry-After once the queue holds more than `queue_max_seconds` of
    work at the workers' rate; accepted again once the backlog is read."""
    slow = settings.model_copy(update={"worker_documents_per_second": 8, "queue_max_seconds": 2})
    files = files_field((n, d) for n, d, _ in scans(8))
    with TestClient(create_app(slow)) as client:
        assert client.post("/jobs", files=files).status_code == 202  # 1 task: 1 s of work
        assert client.post("/jobs", files=files).status_code == 202  # 2 tasks: 2 s
        assert client.post("/jobs", files=files).status_code == 202  # 3 tasks: 3 s
        refused = client.post("/jobs", files=files)
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == "queue_full" and int(refused.headers["retry-after"]) >= 1
        assert len(client.get("/jobs").json()["items"]) == 3  # nothing of it was kept
        with make_celery(slow).connection_for_write() as connection:
            connection.default_channel.queue_purge("documents")  # the workers caught up
        assert client.post("/jobs", files=files).status_code == 202

"""Review tests: a real Postgres database with jobs processed in-process by worker.batch, and
reviewers of two tenants (the principal is chosen per request by a test header)."""

from __future__ import annotations

import threading
import uuid

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.auth.dependencies import current_principal
from api.main import create_app
from digitflow.auth import Principal, Role
from digitflow.db import Document, make_sessionmaker
from digitflow.db.migrations import upgrade
from digitflow.storage import LocalStorage
from recognition import Recognizer
from recognition.review import ReviewPolicy
from tests.jobs.support import api_settings, scans
from worker.batch import Runtime, process_batch

REVIEWERS = {
    f"r{i}": Principal("acme", Role.reviewer, key_id=f"key-r{i}", name=f"rev{i}") for i in range(8)
}
PRINCIPALS = {
    **REVIEWERS,
    "submitter": Principal("acme", Role.submitter, key_id="key-sub", name="submitter"),
    "other": Principal("globex", Role.reviewer, key_id="key-other", name="other-tenant"),
    "other-submitter": Principal("globex", Role.submitter, key_id="key-osub", name="globex-sub"),
}


def as_(who: str) -> dict:
    return {"X-Test-Principal": who}


def _principal(request: Request) -> Principal:
    return PRINCIPALS[request.headers.get("X-Test-Principal", "r0")]


@pytest.fixture
def settings(postgres, tmp_path):
    settings = api_settings(data_dir=tmp_path, database_url=postgres.create_database())
    upgrade(settings.resolved_database_url)
    return settings


@pytest.fixture
def client(settings):
    app = create_app(settings)
    app.dependency_overrides[current_principal] = _principal
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="session")
def recognizer():
    from tests.jobs.support import MODEL_DIR

    return Recognizer(MODEL_DIR)


def submit(client, count: int, start: int = 0, who: str = "submitter") -> str:
    files = [("files", (n, d, "image/png")) for n, d, _ in scans(count, start)]
    response = client.post("/jobs", files=files, headers=as_(who))
    assert response.status_code == 202, response.text
    return response.json()["id"]


def process(settings, recognizer, job_id: str, policy: ReviewPolicy | None = None) -> None:
    """What a worker does, in-process, for every queued document of the job."""
    sessions = make_sessionmaker(settings.resolved_database_url)
    with sessions() as session:
        ids = list(session.scalars(select(Document.id).where(Document.job_id == uuid.UUID(job_id))))
    runtime = Runtime(
        recognizer, sessions, LocalStorage(settings.resolved_storage_dir),
        settings.max_image_pixels, review=policy,
    )  # fmt: skip
    process_batch(runtime, uuid.UUID(job_id), ids)


def claim_all_at_once(client, limit: int) -> dict[str, set[str]]:
    """Every reviewer claims `limit` items at the same moment (threads behind a barrier)."""
    barrier = threading.Barrier(len(REVIEWERS))
    claimed: dict[str, set[str]] = {}

    def work(who: str) -> None:
        barrier.wait()
        response = client.post("/review/claim", json={"limit": limit}, headers=as_(who))
        assert response.status_code == 200, response.text
        claimed[who] = {item["document_id"] for item in response.json()["items"]}

    threads = [threading.Thread(target=work, args=(who,)) for who in REVIEWERS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(claimed) == len(REVIEWERS)
    return claimed

"""What a refused upload says, code and detail, not only its status (each assertion here was
missing while a mutant of api/jobs survived: docs/mutation.md)."""

import re

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from digitflow.db.migrations import upgrade
from tests.jobs.support import api_settings, scans
from tests.jobs.test_api import MULTIPART_XYZ, files_field


@pytest.fixture
def settings(tmp_path):
    settings = api_settings(
        data_dir=tmp_path, job_batch_size=8, worker_documents_per_second=8, queue_max_seconds=2
    )
    upgrade(settings.resolved_database_url)
    return settings


def test_an_upload_without_files_names_the_form_field(settings):
    with TestClient(create_app(settings)) as client:
        response = client.post("/jobs", content=b"--xyz--\r\n", headers=MULTIPART_XYZ)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "no_files"
    assert body["detail"] == "no files: send images or ZIPs of images in the form field 'files'"


def test_a_full_queue_says_how_far_behind_the_workers_are(settings):
    files = files_field((n, d) for n, d, _ in scans(8))
    with TestClient(create_app(settings)) as client:
        for _ in range(3):  # 8 documents a task, 8 documents/s: 3 s of work > 2 s allowed
            assert client.post("/jobs", files=files).status_code == 202
        refused = client.post("/jobs", files=files)
    assert refused.status_code == 503
    body = refused.json()
    assert body["code"] == "queue_full"
    behind = r"the workers are about \d+ s behind; send this upload later"
    assert re.fullmatch(behind, body["detail"])
    assert int(refused.headers["Retry-After"]) >= 1

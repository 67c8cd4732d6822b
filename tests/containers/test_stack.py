"""The containers do the job: the stack built from infra/docker and docker-compose.yml reads a
1,000-document bulk job and a canvas drawing, with the shipped model, as non-root processes on a
read-only root filesystem."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from recognition.card import ModelCard
from tests.api.conftest import canvas_drawing, data_url
from tests.containers.conftest import STACK_PROJECT
from tests.jobs.support import MODEL_DIR, mnist_test_set, scans, zip_of

JOB_SIZE = 1000
JOB_TIMEOUT = 600


def shipped_version() -> str:
    return ModelCard.load(MODEL_DIR).version


def test_ready_with_the_shipped_model(stack):
    assert stack.get("/health").status_code == 200
    ready = stack.get("/ready")
    assert ready.status_code == 200, ready.text
    assert stack.get("/model-info").json()["version"] == shipped_version()


def test_a_canvas_drawing_is_read(stack):
    images, labels = mnist_test_set()
    right = 0
    for digit, label in zip(images[:10], labels[:10], strict=True):
        response = stack.post("/predict-drawing", json={"image": data_url(canvas_drawing(digit))})
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["probabilities"]) == 10 and body["model_version"] == shipped_version()
        right += body["digit"] == int(label)
    assert right >= 9


def all_results(stack, job_id: str) -> list[dict]:
    items, cursor = [], None
    while True:
        params = {"limit": 500} | ({"cursor": cursor} if cursor else {})
        page = stack.get(f"/jobs/{job_id}/results", params=params)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def test_a_thousand_document_job_is_read_by_the_worker(stack):
    documents = scans(JOB_SIZE, start=1000)
    archive = zip_of({name: data for name, data, _ in documents})
    sent = time.monotonic()
    response = stack.post("/jobs", files=[("files", ("scans.zip", archive, "application/zip"))])
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    upload = time.monotonic() - sent

    started = time.monotonic()
    job = wait_for(stack, location)
    seconds = time.monotonic() - started
    assert job["status"] == "succeeded", job
    print(f"\n{JOB_SIZE} documents: uploaded and stored in {upload:.1f} s, read in {seconds:.1f} s")

    results = all_results(stack, job["id"])
    assert len(results) == JOB_SIZE
    labels = {name: label for name, _, label in documents}
    # Members of a ZIP are named ARCHIVE/MEMBER.
    assert {r["filename"].removeprefix("scans.zip/") for r in results} == set(labels)
    right = sum(r["text"] == str(labels[r["filename"].removeprefix("scans.zip/")]) for r in results)
    assert right / JOB_SIZE >= 0.98, right
    assert {r["model_version"] for r in results} == {shipped_version()}


def inspect(service: str) -> dict:
    docker = shutil.which("docker", path="/usr/bin") or pytest.skip("no docker client")
    ids = subprocess.run(
        [
            docker,
            "ps",
            "-q",
            "--filter",
            f"label=com.docker.compose.project={STACK_PROJECT}",
            "--filter",
            f"label=com.docker.compose.service={service}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(ids) == 1, f"{service}: {ids}"
    out = subprocess.run([docker, "inspect", ids[0]], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]


@pytest.mark.parametrize("service", ["api", "worker", "beat"])
def test_app_containers_run_as_non_root_on_a_read_only_root(service):
    container = inspect(service)
    assert container["Config"]["User"] == "10001"
    assert container["HostConfig"]["ReadonlyRootfs"] is True
    assert container["HostConfig"]["CapDrop"] == ["ALL"]
    assert container["State"]["Running"]


def wait_for(stack, location: str, timeout: float = JOB_TIMEOUT) -> dict:
    started, job = time.monotonic(), {}
    while time.monotonic() - started < timeout:
        job = stack.get(location).json()
        if job["status"] in {"succeeded", "partially_succeeded", "failed"}:
            break
        time.sleep(0.5)
    return job


def test_a_worker_restart_mid_job_loses_no_document(stack):
    """What a rolling update does to a worker: SIGTERM (warm shutdown), then a new process.
    Every document still ends up read exactly once, by the stack's model version."""
    documents = scans(600, start=3000)
    archive = zip_of({name: data for name, data, _ in documents})
    response = stack.post("/jobs", files=[("files", ("restart.zip", archive, "application/zip"))])
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    started = time.monotonic()
    while stack.get(location).json()["status"] == "queued" and time.monotonic() - started < 120:
        time.sleep(0.2)
    worker = inspect("worker")["Id"]
    docker = shutil.which("docker", path="/usr/bin")
    subprocess.run([docker, "restart", "-t", "60", worker], check=True, capture_output=True)
    job = wait_for(stack, location)
    assert job["status"] == "succeeded", job
    assert job["succeeded"] == job["total"] == 600
    results = all_results(stack, job["id"])
    assert len({r["filename"] for r in results}) == 600
    assert {r["model_version"] for r in results} == {shipped_version()}

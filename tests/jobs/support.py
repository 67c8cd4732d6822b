"""Helpers of the bulk-path tests: an API app for given settings, waiting for a job, a corrupt
zip. The scans, the MNIST digits and the Celery worker live in devtools/ (shared with the
benchmarks) and are re-exported here for the tests that import them from this module."""

from __future__ import annotations

import io
import time
import zipfile

from devtools import MODEL_DIR, REPO
from devtools.celery_worker import WorkerProcess, celery_worker, worker_env
from devtools.mnist import mnist_test_set
from devtools.scans import scan_png, scans, zip_of

__all__ = [
    "MODEL_DIR", "REPO", "WorkerProcess", "api_settings", "celery_worker", "corrupt_zip_member",
    "mnist_test_set", "scan_png", "scans", "wait_for_job", "worker_env", "zip_of",
]  # fmt: skip


def corrupt_zip_member(archive: bytes, member: str) -> bytes:
    """Flip bytes inside one member's compressed data, so reading it fails its CRC check."""
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        info = zf.getinfo(member)
    data = bytearray(archive)
    header = info.header_offset
    name_len = int.from_bytes(data[header + 26 : header + 28], "little")
    extra_len = int.from_bytes(data[header + 28 : header + 30], "little")
    start = header + 30 + name_len + extra_len
    for i in range(start + 2, start + min(info.compress_size, 40)):
        data[i] ^= 0x5A
    return bytes(data)


def api_settings(**overrides):
    from api.config import Settings

    # In-process tests with no worker count the filesystem broker's message files; the
    # embedded Redis is started by the tests that run real workers (tests/worker).
    values = {
        "model_dir": MODEL_DIR, "redis_url": None, "database_url": None,
        "embedded_broker": "filesystem", "configure_logging": False,
    }  # fmt: skip
    return Settings(**{**values, **overrides})


def wait_for_job(client, job_id: str, timeout: float = 60) -> dict:
    """Poll GET /jobs/{id} until the job has finished; its last state."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if job["finished_at"] is not None:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job not finished after {timeout}s: {job}")
        time.sleep(0.1)

"""Helpers shared by the bulk-path tests and benchmarks/bulk_throughput.py: MNIST test digits
rendered as scans, a real Celery worker as a subprocess, and an API app for given settings."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = Path(os.environ.get("DIGITFLOW_TEST_MODEL_DIR", REPO / "models" / "default"))


@lru_cache(maxsize=1)
def mnist_test_set() -> tuple[np.ndarray, np.ndarray]:
    """The official MNIST test images (uint8 [10000, 28, 28]) and labels, from the shared data."""
    from training.data import IDX_FILES, default_data_dir, read_idx

    folder = default_data_dir()
    return read_idx(folder / IDX_FILES["test_images"]), read_idx(folder / IDX_FILES["test_labels"])


def scan_png(digit: np.ndarray, scale: int = 2) -> bytes:
    """An MNIST digit as a scan: dark ink on light-grey paper, enlarged, PNG-encoded."""
    paper, ink = 235.0, 20.0
    pixels = paper - digit.astype(np.float32) * (paper - ink) / 255.0
    image = Image.fromarray(pixels.round().astype(np.uint8), "L")
    image = image.resize((28 * scale, 28 * scale), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def scans(count: int, start: int = 0) -> list[tuple[str, bytes, int]]:
    """(filename, PNG bytes, label) for `count` MNIST test digits from `start`."""
    images, labels = mnist_test_set()
    return [
        (f"scan_{i:05d}.png", scan_png(images[i]), int(labels[i]))
        for i in range(start, start + count)
    ]


def zip_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


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


def worker_env(**settings: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update({key.upper(): str(value) for key, value in settings.items() if value is not None})
    env.setdefault("MODEL_DIR", str(MODEL_DIR))
    return env


@dataclass
class WorkerProcess:
    proc: subprocess.Popen
    log: Path

    def kill(self) -> None:
        """SIGKILL the worker's whole process tree: no warm shutdown, no acks, nothing."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout: float = 15) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def celery_worker(
    log: Path, *, concurrency: int = 2, beat: bool = False, timeout: float = 60, **settings
) -> Iterator[WorkerProcess]:
    """A real `celery worker` subprocess (prefork) configured by `settings` (as env vars)."""
    command = [
        sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker",
        "-Q", "documents", "--concurrency", str(concurrency), "--loglevel", "INFO",
        "--without-gossip", "--without-mingle", "-n", f"test-{os.getpid()}-{time.time_ns()}@%h",
    ]  # fmt: skip
    if beat:
        command += ["--beat", "--schedule", str(log.with_suffix(".beat"))]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=REPO, env=worker_env(**settings), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    worker = WorkerProcess(proc, log)
    try:
        deadline = time.monotonic() + timeout
        while b" ready." not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"celery worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield worker
    finally:
        worker.stop()


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

"""A real Celery worker (prefork) as a subprocess of its own, configured through its
environment as in production; for the bulk-path tests, the reliability tests and the benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devtools import MODEL_DIR, REPO


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

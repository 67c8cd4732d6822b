"""Fault injection (and one graceful stop) against a running platform: Postgres 15, Redis, one
API process (uvicorn), one Celery worker, a job of N scanned digits. Shared by tests/reliability
(N = 2,000) and benchmarks/chaos.py (N = 10,000, writes docs/reliability.md).

Each scenario injects one fault during a real job and then checks what the client was told
against what the database holds: every accepted document has exactly one result or an explicit
failure, the counts agree, no upload was answered 202 unless all of it was stored, the job ends.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from sqlalchemy import func, select

from devtools import REPO, services
from devtools.celery_worker import WorkerProcess, celery_worker, worker_env
from devtools.scans import scans
from digitflow.db import Document, Job, Prediction, make_sessionmaker
from digitflow.db.migrations import upgrade

CHUNK = 64 * 1024


class PostgresServer:
    """A Postgres 15 that can be stopped and started again on the same data and port."""

    def __init__(self, base: Path):
        self.base, self.port = base, services.free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            import shutil

            shutil.chown(base, "postgres", "postgres")
        subprocess.run(
            [services.PG_BIN / "initdb", "-D", base / "data", "-U", "postgres", "-A", "trust",
             "--no-sync", "--no-instructions"],
            user=self.user, cwd=base, check=True, capture_output=True,
        )  # fmt: skip
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        options = {"listen_addresses": "127.0.0.1", "port": str(self.port), "fsync": "off",
                   "unix_socket_directories": str(self.base), "max_connections": "200"}  # fmt: skip
        args = [a for key, value in options.items() for a in ("-c", f"{key}={value}")]
        log = (self.base / "postgres.log").open("ab")
        self.proc = subprocess.Popen(
            [services.PG_BIN / "postgres", "-D", self.base / "data", *args],
            user=self.user, cwd=self.base, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        check = [services.PG_BIN / "pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        services.wait_until(
            lambda: subprocess.run(check).returncode == 0, what="postgres", proc=self.proc,
            log=self.base / "postgres.log", timeout=30,
        )  # fmt: skip

    def stop(self) -> None:
        services.stop(self.proc, signal.SIGINT)  # fast shutdown: every client is disconnected

    def create_database(self) -> str:
        server = services.Postgres("127.0.0.1", self.port, "postgres", "postgres")
        return server.create_database(f"chaos_{secrets.token_hex(4)}")


class RedisServer:
    """Redis with no persistence: a restart loses every queued message."""

    def __init__(self, base: Path):
        self.base, self.port, self.proc = base, services.free_port(), None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [services.REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.base)],
            stdout=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        services.wait_until(
            lambda: services.redis_ping("127.0.0.1", self.port), what="redis", proc=self.proc,
            log=self.base / "none", timeout=15,
        )  # fmt: skip

    def stop(self) -> None:
        services.stop(self.proc, signal.SIGKILL)


class ApiServer:
    """`uvicorn api.main:app` as a process of its own, so it can be killed mid-upload."""

    def __init__(self, base: Path, settings: dict):
        self.base, self.settings, self.proc = base, settings, None
        self.port = services.free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.base / "api.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(self.port),
             "--no-access-log"],
            cwd=REPO, env=worker_env(**self.settings), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        services.wait_until(
            lambda: services.http_answers("127.0.0.1", self.port, "/health"), what="api",
            proc=self.proc, log=self.base / "api.log", timeout=60,
        )  # fmt: skip

    def kill(self) -> None:
        services.stop(self.proc, signal.SIGKILL)

    def stop(self) -> None:
        services.stop(self.proc)


@dataclass
class Platform:
    base: Path
    postgres: PostgresServer
    redis: RedisServer
    settings: dict
    api: ApiServer
    stack: ExitStack = field(default_factory=ExitStack)
    worker: WorkerProcess | None = None
    workers_started: int = 0

    @property
    def sessions(self):
        return make_sessionmaker(self.settings["database_url"])

    def start_worker(self) -> WorkerProcess:
        self.workers_started += 1
        log = self.base / f"worker{self.workers_started}.log"
        self.worker = self.stack.enter_context(
            celery_worker(log, concurrency=2, beat=True, timeout=120, **self.settings)
        )
        return self.worker

    def kill_worker_child(self) -> int:
        child = psutil.Process(self.worker.proc.pid).children()[0]
        child.send_signal(signal.SIGKILL)
        return child.pid


@contextmanager
def servers() -> Iterator[tuple[PostgresServer, RedisServer]]:
    base = Path(tempfile.mkdtemp(prefix="digitflow-chaos-"))
    base.chmod(0o755)  # the postgres user (when we are root) must reach its folder
    (base / "pg").mkdir()
    postgres, redis = PostgresServer(base / "pg"), RedisServer(base)
    postgres.start()
    redis.start()
    try:
        yield postgres, redis
    finally:
        postgres.stop()
        redis.stop()


@contextmanager
def platform(postgres: PostgresServer, redis: RedisServer, base: Path) -> Iterator[Platform]:
    settings = {
        "data_dir": base, "database_url": postgres.create_database(),
        "redis_url": f"redis://127.0.0.1:{redis.port}/9", "job_batch_size": 64,
        # Short clocks, so a fault is repaired within seconds in a test.
        "sweep_after_seconds": 5, "sweep_interval_seconds": 1,
        "upload_abandoned_after_seconds": 10,
    }  # fmt: skip
    upgrade(settings["database_url"])
    found = Platform(base, postgres, redis, settings, ApiServer(base, settings))
    found.api.start()
    with found.stack:
        try:
            yield found
        finally:
            found.api.stop()


# --- the client ---------------------------------------------------------------------------------


def multipart(count: int) -> tuple[bytes, str]:
    boundary = secrets.token_hex(16)
    parts = []
    for name, data, _ in scans(count):
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                f'filename="{name}"\r\nContent-Type: image/png\r\n\r\n')  # fmt: skip
        parts += [head.encode(), data, b"\r\n"]
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@dataclass
class Answer:
    status: int | None  # None: the connection broke
    job: dict | None
    error: str = ""


def upload(
    api: ApiServer, body: bytes, content_type: str, key: str,
    fault: Callable[[], None] | None = None, pause: float = 0.0,
) -> Answer:  # fmt: skip
    """POST /jobs, streaming the body; `fault` is called once half of it has been sent."""

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), CHUNK):
            if fault is not None and start >= len(body) // 2 and not faulted:
                faulted.append(True)
                fault()
            yield body[start : start + CHUNK]
            time.sleep(pause)

    faulted: list[bool] = []
    headers = {"Content-Type": content_type, "Idempotency-Key": key}
    try:
        response = httpx.post(f"{api.url}/jobs", content=chunks(), headers=headers, timeout=120)
    except httpx.HTTPError as exc:
        return Answer(None, None, type(exc).__name__)
    job = response.json() if response.status_code == 202 else None
    return Answer(response.status_code, job, "" if job else response.text[:200])


def job_state(platform: Platform, job_id: str) -> dict:
    with platform.sessions() as session:
        job = session.get(Job, uuid.UUID(job_id))
        return {"done": job.succeeded + job.failed, "finished_at": job.finished_at}


def wait_done(platform: Platform, job_id: str, at_least: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while job_state(platform, job_id)["done"] < at_least:
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} did not reach {at_least} done")
        time.sleep(0.05)


def wait_finished(platform: Platform, job_id: str, timeout: float = 300) -> float:
    """Seconds until the job finished (polling the database, which may restart meanwhile)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if job_state(platform, job_id)["finished_at"] is not None:
                return time.monotonic() - started
        except Exception:  # noqa: BLE001 - the database is restarting
            pass
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish within {timeout}s")


def verify(platform: Platform, job_id: str, count: int) -> dict:
    """Every accepted document has exactly one result (or an explicit failure); counts agree;
    nothing of an unfinished upload is left."""
    job_uuid = uuid.UUID(job_id)
    with platform.sessions() as session:
        job = session.get(Job, job_uuid)
        documents = session.scalar(
            select(func.count(Document.id)).where(Document.job_id == job_uuid)
        )
        results = session.scalar(
            select(func.count(func.distinct(Prediction.document_id))).where(
                Prediction.job_id == job_uuid
            )
        )
        predictions = session.scalar(
            select(func.count(Prediction.id)).where(Prediction.job_id == job_uuid)
        )
        failed = session.scalar(
            select(func.count(Document.id)).where(
                Document.job_id == job_uuid,
                Document.status == "failed",
                Document.error.is_not(None),
            )
        )
        unfinished = session.scalar(
            select(func.count(Job.id)).where(Job.uploaded_at.is_(None), Job.status != "failed")
        )
    facts = {
        "status": job.status, "total": job.total, "documents": documents,
        "succeeded": job.succeeded, "failed": job.failed, "predictions": predictions,
        "distinct_results": results, "explicit_failures": failed, "unfinished_uploads": unfinished,
    }  # fmt: skip
    assert job.finished_at is not None, facts
    assert job.total == documents == count, facts
    assert predictions == results == job.succeeded, facts  # never two results for one document
    assert failed == job.failed and job.succeeded + job.failed == count, facts
    assert unfinished == 0, facts
    return facts


# --- the scenarios ------------------------------------------------------------------------------


@dataclass
class Outcome:
    fault: str
    seconds_after_fault: float
    answers: list[str]
    facts: dict


def _accepted(platform: Platform, body: bytes, content_type: str, key: str, count: int, **kw):
    """Upload (with an optional fault on the way) and retry with the same key until 202; no
    202 may ever carry fewer documents than were sent."""
    answers = []
    for attempt in range(6):
        answer = upload(platform.api, body, content_type, key, **(kw if attempt == 0 else {}))
        answers.append(str(answer.status or answer.error))
        if answer.status == 202:
            assert answer.job["total"] == count, f"202 for a partial upload: {answer.job}"
            return answer.job["id"], answers
        time.sleep(1 + attempt)
    raise AssertionError(f"no 202 after retries: {answers}")


def _after_processing_started(platform, count, fault: Callable[[], None], name: str) -> Outcome:
    body, content_type = multipart(count)
    platform.start_worker()
    job_id, answers = _accepted(platform, body, content_type, name, count)
    wait_done(platform, job_id, count // 10)
    fault()
    seconds = wait_finished(platform, job_id)
    return Outcome(name, seconds, answers, verify(platform, job_id, count))


def worker_child_sigkill(platform: Platform, count: int) -> Outcome:
    return _after_processing_started(
        platform, count, platform.kill_worker_child, "SIGKILL a worker child"
    )


def worker_restart(platform: Platform, count: int) -> Outcome:
    def restart():
        platform.worker.kill()
        platform.start_worker()

    return _after_processing_started(platform, count, restart, "kill and restart the worker")


def _restart_postgres(platform: Platform) -> Callable[[], None]:
    def restart():
        platform.postgres.stop()
        time.sleep(2)  # down for a while: writes in between fail
        platform.postgres.start()

    return restart


def postgres_restart_processing(platform: Platform, count: int) -> Outcome:
    return _after_processing_started(
        platform, count, _restart_postgres(platform), "restart Postgres during processing"
    )


def worker_sigterm(platform: Platform, count: int) -> Outcome:
    def warm_restart():
        # SIGTERM to the main process only, as Kubernetes does: Celery's warm shutdown.
        platform.worker.proc.send_signal(signal.SIGTERM)
        assert platform.worker.proc.wait(60) == 0, "the worker did not stop cleanly on SIGTERM"
        platform.start_worker()

    return _after_processing_started(
        platform, count, warm_restart, "SIGTERM the worker (warm shutdown), start it again"
    )


def redis_restart_queue_lost(platform: Platform, count: int) -> Outcome:
    body, content_type = multipart(count)
    job_id, answers = _accepted(platform, body, content_type, "redis", count)  # no worker yet
    platform.redis.stop()  # every queued message is lost
    platform.redis.start()
    started = time.monotonic()
    platform.start_worker()
    wait_finished(platform, job_id)
    seconds = time.monotonic() - started
    return Outcome("restart Redis, queue lost", seconds, answers, verify(platform, job_id, count))


def _during_upload(platform, count, fault: Callable[[], None], name: str) -> Outcome:
    body, content_type = multipart(count)
    platform.start_worker()
    faulted_at: list[float] = []

    def mark_and_fault():
        faulted_at.append(time.monotonic())
        fault()

    job_id, answers = _accepted(
        platform, body, content_type, name, count, fault=mark_and_fault, pause=0.01
    )
    seconds = wait_finished(platform, job_id) + time.monotonic() - faulted_at[0]
    return Outcome(name, seconds, answers, verify(platform, job_id, count))


def postgres_restart_upload(platform: Platform, count: int) -> Outcome:
    return _during_upload(
        platform, count, _restart_postgres(platform), "restart Postgres during the upload"
    )


def api_kill_upload(platform: Platform, count: int) -> Outcome:
    def kill():
        platform.api.kill()
        platform.api.start()

    return _during_upload(platform, count, kill, "kill the API mid-upload, retry with the key")


SCENARIOS = [
    worker_child_sigkill,
    worker_restart,
    worker_sigterm,
    redis_restart_queue_lost,
    postgres_restart_upload,
    postgres_restart_processing,
    api_kill_upload,
]

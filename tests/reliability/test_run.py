"""`digitflow run` as a user meets it: one ready line with the URLs, a crashed child restarted
while the rest keeps serving, a port clash told in one line, Ctrl-C stopping everything."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from devtools.services import free_port
from tests.jobs.support import REPO, worker_env

pytestmark = pytest.mark.slow


def digitflow_run(tmp_path: Path, port: int, log: Path) -> subprocess.Popen:
    env = worker_env(data_dir=tmp_path)
    return subprocess.Popen(
        [sys.executable, "-m", "digitflow.cli", "run", "--port", str(port), "--workers", "1",
         "--concurrency", "1"],
        cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def wait_for(predicate, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}; log:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)


def celery_parent(run: subprocess.Popen) -> psutil.Process | None:
    for child in psutil.Process(run.pid).children():
        if "celery" in " ".join(child.cmdline()):
            return child
    return None


def test_ready_line_restart_of_a_crashed_child_and_clean_stop(tmp_path):
    port, log = free_port(), tmp_path / "run.log"
    run = digitflow_run(tmp_path, port, log)
    try:
        wait_for(lambda: b"ready at" in log.read_bytes(), 180, "no ready line", log)
        ready = [line for line in log.read_text().splitlines() if "ready at" in line]
        assert ready == [
            f"digitflow: ready at http://127.0.0.1:{port}/ (bulk jobs: http://127.0.0.1:{port}"
            f"/bulk, API docs: http://127.0.0.1:{port}/docs) - Ctrl-C stops"
        ]
        assert "superuser privileges" not in log.read_text()  # Celery's lecture is quieted
        assert "celery@" not in log.read_text()  # and so is its banner
        assert "XNNPACK" not in log.read_text()  # and LiteRT's line per process
        assert httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200  # embedded Redis

        first = celery_parent(run)
        os.killpg(first.pid, signal.SIGKILL) if first.pid == os.getpgid(first.pid) else None
        first.kill()
        wait_for(lambda: b"worker exited with code" in log.read_bytes(), 30, "no restart", log)
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200  # API untouched
        wait_for(lambda: (c := celery_parent(run)) is not None and c.pid != first.pid, 30,
                 "worker not started again", log)  # fmt: skip
    finally:
        run.send_signal(signal.SIGINT)
        code = run.wait(60)
    assert code == 0
    assert not psutil.pid_exists(first.pid) or psutil.Process(first.pid).status() == "zombie"


def test_a_port_clash_ends_with_one_line_saying_what_to_do(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "digitflow.cli", "run", "--port", str(port)],
            cwd=REPO, env=worker_env(data_dir=tmp_path), capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"digitflow: port {port} on 127.0.0.1 is already in use: choose another with "
        f"`make run PORT={port + 1}` or `digitflow run --port {port + 1}`"
    ]

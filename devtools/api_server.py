"""The real API (uvicorn) as a process of its own on a free loopback port, for the browser tests
and the benchmarks; ready once GET /model-info answers 200 (the model is loaded)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from devtools import REPO
from devtools.services import free_port

MODEL_INFO = b"GET /model-info HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def model_loaded(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(MODEL_INFO)
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def start_uvicorn(
    app: str = "api.main:app",
    *,
    env: dict[str, str],
    options: tuple[str, ...] = ("--log-level", "warning"),
    app_dir: Path = REPO,
    timeout: float = 120,
) -> tuple[subprocess.Popen, int]:
    """`uvicorn app` with `env` added to this process's environment; (process, port) once the
    model is loaded. Stop it with digitflow.embedded.stop."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--app-dir", str(app_dir),
               "--host", "127.0.0.1", "--port", str(port), *options]  # fmt: skip
    server = subprocess.Popen(command, cwd=REPO, env={**os.environ, **env})
    deadline = time.monotonic() + timeout
    while not model_loaded(port):
        if server.poll() is not None:
            raise RuntimeError(f"{app} exited with {server.returncode}")
        if time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"{app} did not become ready in {timeout:.0f}s")
        time.sleep(0.1)
    return server, port

"""`digitflow serve`: the API alone, one process per usable core, each with its own model and
micro-batcher. What the images and Kubernetes run, and what `digitflow run` starts beside the
worker, so the three serve the same way.

The HTTP server is uvicorn (its own worker processes), granian on request: on the canvas
fast path uvicorn answered more requests a second and sooner alone (`benchmarks/
fastpath_external.py`, five interleaved rounds: docs/benchmarks.md).
"""

import argparse
import math
import os
import sys
from pathlib import Path

from digitflow.settings import PlatformSettings

SERVERS = ("granian", "uvicorn")
# Seconds a stopping server gives in-flight requests (below `digitflow run`'s own stop timeout
# and Kubernetes' default 30 s grace period).
GRACE_SECONDS = 20
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def register(commands) -> None:
    srv = commands.add_parser("serve", help="serve the API alone, one process per core")
    add_server_options(srv)
    srv.set_defaults(handler=serve)


def add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=os.environ.get("HOST") or "127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
    parser.add_argument(
        "--workers", type=int, default=None,
        help="API processes, each with its own model and micro-batcher (default: API_WORKERS, "
        "else one per usable core, a container's CPU limit included)",
    )  # fmt: skip
    parser.add_argument(
        "--server", choices=SERVERS, default=None,
        help="the HTTP server (default: API_SERVER, else uvicorn)",
    )  # fmt: skip


def usable_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota (a
    container's `limits.cpu`, which `os.cpu_count()` does not see)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 limit here
    return cores


def worker_count(args: argparse.Namespace, settings: PlatformSettings) -> int:
    if args.workers is not None:
        return max(1, args.workers)
    return settings.api_workers or usable_cores()


def api_command(
    args: argparse.Namespace, settings: PlatformSettings, python: str = sys.executable
) -> list[str]:
    """The server's command line: one process per worker, no access log (the fast path answers
    ~1,000 requests a second; metrics count them), graceful stop within GRACE_SECONDS."""
    server = args.server or settings.api_server or "uvicorn"
    workers = str(worker_count(args, settings))
    bind = ["--host", args.host, "--port", str(args.port), "--workers", workers]
    if server == "granian":
        return [python, "-m", "granian", "--interface", "asgi", "api.main:app", *bind, "--no-ws",
                "--log-level", "warning", "--respawn-failed-workers",
                "--workers-kill-timeout", str(GRACE_SECONDS)]  # fmt: skip
    grace = str(GRACE_SECONDS)
    return [python, "-m", "uvicorn", "api.main:app", *bind, "--no-access-log",
            "--log-level", "warning", "--timeout-graceful-shutdown", grace]  # fmt: skip


def serve(args: argparse.Namespace, settings: PlatformSettings) -> int:
    """Replace this process with the server (signals, e.g. a container's SIGTERM, reach it)."""
    command = api_command(args, settings)
    os.execv(command[0], command)
    return 0  # not reached

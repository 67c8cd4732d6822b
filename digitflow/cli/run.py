"""`digitflow run`: migrations, then the API and a worker as child processes."""

import argparse
import os
import signal
import subprocess
import sys
import time

from digitflow.cli.migrate import migrate, redact
from digitflow.settings import PlatformSettings


def register(commands) -> None:
    srv = commands.add_parser("run", help="migrate, then run the API and a worker until Ctrl-C")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument("--concurrency", type=int, default=2, help="worker processes")
    srv.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: PlatformSettings) -> int:
    """Migrations, then the API (uvicorn) and a Celery worker (with the sweeper's beat) as child
    processes; Ctrl-C or SIGTERM stops both cleanly. Embedded defaults unless DATABASE_URL,
    REDIS_URL and the storage settings point at real servers."""
    migrate(args, settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # beat's schedule file lives there
    python = sys.executable
    children = {
        "api": [python, "-m", "uvicorn", "api.main:app", "--host", args.host,
                "--port", str(args.port)],
        "worker": [python, "-m", "celery", "-A", "worker.celery_app", "worker", "--beat",
                   "-Q", "documents", "--concurrency", str(args.concurrency),
                   "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
    }  # fmt: skip
    print(
        f"DigitFlow: API at http://{args.host}:{args.port} (bulk upload page /bulk), "
        f"database {redact(settings.resolved_database_url)}, broker "
        f"{'redis' if settings.redis_url else 'filesystem'}, storage {settings.storage_backend}"
        " - Ctrl-C stops",
        file=sys.stderr,
    )
    # Own sessions: a terminal's Ctrl-C reaches only this process, which stops them in order.
    procs = {
        name: subprocess.Popen(command, start_new_session=True)
        for name, command in children.items()
    }
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    exited = None
    while not stopping and exited is None:
        exited = next((name for name, p in procs.items() if p.poll() is not None), None)
        time.sleep(0.2)
    if exited:
        print(f"{exited} exited with code {procs[exited].returncode}; stopping", file=sys.stderr)
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # uvicorn: graceful; celery: warm shutdown
    deadline = time.monotonic() + 20
    for proc in procs.values():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return 1 if exited else 0

"""`digitflow run`: migrations, then the broker, the API and a worker as supervised children.

A child that exits is started again after a back-off (1 s, doubling to 30 s; reset once it has
run for a minute): one crash never stops the platform. Ctrl-C or SIGTERM stops everything in
order: the API first (it finishes in-flight requests), then the worker (warm shutdown: it
finishes its batches), then the broker.
"""

import argparse
import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field

from digitflow.cli.serve import GRACE_SECONDS, add_server_options, api_command
from digitflow.db.migrations import upgrade
from digitflow.embedded import answers, redis_command
from digitflow.metrics import MULTIPROC_ENV, reset_multiprocess_dir
from digitflow.settings import PlatformSettings

BACKOFF_FIRST, BACKOFF_MAX, HEALTHY_AFTER = 1.0, 30.0, 60.0
STOP_TIMEOUT = GRACE_SECONDS + 5.0
STOP_ORDER = ["api", "worker", "broker"]
# LiteRT's C++ runtime says this once per process that loads the model (it has no switch).
QUIET_LINES = {b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."}


def register(commands) -> None:
    srv = commands.add_parser("run", help="migrate, then run the API and a worker until Ctrl-C")
    add_server_options(srv)
    srv.add_argument("--concurrency", type=int, default=2, help="worker processes")
    srv.set_defaults(handler=run)


@dataclass
class Child:
    """One supervised process; started again with back-off whenever it exits."""

    name: str
    command: list[str]
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    backoff: float = BACKOFF_FIRST
    restart_at: float | None = None
    restarts: int = field(default=0)

    def start(self) -> None:
        # Own session: a terminal's Ctrl-C reaches only the supervisor, which stops us in order.
        self.proc = subprocess.Popen(
            self.command, env=self.env, start_new_session=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        threading.Thread(target=relay, args=(self.proc.stdout,), daemon=True).start()
        self.started_at, self.restart_at = time.monotonic(), None

    def tick(self, now: float) -> None:
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restarts += 1
                self.start()
            return
        if self.proc is None or self.proc.poll() is None:
            return
        if now - self.started_at > HEALTHY_AFTER:
            self.backoff = BACKOFF_FIRST
        say(f"{self.name} exited with code {self.proc.returncode}; restarting in {self.backoff:g}s")
        self.restart_at = now + self.backoff
        self.backoff = min(self.backoff * 2, BACKOFF_MAX)

    def stop(self, deadline: float) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # uvicorn: graceful; celery: warm shutdown
        try:
            self.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def relay(output) -> None:
    """Copy a child's output to ours, without the lines every process prints at start-up."""
    for line in output:
        if line.strip() not in QUIET_LINES:
            sys.stderr.buffer.write(line)
            sys.stderr.flush()


def say(line: str) -> None:
    print(f"digitflow: {line}", file=sys.stderr, flush=True)


def port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def child_env(settings: PlatformSettings) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("LOG_LEVEL", "WARNING")  # the terminal shows problems, not every batch
    env.setdefault(MULTIPROC_ENV, str(settings.data_dir / "metrics"))
    # Celery's "running as root" lecture: containers and laptops alike are told once, here.
    env.setdefault("PYTHONWARNINGS", "ignore:You're running the worker with superuser")
    return env


def children(args: argparse.Namespace, settings: PlatformSettings) -> list[Child]:
    python, env = sys.executable, child_env(settings)
    found: list[Child] = []
    if not settings.redis_url and settings.embedded_broker == "redis":
        found.append(Child("broker", redis_command(settings), env))
    api = api_command(args, settings, python)  # what `digitflow serve` runs
    worker = [python, "-m", "celery", "--quiet", "-A", "worker.celery_app", "worker", "--beat",
              "-Q", "documents", "--concurrency", str(args.concurrency),
              "--loglevel", env["LOG_LEVEL"], "--without-gossip", "--without-mingle",
              "--schedule", str(settings.data_dir / "celerybeat-schedule")]  # fmt: skip
    return [*found, Child("api", api, env), Child("worker", worker, env)]


def wait_until(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def api_answers(host: str, port: int) -> bool:
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    try:
        with urllib.request.urlopen(f"http://{probe_host}:{port}/health", timeout=1) as answer:
            return answer.status == 200
    except OSError:
        return False


def run(args: argparse.Namespace, settings: PlatformSettings) -> int:
    """Migrations, then the broker (embedded Redis unless REDIS_URL), the API (as `digitflow
    serve`: one process per usable core) and a Celery worker with the sweeper's beat,
    supervised until Ctrl-C."""
    if port_taken(args.host, args.port):
        other = args.port + 1
        say(
            f"port {args.port} on {args.host} is already in use: choose another with "
            f"`make run PORT={other}` or `digitflow run --port {other}`"
        )
        return 1
    upgrade(settings.resolved_database_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    reset_multiprocess_dir(settings.data_dir / "metrics")
    procs = children(args, settings)
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in procs:
        child.start()
        if child.name == "broker" and not wait_until(
            lambda: answers(settings.embedded_redis_socket), 10
        ):
            say(f"the embedded Redis did not start; see {settings.data_dir / 'redis.log'}")
    announced = False
    while not stopping:
        now = time.monotonic()
        for child in procs:
            child.tick(now)
        if not announced and api_answers(args.host, args.port):
            announced = True
            base = f"http://{'localhost' if args.host == '0.0.0.0' else args.host}:{args.port}"
            say(f"ready at {base}/ (bulk jobs: {base}/bulk, API docs: {base}/docs) - Ctrl-C stops")
        time.sleep(0.2)
    say("stopping")
    deadline = time.monotonic() + STOP_TIMEOUT
    for child in sorted(procs, key=lambda c: STOP_ORDER.index(c.name)):
        child.stop(deadline)
    return 0

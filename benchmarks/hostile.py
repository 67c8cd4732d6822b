"""Cost of hostile input and of access control, on the real API (one uvicorn process).

    .venv/bin/python benchmarks/hostile.py [--quick]

Measures, and writes into docs/benchmarks.md (section "hostile"):
1. the API's memory growth while 8 near-limit decode bombs (lossless WebP, 2,800 x 2,800 px,
   a few hundred bytes each) arrive at once, plus 8 of the 40-megapixel bombs of issue 9;
2. `/predict-drawing` latency (canvas drawings, one client) alone and while two other clients
   send near-limit bombs in a loop;
3. requests/s with API keys in place: an authenticated `GET /jobs/{id}` and the open
   `/predict-drawing` (its per-address limit lifted for the load generator, as documented).
"""

import argparse
import asyncio
import io
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.latency import (  # noqa: E402
    drawing_requests,
    http_request,
    load,
    mnist_test,
    read_response,
    start_server,
    stop,
)
from devtools.report import write_section  # noqa: E402
from digitflow.settings import PlatformSettings  # noqa: E402


def webp_bomb(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height), 255).save(out, "WEBP", lossless=True)
    return out.getvalue()


def upload(data: bytes, name: str = "bomb.webp") -> bytes:
    boundary = "hostilebenchmarkboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: image/webp\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return http_request("/predict", body, f"multipart/form-data; boundary={boundary}")


def get(path: str, key: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\r\n"
            ).encode()  # fmt: skip


async def send_all(port: int, requests: list[bytes]) -> list[int]:
    async def one(request: bytes) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        status, _ = await read_response(reader)
        writer.close()
        return status

    return await asyncio.gather(*(one(r) for r in requests))


def tree_rss(process: psutil.Process) -> int:
    """RSS of the API process and its children (the heavy-decode helper)."""
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


class RssSampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.process, self.peak, self.running = psutil.Process(pid), 0, True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, tree_rss(self.process))
            time.sleep(0.005)


def memory_burst(port: int, pid: int, near: bytes, big: bytes) -> dict:
    base = tree_rss(psutil.Process(pid))
    sampler = RssSampler(pid)
    sampler.start()
    statuses = asyncio.run(send_all(port, [upload(near)] * 8 + [upload(big)] * 8))
    sampler.running = False
    sampler.join()
    return {"base_mib": base / 2**20, "growth_mib": (sampler.peak - base) / 2**20,
            "statuses": sorted(set(statuses))}  # fmt: skip


async def under_attack(port: int, drawings, labels, total: int, bomb: bytes) -> tuple:
    stop_flag = asyncio.Event()
    bombs: Counter[int] = Counter()

    async def attacker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while not stop_flag.is_set():
            writer.write(upload(bomb))
            status, _ = await read_response(reader)
            bombs[status] += 1
        writer.close()

    attackers = [asyncio.create_task(attacker()) for _ in range(2)]
    await asyncio.sleep(0.5)
    result = await load(port, drawings, labels, total, 1)
    stop_flag.set()
    await asyncio.gather(*attackers)
    return result, bombs


async def authenticated(port: int, key: str, path: str, total: int, concurrency: int) -> dict:
    latencies, statuses, counter = [], set(), iter(range(total))

    async def user() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = get(path, key)
        for _ in counter:
            started = time.perf_counter()
            writer.write(request)
            status, _ = await read_response(reader)
            latencies.append(time.perf_counter() - started)
            statuses.add(status)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(concurrency)))
    return {"rps": total / (time.perf_counter() - started), "statuses": sorted(statuses),
            "p50_ms": statistics.median(latencies) * 1000}  # fmt: skip


def prepare_database(data_dir: Path) -> tuple[str, str]:
    """A migrated database with one key and one job of its tenant: (key, job id)."""
    from digitflow import keys
    from digitflow.db import Job, make_sessionmaker
    from digitflow.db.migrations import upgrade

    url = f"sqlite:///{data_dir / 'digitflow.db'}"
    upgrade(url)
    with make_sessionmaker(url).begin() as session:
        key = keys.create_key(session, "bench", "submitter", "hostile benchmark").key
        job = Job(tenant_id="bench", total=0, rejected=[])
        session.add(job)
        session.flush()
        return key, str(job.id)


def bombs_without_the_heavy_limit(drawings, labels, total: int, near: bytes, big: bytes) -> tuple:
    """Memory burst and attack with the per-client decode-heavy limit lifted: every bomb is
    decoded, only the heavy-decode concurrency bounds memory."""
    os.environ["RATE_LIMIT_HEAVY_PER_ADDRESS"] = "1000000/minute"
    server, port = start_server("api.main:app", PlatformSettings().model_dir)
    try:
        asyncio.run(load(port, drawings, labels, 100, 4))  # warm-up
        memory = memory_burst(port, server.pid, near, big)
        return memory, *asyncio.run(under_attack(port, drawings, labels, total, near))
    finally:
        stop(server)
        del os.environ["RATE_LIMIT_HEAVY_PER_ADDRESS"]


def run(args: argparse.Namespace) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix="digitflow-hostile-"))
    key, job_id = prepare_database(data_dir)
    os.environ["DATA_DIR"] = str(data_dir)
    rng = np.random.default_rng(0)
    images, labels = mnist_test(200)
    drawings = drawing_requests(images, rng, 140)
    near, big = webp_bomb(2800, 2800), webp_bomb(8000, 5000)
    total = 200 if args.quick else 600
    server, port = start_server("api.main:app", PlatformSettings().model_dir)
    try:
        asyncio.run(load(port, drawings, labels, 100, 4))  # warm-up
        out = {"near_bytes": len(near), "big_bytes": len(big)}
        out["quiet"] = asyncio.run(load(port, drawings, labels, total, 1))
        out["attack"], out["bombs"] = asyncio.run(under_attack(port, drawings, labels, total, near))
        n = 1000 if args.quick else 4000
        out["jobs"] = asyncio.run(authenticated(port, key, f"/jobs/{job_id}", n, 16))
        out["canvas"] = asyncio.run(load(port, drawings, labels, n, 32))
    finally:
        stop(server)
    out["memory"], out["unlimited"], out["unlimited_bombs"] = bombs_without_the_heavy_limit(
        drawings, labels, total, near, big
    )
    return out


def report(out: dict) -> str:
    memory, quiet, attack = out["memory"], out["quiet"], out["attack"]
    return f"""One uvicorn process (uvloop, httptools), default settings (8 MP decode budget, one heavy
decode at a time), SQLite, API keys required. Near-limit bomb: a {out["near_bytes"]}-byte lossless
WebP of 2,800 x 2,800 px (7.8 MP, just under the budget); issue 9's bomb: {out["big_bytes"]} bytes,
8,000 x 5,000 px.

| what | figure |
| --- | --- |
| API memory before the burst | {memory["base_mib"]:.0f} MiB |
| peak growth while 8 near-limit bombs + 8 of the 40 MP bombs arrive at once (decode-heavy limit lifted: all 8 decode) | {memory["growth_mib"]:.0f} MiB (answers: {memory["statuses"]}) |
| `/predict-drawing` alone, one client | p50 {quiet.percentile(50):.1f} ms, p95 {quiet.percentile(95):.1f} ms |
| the same while two clients loop near-limit bombs | p50 {attack.percentile(50):.1f} ms, p95 {attack.percentile(95):.1f} ms (bombs answered meanwhile, by status: {dict(out["bombs"])}; 422 = decoded (a blank page), 429 = over the client's decode-heavy limit) |
| the same with the decode-heavy limit lifted (every bomb decoded) | p50 {out["unlimited"].percentile(50):.1f} ms, p95 {out["unlimited"].percentile(95):.1f} ms (bombs by status: {dict(out["unlimited_bombs"])}) |
| authenticated `GET /jobs/{{id}}`, 16 clients, one key | {out["jobs"]["rps"]:.0f} requests/s, p50 {out["jobs"]["p50_ms"]:.1f} ms (answers: {out["jobs"]["statuses"]}) |
| `/predict-drawing`, 32 clients, hardening middleware in place | {out["canvas"].rps:.0f} requests/s, p50 {out["canvas"].percentile(50):.1f} ms |

Load average at the end: {os.getloadavg()[0]:.1f} (the machine is shared; figures vary with it)."""  # noqa: E501


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    text = report(run(args))
    print(text)
    if not args.no_write:
        write_section("hostile", "Hostile input and access control (benchmarks/hostile.py)", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
